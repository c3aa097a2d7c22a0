"""Parity with the reference cases of the core (spec 01/02): states, Gram,
M/V/floor, sweeps, tier statistics, Schmidt ranks — all to 1e-12."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np
import pytest

from conftest import REFERENCE, dictionary_from_spec
from polygram import Dictionary, Experiment, Feature

ATOL = 1e-12


def cplx(m: Any) -> np.ndarray:
    a = np.asarray(m, dtype=float)
    return a[..., 0] + 1j * a[..., 1]


def pair(a: dict[str, float], b: dict[str, float]) -> Dictionary:
    fa = Feature("a", "ka", beta=a["beta"], alpha=a["alpha"], gamma=a["gamma"], phi=a["phi"])
    fb = Feature("b", "kb", beta=b["beta"], alpha=b["alpha"], gamma=b["gamma"], phi=b["phi"])
    return Dictionary("Pair", [fa, fb], {"ka": ["a"], "kb": ["b"]})


def test_seed_figure_is_cos_half_to_the_fourth() -> None:
    case = REFERENCE["seed_figure_cos05_4"]
    g = pair(case["inputs"]["A"], case["inputs"]["B"]).gram()
    assert g[0, 1] == pytest.approx(complex(*case["gram_AB"]), abs=ATOL)
    assert abs(g[0, 1]) ** 2 == pytest.approx(case["overlap_AB"], abs=ATOL)
    assert abs(g[0, 1]) ** 2 == pytest.approx(math.cos(0.5) ** 4, abs=1e-15)


@pytest.mark.parametrize("case", REFERENCE["mps_rung1_statevectors"])
def test_statevectors(case: dict[str, Any]) -> None:
    i = case["inputs"]
    f = Feature("x", "k", beta=i["beta"], alpha=i["alpha"], gamma=i["gamma"], phi=i["phi"])
    d = Dictionary("One", [f], {"k": ["x"]})
    np.testing.assert_allclose(d.states()[0], cplx(case["amplitudes"]), atol=ATOL, rtol=0)
    assert d.schmidt_ranks()[0] == case["schmidt_rank_q0_vs_q1q2"]


def test_quickstart_gram_tiers_ranks(quickstart: Dictionary) -> None:
    case = REFERENCE["quickstart_gram"]
    np.testing.assert_allclose(quickstart.gram(), cplx(case["gram"]), atol=ATOL, rtol=0)
    np.testing.assert_allclose(quickstart.overlaps(), case["overlap_sq"], atol=ATOL, rtol=0)
    stats = quickstart.tier_stats()
    for tier, value in case["tier_stats"].items():
        assert stats[tier] == pytest.approx(value, abs=ATOL)
    assert quickstart.tier_separation() == pytest.approx(case["tier_separation"], abs=ATOL)
    assert quickstart.schmidt_ranks().tolist() == case["schmidt_ranks"]


@pytest.mark.parametrize("case", REFERENCE["m_v_floor"], ids=lambda c: c["label"])
def test_branch_law(case: dict[str, Any]) -> None:
    d = pair(case["A"], case["B"])
    m, v, floor = (x[0, 1] for x in d.branch_law())
    assert m == pytest.approx(case["M"], abs=ATOL)
    assert v == pytest.approx(case["V"], abs=ATOL)
    assert floor == pytest.approx(case["structural_floor"], abs=ATOL)
    curve = case["overlap_vs_delta"]
    for delta, want in zip(curve["delta"], curve["overlap"]):
        got = d.with_knob("a.phi", delta).overlaps()[0, 1]
        assert got == pytest.approx(want, abs=ATOL)
        assert m + v * math.cos(delta) == pytest.approx(want, abs=ATOL)


def test_sweep_1d_five_points(quickstart: Dictionary) -> None:
    case = REFERENCE["sweep_1d_quickstart_5pts"]
    exp = Experiment(
        name="AnimalsInterference",
        dictionary=quickstart,
        target_pair=("dog_poodle", "bird_hawk"),
        sweep={"bird_hawk.phi": np.linspace(0, np.pi, 5)},
        assertions=case["inputs"]["assertions"],
    )
    r = exp.run()
    np.testing.assert_array_equal(r.sweep_axes["bird_hawk.phi"], case["axis"])
    np.testing.assert_allclose(r.overlaps, case["overlaps"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(r.tier_stats["sibling"], case["tier_sibling"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(r.tier_stats["cross_cluster"], case["tier_cross_cluster"], atol=ATOL)
    assert r.tier_separation is not None
    np.testing.assert_allclose(r.tier_separation, case["tier_separation"], atol=ATOL, rtol=0)
    for name, want in case["assertion_pass"].items():
        assert r.assertion_pass[name].tolist() == want
    assert list(r.schmidt_ranks.shape) == case["schmidt_ranks_shape"]
    assert list(r.gram_matrices.shape) == case["gram_matrices_shape"]
    # CSV: identical layout, numbers equal to 1e-12 (last-digit rounding may differ).
    got = list(csv.reader(io.StringIO(r.csv_text())))
    want = list(csv.reader(io.StringIO(case["csv"])))
    assert got[0] == want[0]
    assert len(got) == len(want)
    for g_row, w_row in zip(got[1:], want[1:]):
        assert [float(x) for x in g_row] == pytest.approx([float(x) for x in w_row], abs=ATOL)
    assert r.csv_text().endswith("\n") and "\r" not in r.csv_text()


def test_sweep_1d_forty_points_summary(quickstart: Dictionary) -> None:
    case = REFERENCE["sweep_1d_quickstart_40pts_summary"]
    exp = Experiment(
        name="AnimalsInterference",
        dictionary=quickstart,
        target_pair=("dog_poodle", "bird_hawk"),
        sweep={"bird_hawk.phi": np.linspace(0, np.pi, 40)},
        assertions=["hierarchical_ordering_preserved"],
    )
    r = exp.run()
    assert r.overlaps.min() == pytest.approx(case["overlap_min"], abs=ATOL)
    assert r.overlaps.max() == pytest.approx(case["overlap_max"], abs=ATOL)
    assert r.overlaps.mean() == pytest.approx(case["overlap_mean"], abs=ATOL)
    assert r.tier_stats["sibling"].mean() == pytest.approx(case["sibling_mean"], abs=ATOL)
    assert r.tier_stats["cross_cluster"].mean() == pytest.approx(case["cross_mean"], abs=ATOL)
    assert r.assertion_pass["hierarchical_ordering_preserved"].mean() == 1.0
    mid = exp.dictionary_at([case["materialize_midpoint_index"]])
    assert mid.feature("bird_hawk").phi == case["materialize_midpoint_phi"]


def test_sweep_2d_three_by_three(quickstart: Dictionary) -> None:
    case = REFERENCE["sweep_2d_quickstart_3x3"]
    r = Experiment(
        name="AnimalsInterference",
        dictionary=quickstart,
        target_pair=("dog_poodle", "bird_hawk"),
        sweep={
            "dog_poodle.phi": np.linspace(0, np.pi, 3),
            "bird_hawk.phi": np.linspace(0, np.pi, 3),
        },
    ).run()
    np.testing.assert_allclose(r.overlaps, case["overlaps"], atol=ATOL, rtol=0)
    lines = r.csv_text().splitlines()
    assert lines[0] == case["csv_header"]
    for got, want in zip(lines[1:], case["csv_first_rows"]):
        assert [float(x) for x in got.split(",")] == pytest.approx(
            [float(x) for x in want.split(",")], abs=ATOL
        )


def test_sweep_2d_readme_heatmap(quickstart: Dictionary) -> None:
    case = REFERENCE["sweep_2d_readme_24x24"]
    r = Experiment(
        name="AnimalsInterference",
        dictionary=quickstart,
        target_pair=("dog_poodle", "bird_hawk"),
        sweep={
            "dog_poodle.phi": np.linspace(0, np.pi, 24),
            "bird_hawk.phi": np.linspace(0, np.pi, 24),
        },
        assertions=["hierarchical_ordering_preserved"],
    ).run()
    assert r.overlaps.shape == (24, 24)
    assert r.overlaps.min() == pytest.approx(case["overlap_min"], abs=ATOL)
    assert r.overlaps.max() == pytest.approx(case["overlap_max"], abs=ATOL)
    assert r.overlaps.mean() == pytest.approx(case["overlap_mean"], abs=ATOL)
    assert r.overlaps[0, 0] == pytest.approx(case["overlap_corner_00"], abs=ATOL)
    assert r.overlaps[0, -1] == pytest.approx(case["overlap_corner_0_last"], abs=ATOL)
    assert r.overlaps[-1, 0] == pytest.approx(case["overlap_corner_last_0"], abs=ATOL)
    passes = int(r.assertion_pass["hierarchical_ordering_preserved"].sum())
    assert passes == case["hierarchical_ordering_passes"]
    assert r.tier_separation is not None
    assert r.tier_separation.min() == pytest.approx(case["tier_separation_min"], abs=ATOL)


def test_with_default_angles() -> None:
    case = REFERENCE["with_default_angles"]
    d = Dictionary.with_default_angles("Defaults", case["hierarchy"])
    assert {f.name: f.beta for f in d.features} == case["betas"]
    assert all(f.alpha == f.gamma == f.phi == 0.0 for f in d.features)


@pytest.mark.parametrize("case", REFERENCE["schmidt_rank_cases"])
def test_schmidt_rank_cases(case: dict[str, Any]) -> None:
    i = case["inputs"]
    f = Feature("x", "k", beta=i["beta"], alpha=i["alpha"], gamma=i["gamma"], phi=i["phi"])
    assert Dictionary("One", [f], {"k": ["x"]}).schmidt_ranks()[0] == case["rank"]


def test_gap_pair_reference_dictionary_is_buildable() -> None:
    spec = REFERENCE["cancellation_gap_case"]["dictionary"]
    d = dictionary_from_spec(spec)
    _, v, floor = (x[0, 2] for x in d.branch_law())
    assert v > 0  # α ≠ 0 opens a real phase gap
    assert floor == pytest.approx(0.1801553, abs=1e-7)
