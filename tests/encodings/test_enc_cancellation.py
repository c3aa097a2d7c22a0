"""HEA grid cancellation (spec 03 §3.7) and the rung-3 joint optimiser
(spec 03 §3.5, the port's bounded refinement)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from enc_helpers import amp_overlap, animals_hea, quickstart_rung3

from conftest import REFERENCE
from polygram import Feature, verify_qorca
from polygram._rung3_joint import BOUNDS, initial_simplex, joint_knobs, run_rung3_joint
from polygram.cancellation import Cancellation
from polygram.errors import ExperimentError, GridTooLargeError, KnobError

pytest.importorskip("scipy")

PAIR = ("dog_poodle", "bird_hawk")


# ------------------------------------------------------------------------ HEA
def test_hea_phi_grid_with_tiers() -> None:
    ref = REFERENCE["hea_rung2"]["cancellation_grid_12"]
    c = Cancellation(animals_hea(), PAIR, optimize={"method": "grid", "max_steps": 12})
    r = c.run()
    assert r.before_overlap == pytest.approx(ref["before_overlap"], abs=1e-12)
    assert r.after_overlap == pytest.approx(ref["after_overlap"], abs=1e-12)
    assert r.feasible_count == ref["feasible_count"] == 50
    assert r.n_evaluations == 144
    assert math.isnan(r.structural_floor) and r.cancellation_efficiency is None
    assert math.isnan(r.theta_amp_optimum) and math.isnan(r.floor_breach)
    with pytest.raises(NotImplementedError):
        c.structural_floor()
    # the optimum lies on the δ = 0 ridge (any φ_A = φ_B point is optimal)
    k = r.optimized_knobs
    assert k["dog_poodle.phi"] == k["bird_hawk.phi"]


def test_hea_cluster_shared_theta_grid(tmp_path: Path) -> None:
    ref = REFERENCE["hea_rung2"]["cancellation_cluster_shared_grid_12"]
    c = Cancellation(
        animals_hea(),
        PAIR,
        optimize={"method": "grid", "max_steps": 12},
        knobs=ref["inputs"]["knobs"],
        preserve_tiers=False,
    )
    r = c.run()
    assert r.after_overlap == pytest.approx(ref["after_overlap"], abs=1e-12)
    assert r.feasible_count == ref["feasible_count"] == r.n_evaluations == ref["n_evals"]
    assert r.tolerance_met is ref["tolerance_met"] is True
    for k, v in ref["optimized_knobs"].items():
        assert r.optimized_knobs[k] == pytest.approx(v, abs=1e-12)
    opt = r.dictionary_at_optimum
    assert opt.tier_separation() == pytest.approx(ref["tier_separation_after"], abs=1e-12)
    assert abs(r.after_gram[0, 2]) ** 2 == pytest.approx(r.after_overlap, abs=1e-14)
    # θ axes span [−π, π]
    assert r.trajectory is not None
    assert r.trajectory[:, 0].min() == -math.pi and r.trajectory[:, 0].max() == math.pi
    paths = r.materialize(tmp_path)
    check = verify_qorca(paths["machine"], dictionary=opt)
    assert check.valid, check.errors
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12
    summary = paths["summary"].read_text()
    assert "- `dogs.theta[0,0,0]` = -1.999195" in summary
    assert "undefined for this configuration" in summary and "## Caveat" in summary
    header = paths["trajectory"].read_text().splitlines()[0]
    assert header == '"dogs.theta[0,0,0]","birds.theta[0,0,0]",overlap,feasible'


def test_hea_knob_validation() -> None:
    d = animals_hea()
    with pytest.raises(KnobError, match="out of range"):
        Cancellation(d, PAIR, knobs=["dogs.theta[2,0,0]"])
    with pytest.raises(KnobError, match="no effect on HEA_Rung2"):
        Cancellation(d, PAIR, knobs=["bird_hawk.theta_amp"])
    with pytest.raises(ExperimentError, match="rung3"):
        Cancellation(d, PAIR, encoding="rung3")


# ---------------------------------------------------------------------- Rung3
def joint(d: Any = None, **kw: Any) -> Cancellation:
    args: dict[str, Any] = {"grid_outer": (3, 3), "optimize": {"max_steps": 8}} | kw
    return Cancellation(d or quickstart_rung3(), PAIR, encoding="rung3", **args)


def test_joint_amp_zeroing_with_tiers() -> None:
    ref = REFERENCE["rung3"]["joint_cancel_preserve_tiers"]
    c = joint(preserve_tiers=True)
    r = c.run()
    assert r.method == "rung3_joint"
    assert r.before_overlap == pytest.approx(ref["before_overlap"], abs=1e-12)
    assert r.after_overlap < 1e-8
    assert r.theta_amp_optimum == pytest.approx(math.pi / 4, abs=1e-3)
    assert r.psi_aux_optimum == pytest.approx(math.pi, abs=1e-3)
    assert r.structural_floor == pytest.approx(ref["structural_floor"], abs=1e-12)
    assert r.cancellation_efficiency is None  # before == floor: no phase gap
    assert r.floor_breach == pytest.approx(r.structural_floor - r.after_overlap, abs=0)
    assert r.floor_breach > 0.59
    assert r.knobs == joint_knobs(*PAIR) == list(ref["optimized_knobs"])
    assert r.optimized_knobs["bird_hawk.theta_amp"] == r.theta_amp_optimum
    assert r.tolerance_met


def test_joint_min_amp_overlap_holds_the_floor() -> None:
    ref = REFERENCE["rung3"]["joint_cancel_min_amp_0.5"]
    r = joint(preserve_tiers=False, min_amp_overlap=0.5).run()
    assert r.after_overlap == pytest.approx(ref["after_overlap"], abs=1e-9)
    assert r.after_overlap == pytest.approx(0.5 * math.cos(0.5) ** 4, abs=1e-12)
    assert r.cancellation_efficiency is None
    k = r.optimized_knobs
    assert (k["bird_hawk.theta_amp"], k["bird_hawk.psi_aux"]) == (0.0, 0.0)
    assert k["dog_poodle.phi"] == pytest.approx(k["bird_hawk.phi"], abs=1e-12)
    # the amp constraint holds at the optimum and at every feasible row
    a2 = abs(amp_overlap(math.pi / 4, 0.0, r.theta_amp_optimum, r.psi_aux_optimum)) ** 2
    assert a2 >= 0.5
    assert r.trajectory is not None
    for row, ok in zip(r.trajectory, r.feasible_mask):
        if ok:
            assert abs(amp_overlap(math.pi / 4, 0.0, row[2], row[3])) ** 2 >= 0.5


def test_joint_trajectory_layout_and_bounds() -> None:
    s = run_rung3_joint(quickstart_rung3(), PAIR, max_steps=8, grid_outer=(3, 4))
    t = s.trajectory
    assert t.shape[1] == 5 and s.n_outer_cells == 12 and len(t) > 12
    assert s.feasible.shape == (len(t),)
    # outer rows: θ_b slowest over linspace(0, π/2, 3), ψ_b over 4 points of [0, 2π)
    np.testing.assert_array_equal(t[:12, 2], np.repeat(np.linspace(0, math.pi / 2, 3), 4))
    np.testing.assert_array_equal(
        t[:12, 3], np.tile(np.linspace(0, 2 * math.pi, 4, endpoint=False), 3)
    )
    # every row, refinement included, stays inside the nominal box
    for j, (lo, hi) in enumerate(BOUNDS):
        assert t[:, j].min() >= lo and t[:, j].max() <= hi
    # each row's overlap is the kernel's value at its knobs
    d = quickstart_rung3()
    for row in t[[0, 5, 11, 12, len(t) - 1]]:
        w = d.with_knobs(dict(zip(s.knobs, row[:4])))
        assert abs(w.gram()[0, 2]) ** 2 == pytest.approx(row[4], abs=1e-14)
    assert t[s.best_index, 4] <= t[:12, 4].min()


@pytest.mark.parametrize(
    "x0",
    [
        [2 * math.pi, 2 * math.pi, math.pi / 2, 2 * math.pi],  # every knob on its upper bound
        [0.0, 0.0, 0.0, 0.0],
        [1.0, 2 * math.pi, 0.3, 0.0],
    ],
)
def test_initial_simplex_stays_inside_and_spans_every_knob(x0: list[float]) -> None:
    sim = initial_simplex(np.array(x0))
    assert sim.shape == (5, 4) and np.array_equal(sim[0], x0)
    for j, (lo, hi) in enumerate(BOUNDS):
        assert sim[:, j].min() >= lo and sim[:, j].max() <= hi
    assert np.linalg.matrix_rank(sim[1:] - sim[0]) == 4  # not flattened onto a bound


def test_outer_cells_take_the_inner_grid_optimum() -> None:
    """Each outer row equals the best of the canonical 2-φ grid at that cell."""
    d = quickstart_rung3()
    s = run_rung3_joint(d, PAIR, max_steps=5, grid_outer=(2, 2), preserve_tiers=False)
    phis = np.linspace(0, 2 * math.pi, 5)
    for row in s.trajectory[:4]:
        best = min(
            abs(d.with_knobs(dict(zip(s.knobs, (pa, pb, row[2], row[3])))).gram()[0, 2]) ** 2
            for pa in phis
            for pb in phis
        )
        assert row[4] == pytest.approx(best, abs=1e-14)


def test_budget_splits_the_outer_grid_or_refuses() -> None:
    d = quickstart_rung3()
    whole = run_rung3_joint(d, PAIR, max_steps=6, grid_outer=(4, 3))
    # one θ row = 3 cells × 36 points × 9 bytes = 972 bytes: two scans of two rows
    # (the 12 outer cells need 12 × 128 = 1,536 bytes)
    split = run_rung3_joint(d, PAIR, max_steps=6, grid_outer=(4, 3), max_grid_bytes=2000)
    np.testing.assert_array_equal(whole.trajectory, split.trajectory)
    np.testing.assert_array_equal(whole.feasible, split.feasible)
    with pytest.raises(GridTooLargeError, match="972 bytes"):
        run_rung3_joint(d, PAIR, max_steps=6, grid_outer=(4, 3), max_grid_bytes=500)


def test_joint_keeps_a_own_amp_knobs() -> None:
    """Only B's amp knobs move; A's current θ_amp / ψ_aux enter the amp overlap."""
    d = quickstart_rung3(dog_poodle=(0.3, 1.0))
    r = joint(d, preserve_tiers=False).run()
    assert r.dictionary_at_optimum.feature("dog_poodle").theta_amp == 0.3
    # zeroing a needs θ_b = π/2 − 0.3 and ψ_b = 1 + π
    assert r.after_overlap < 1e-6
    assert abs(amp_overlap(0.3, 1.0, r.theta_amp_optimum, r.psi_aux_optimum)) < 1e-3


def test_joint_materializes_a_verifiable_rung3_file(tmp_path: Path) -> None:
    r = joint().run()
    paths = r.materialize(tmp_path)
    text = paths["machine"].read_text()
    assert "## amp branch" in text
    assert f"| bird_hawk | {r.theta_amp_optimum!r} | {r.psi_aux_optimum!r} |" in text
    check = verify_qorca(paths["machine"], dictionary=r.dictionary_at_optimum)
    assert check.valid and check.layout == "rung3"
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12
    summary = paths["summary"].read_text()
    assert "- method: `rung3_joint`" in summary and "- floor_breach: +0.593133" in summary
    rows = paths["trajectory"].read_text().splitlines()
    assert (
        rows[0]
        == "dog_poodle.phi,bird_hawk.phi,bird_hawk.theta_amp,bird_hawk.psi_aux,overlap,feasible"
    )
    assert len(rows) == 1 + r.n_evaluations


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"knobs": ["dog_poodle.phi", "bird_hawk.phi"]}, "exactly"),
        ({"grid_outer": (0, 3)}, "grid_outer"),
        ({"grid_outer": (3,)}, "grid_outer"),
        ({"min_amp_overlap": 1.5}, "min_amp_overlap"),
        ({"optimize": {"max_steps": 0}}, "max_steps"),
    ],
)
def test_bad_joint_configurations(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ExperimentError, match=match):
        joint(**kw)


def test_rung3_needs_a_rung3_dictionary() -> None:
    mps = animals_hea()
    with pytest.raises(ExperimentError):
        Cancellation(mps, PAIR, encoding="rung3")
    with pytest.raises(ExperimentError, match="Rung3 dictionary"):
        run_rung3_joint(mps, PAIR)
    f = Feature("x", "c", beta=0.0)
    assert f.theta_amp == math.pi / 4
