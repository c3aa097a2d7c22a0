"""Experiment construction rules and every output an ExperimentResult writes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA
from polygram import Dictionary, Experiment, HEA_Rung2, verify_qorca
from polygram.errors import ExperimentError, KnobError, OutputError

TARGET = ("dog_poodle", "bird_hawk")


def exp(d: Dictionary, sweep: dict[str, object], **kw: object) -> Experiment:
    return Experiment(name="E", dictionary=d, target_pair=TARGET, sweep=sweep, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"target_pair": ("dog_poodle", "cat")}, ExperimentError, "unknown feature 'cat'"),
        ({"target_pair": ("dog_poodle", "dog_poodle")}, ExperimentError, "one feature twice"),
        ({"measures": ["overlap", "entropy"]}, ExperimentError, "unknown 'entropy'"),
        ({"assertions": ["nope"]}, ExperimentError, "unknown 'nope'"),
        (
            {"assertions": ["concept_gram_tier_separation_bound_holds"]},
            ExperimentError,
            "tier_separation_bound",
        ),
        ({"sweep": {"bird_hawk.phi": [0.0, math.nan]}}, ExperimentError, "finite"),
        ({"sweep": {"bird_hawk.phi": [0.0, math.inf]}}, ExperimentError, "finite"),
        ({"sweep": {"bird_hawk.phi": []}}, ExperimentError, "non-empty 1-D"),
        ({"sweep": {"bird_hawk.phi": [[0.0, 1.0]]}}, ExperimentError, "non-empty 1-D"),
        ({"sweep": {"bird_hawk.phi": ["a"]}}, ExperimentError, "not numeric"),
        ({"sweep": {"bird_hawk.phase": [0.0]}}, KnobError, "malformed"),
        ({"sweep": {"cat.phi": [0.0]}}, KnobError, "neither a feature nor a cluster"),
        ({"sweep": {"bird_hawk.psi_aux": [0.0]}}, KnobError, "no effect"),
    ],
)
def test_bad_experiments(
    quickstart: Dictionary, kw: dict[str, object], error: type, match: str
) -> None:
    args: dict[str, object] = {"sweep": {"bird_hawk.phi": [0.0, 1.0]}} | kw
    target = args.pop("target_pair", TARGET)
    with pytest.raises(error, match=match):
        Experiment(name="E", dictionary=quickstart, target_pair=target, **args)  # type: ignore[arg-type]


def test_errors_are_value_errors(quickstart: Dictionary) -> None:
    with pytest.raises(ValueError):
        exp(quickstart, {"bird_hawk.phi": [math.nan]})


def test_unknown_backend(quickstart: Dictionary) -> None:
    with pytest.raises(NotImplementedError, match="analytic"):
        exp(quickstart, {}).run(backend="qutip")


def test_empty_sweep_is_one_point(quickstart: Dictionary) -> None:
    r = exp(quickstart, {}, assertions=["target_pair_destructive_at_endpoint"]).run()
    assert r.overlaps.shape == ()
    assert r.gram_matrices.shape == (4, 4)
    assert float(r.overlaps) == pytest.approx(math.cos(0.5) ** 4, abs=1e-15)
    assert r.assertion_pass["target_pair_destructive_at_endpoint"].shape == (1,)


def test_cluster_shared_sweep_key(quickstart: Dictionary) -> None:
    r = exp(quickstart, {"birds.phi": np.linspace(0, np.pi, 3)}).run()
    want = [quickstart.with_knob("birds.phi", v).overlaps()[0, 2] for v in (0, np.pi / 2, np.pi)]
    np.testing.assert_allclose(r.overlaps, want, atol=1e-15)
    np.testing.assert_allclose(r.tier_stats["sibling"], 1.0, atol=1e-15)


def test_destructive_assertion_uses_the_endpoint(quickstart: Dictionary) -> None:
    r = exp(
        quickstart,
        {"bird_hawk.phi": [0.0, np.pi]},
        assertions=["target_pair_destructive_at_endpoint"],
    ).run()
    assert r.assertion_pass["target_pair_destructive_at_endpoint"].tolist() == [False, False]


def test_tier_bound_assertion_on_hea() -> None:
    from conftest import REFERENCE, dictionary_from_spec

    d = dictionary_from_spec(REFERENCE["hea_rung2"]["dictionary"], HEA_Rung2(depth=2))
    r = Experiment(
        name="H",
        dictionary=d,
        target_pair=TARGET,
        sweep={"bird_hawk.theta[0,0,1]": np.linspace(-1, 1, 5)},
        assertions=["concept_gram_tier_separation_bound_holds"],
    ).run()
    assert r.tier_separation is not None
    want = r.tier_separation >= 0.025
    assert r.assertion_pass["concept_gram_tier_separation_bound_holds"].tolist() == want.tolist()
    header = r.csv_text().splitlines()[0]
    assert header.startswith('"bird_hawk.theta[0,0,1]",overlap,')


def test_outputs(quickstart: Dictionary, tmp_path: Path) -> None:
    e = Experiment(
        name="AnimalsInterference",
        dictionary=quickstart,
        target_pair=TARGET,
        sweep={"bird_hawk.phi": np.linspace(0.0, np.pi, 40)},
        measures=["overlap", "gram_matrix", "schmidt_rank"],
        assertions=["hierarchical_ordering_preserved"],
    )
    files = e.materialize(tmp_path / "out")
    assert set(files) == {"machine", "runner", "summary"}
    mid = e.dictionary_at([20])
    assert mid.feature("bird_hawk").phi == 1.6110731556870732
    check = verify_qorca(files["machine"], dictionary=mid)
    assert check.valid and check.gram_checked
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12
    assert "prepare_concept(0.0, 0.5, 0.0, 1.6110731556870732)" in files["machine"].read_text()

    r = e.run()
    r.write_summary(files["summary"])
    got = files["summary"].read_text()
    want = (DATA / "examples" / "AnimalsInterference_summary.md").read_text()
    assert got == want  # byte-identical to the reference artefact

    npz = np.load(r.save(tmp_path / "r.npz"))
    assert set(npz.files) >= {
        "gram_matrices",
        "overlaps",
        "schmidt_ranks",
        "sweep_keys",
        "axis_bird_hawk.phi",
        "assert_hierarchical_ordering_preserved",
        "tier_self",
        "tier_sibling",
        "tier_cross_cluster",
        "tier_separation",
    }
    np.testing.assert_array_equal(npz["overlaps"], r.overlaps)

    png = r.plot(tmp_path / "o.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="kind"):
        r.plot(tmp_path / "x.png", kind="phase")


def test_write_summary_appends_after_a_blank_line(quickstart: Dictionary, tmp_path: Path) -> None:
    p = tmp_path / "s.md"
    p.write_text("# header\n")
    exp(quickstart, {"bird_hawk.phi": [0.0]}).run().write_summary(p)
    assert p.read_text().startswith("# header\n\n## Run results\n")


def test_runner_script_reproduces_run(quickstart: Dictionary, tmp_path: Path) -> None:
    d = quickstart.with_knob("dog_beagle.phi", 0.25)
    e = Experiment(
        name="Runner",
        dictionary=d,
        target_pair=TARGET,
        sweep={"dog_poodle.phi": [0.0, 1.0, 2.0], "bird_hawk.phi": np.linspace(0, 1, 4)},
        assertions=["hierarchical_ordering_preserved"],
    )
    files = e.materialize(tmp_path)
    subprocess.run([sys.executable, files["runner"].name], cwd=tmp_path, check=True)
    saved = np.load(tmp_path / "Runner_result.npz")
    r = e.run()
    np.testing.assert_array_equal(saved["gram_matrices"], r.gram_matrices)
    np.testing.assert_array_equal(saved["overlaps"], r.overlaps)


def test_plot_2d_and_3d(quickstart: Dictionary, tmp_path: Path) -> None:
    sweep2 = {"dog_poodle.phi": np.linspace(0, np.pi, 6), "bird_hawk.phi": np.linspace(0, 1, 5)}
    assert exp(quickstart, sweep2).run().plot(tmp_path / "h.png").stat().st_size > 1000
    sweep3 = sweep2 | {"dog_beagle.phi": [0.0, 1.0]}
    with pytest.raises(NotImplementedError, match="3 sweep axes"):
        exp(quickstart, sweep3).run().plot(tmp_path / "c.png")


def test_unwritable_output_dir(
    quickstart: Dictionary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chmod does not stop root (CI), so make the permission check itself say no.
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == locked else real(p, m))
    with pytest.raises(OutputError, match="not writable"):
        exp(quickstart, {"bird_hawk.phi": [0.0]}).materialize(locked)


def test_output_path_under_a_file_is_refused(quickstart: Dictionary, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot be created"):
        exp(quickstart, {"bird_hawk.phi": [0.0]}).materialize(blocker / "sub")
    assert isinstance(OutputError("x"), OSError)
