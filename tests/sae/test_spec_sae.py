"""Spec 05/06 audit: SelectionReport.warnings is a list, the report's
bullets and formula block, the one-field wrappers, record coercion to
float64, and ``polygram run module:callable`` from the working directory."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sae_helpers import TOY

from polygram import Dictionary, Feature
from polygram.analysis import (
    SUITABILITY_FORMULA,
    encoding_suitability_score,
    feature_sensitivity,
    predict_cancellation_depth,
    render_report,
    triage_dictionary,
)
from polygram.cli import main as cli_main
from polygram.errors import AnalysisError
from polygram.sae import SAEFeatureRecord, from_sae_lens, load_toy_sae

TOL = 1e-12

# 0.0.1's fenced score formula (examples/core/analysis/*.md, spec 05 §5.2)
FORMULA_LINES = [
    "encoding_suitability_score = mean_cancellation_gap × min_pairwise_separation",
    "  mean_cancellation_gap   = mean over pairs of (current_overlap − structural_floor)",
    "  min_pairwise_separation = 1 − max over pairs of current_overlap",
]


@pytest.fixture(scope="module")
def toy() -> dict[int, SAEFeatureRecord]:
    return load_toy_sae(TOY)


def _unlabelled(recs: dict[int, SAEFeatureRecord]) -> dict[int, SAEFeatureRecord]:
    return {i: dataclasses.replace(r, label=None) for i, r in recs.items()}


# ------------------------------------------------------- SelectionReport


def test_warnings_is_a_list_equal_to_the_reference(
    ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]
) -> None:
    """Spec 05 §5.5: ``warnings`` is a list of strings; every reference case
    compares equal as written in the file (``[]`` or the clamp message)."""
    seen_clamp = False
    for case in ref["from_sae_lens"]:
        inp = case["inputs"]
        recs = _unlabelled(toy) if "label=None" in inp["fixture"] else toy
        _, rep = from_sae_lens(recs, inp["feature_ids"], **inp["kwargs"])
        assert isinstance(rep.warnings, list)
        assert rep.warnings == case["report"]["warnings"]
        seen_clamp |= bool(case["report"]["warnings"])
    assert seen_clamp
    _, rep = from_sae_lens(_unlabelled(toy), [0, 1], n_clusters=5)
    assert rep.warnings == ["n_clusters=5 > selected=2; clamping to 2"]


# ---------------------------------------------------------------- report


def test_report_bullets_only_when_given_and_positional(
    toy: dict[int, SAEFeatureRecord],
) -> None:
    pred = predict_cancellation_depth(toy, [0, 1, 4, 5])
    bare = render_report(pred).splitlines()
    assert bare[2:5] == [
        "- Cluster method: `from_labels`",
        "- β variance explained: 0.9765",
        "- Projection→Polygram tier correlation: 0.9999",
    ]
    assert not any("SAE source" in x or "Selected feature_ids" in x for x in bare)
    full = render_report(pred, "tests/fixtures/toy_sae.json", [0, 1, 4, 5]).splitlines()
    assert full[2:4] == [
        "- SAE source: `tests/fixtures/toy_sae.json`",
        "- Selected feature_ids: [0, 1, 4, 5]",
    ]
    only_ids = render_report(pred, feature_ids=(0, 1, 4, 5)).splitlines()
    assert only_ids[2] == "- Selected feature_ids: [0, 1, 4, 5]"


def test_report_formula_block_is_0_0_1s(toy: dict[int, SAEFeatureRecord]) -> None:
    pred = predict_cancellation_depth(toy, [0, 1, 4, 5], assign_gamma=True)
    lines = render_report(pred).splitlines()
    start = lines.index("**Score: 0.0028**  (range [0, 1])")
    fence = lines.index("```", start)
    assert lines[fence + 1 : fence + 4] == FORMULA_LINES
    assert lines[fence + 5] == "```"  # one intuition line, then the fence closes
    assert pred.suitability_formula == SUITABILITY_FORMULA == "\n".join(FORMULA_LINES)


# ------------------------------------------------------ one-field wrappers


def test_wrappers_take_records_prediction_or_dictionary(
    ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]
) -> None:
    case = ref["analysis"][1]
    ids, kw = case["inputs"]["feature_ids"], case["inputs"]["kwargs"]
    pred = predict_cancellation_depth(toy, ids, **kw)
    want_score = case["encoding_suitability_score"]
    for source in ((toy, ids), (pred,), (pred.dictionary,)):
        score = encoding_suitability_score(*source, **(kw if len(source) == 2 else {}))
        sens = feature_sensitivity(*source, **(kw if len(source) == 2 else {}))
        assert abs(score - want_score) <= TOL
        assert set(sens) == set(case["feature_sensitivity"])
        for name, v in case["feature_sensitivity"].items():
            assert abs(sens[name] - v) <= TOL
    with pytest.raises(AnalysisError, match="feature_ids is missing"):
        encoding_suitability_score(toy)
    with pytest.raises(AnalysisError, match="either"):
        feature_sensitivity(pred, [0, 1])


@given(st.lists(st.floats(-1.5, 1.5), min_size=2, max_size=6))
def test_score_and_sensitivity_formulas(betas: list[float]) -> None:
    """Spec 05 §5.1 aggregates from the pair table, on arbitrary φ ≡ 0 dictionaries."""
    names = [f"f{i}" for i in range(len(betas))]
    clusters = [f"c{i % 2}" for i in range(len(betas))]
    feats = [
        Feature(n, c, b, gamma=0.1 * i) for i, (n, c, b) in enumerate(zip(names, clusters, betas))
    ]
    hier: dict[str, list[str]] = {}
    for n, c in zip(names, clusters):
        hier.setdefault(c, []).append(n)
    pred = triage_dictionary(Dictionary("D", feats, hier))
    over = pred.dictionary.overlaps()
    gaps = [p.cancellation_gap for p in pred.pairs]
    want = float(np.mean(gaps)) * (1.0 - max(p.current_overlap for p in pred.pairs))
    assert abs(encoding_suitability_score(pred) - min(1.0, max(0.0, want))) <= TOL
    for n in names:
        vs = [abs(p.V) for p in pred.pairs if n in (p.feature_a, p.feature_b)]
        assert abs(pred.feature_sensitivity[n] - float(np.mean(vs))) <= TOL
    for p in pred.pairs:
        i, j = names.index(p.feature_a), names.index(p.feature_b)
        assert abs(p.current_overlap - over[i, j]) <= TOL
        assert abs(p.M - (p.current_overlap + p.m_pi) / 2) <= TOL
        assert abs(p.V - (p.current_overlap - p.m_pi) / 2) <= TOL
        assert abs(p.structural_floor - min(p.current_overlap, p.m_pi)) <= TOL


# ---------------------------------------------------------------- records


@pytest.mark.parametrize(
    "value",
    [
        np.array([0.1, -2.5], dtype=np.float32),
        np.array([0.5, 2.0], dtype=np.float16),
        np.array([3, -4], dtype=np.int64),
        [1, 2.5],
    ],
)
def test_record_construction_coerces_to_float64(value: Any) -> None:
    """Spec 05 §5.4: construction coerces ``projection`` to float64 (exactly)."""
    rec = SAEFeatureRecord(0, "a", value)
    assert rec.projection.dtype == np.float64
    assert rec.projection.tolist() == np.asarray(value).astype(np.float64).tolist()


@pytest.mark.parametrize("value", [[1 + 2j], np.array(["1", "2"]), [[1.0], [2.0]]])
def test_record_refuses_non_real_or_non_vector(value: Any) -> None:
    with pytest.raises(ValueError, match="projection"):
        SAEFeatureRecord(0, "a", value)


# -------------------------------------------------------------------- CLI


def test_run_module_callable_from_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spec 06 §6.1 ``module:callable``: a module next to the user works
    through the console script too (which, unlike ``python -m``, does not
    put the working directory on sys.path)."""
    (tmp_path / "spec_run_target_mod.py").write_text(
        "def go(output_dir, n_points=None):\n"
        "    (output_dir / 'ran.txt').write_text(str(n_points))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "spec_run_target_mod", raising=False)
    rc = cli_main(["run", "spec_run_target_mod:go", "--output-dir", "out", "--n-points", "7"])
    out = (tmp_path / "out").resolve()
    assert rc == 0 and (out / "ran.txt").read_text() == "7"
    assert capsys.readouterr().out == f"polygram: ran spec_run_target_mod:go → {out}\n"


def test_run_type_error_propagates_after_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spec 06 §6.1: ``main(output_dir=…, n_points=N)`` raising TypeError is
    retried once without ``n_points``; any other TypeError propagates."""
    calls = tmp_path / "calls.txt"
    script = tmp_path / "t.py"
    script.write_text(
        "def main(output_dir):\n"
        f"    with open({str(calls)!r}, 'a') as fh:\n"
        "        fh.write('x')\n"
        "    raise TypeError('inner')\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="inner"):
        cli_main(["run", str(script), "--output-dir", "o", "--n-points", "3"])
    assert calls.read_text() == "x"  # the n_points call failed on binding; one real call
    with pytest.raises(TypeError, match="inner"):
        cli_main(["run", str(script), "--output-dir", "o"])
    ok = tmp_path / "ok.py"
    ok.write_text("def main(output_dir):\n    raise RuntimeError('boom')\n")
    assert cli_main(["run", str(ok), "--output-dir", "o"]) == 1  # other errors: exit 1
