"""Triage, report and feature graphs: parity with ``analysis`` and
``analysis_gap_pair_graphs``, the closed form for any φ, JSON round trips."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sae_helpers import TOY

from polygram import Dictionary, Feature, HEA_Rung2
from polygram.analysis import (
    FLOOR_BLOCK,
    FeatureGraph,
    PairPrediction,
    TriagePrediction,
    build_separation_graph,
    build_sharing_graph,
    encoding_suitability_score,
    feature_sensitivity,
    predict_cancellation_depth,
    render_feature_graph_section,
    render_report,
    triage_dictionary,
)
from polygram.errors import AnalysisError
from polygram.sae import SAEFeatureRecord, load_toy_sae

TOL = 1e-12


@pytest.fixture(scope="module")
def toy() -> dict[int, SAEFeatureRecord]:
    return load_toy_sae(TOY)


@pytest.fixture(scope="module")
def gap_pair(ref: dict[str, Any]) -> Dictionary:
    spec = ref["cancellation_gap_case"]["dictionary"]
    feats = [
        Feature(
            f["name"], f["cluster"], f["beta"], alpha=f["alpha"], gamma=f["gamma"], phi=f["phi"]
        )
        for f in spec["features"]
    ]
    return Dictionary(spec["name"], feats, spec["hierarchy"])


def check_pairs(pred: TriagePrediction, want: list[dict[str, Any]]) -> None:
    assert len(pred.pairs) == len(want)
    for p, w in zip(pred.pairs, want):
        for k, v in w.items():
            if isinstance(v, float):
                assert abs(getattr(p, k) - v) <= TOL, (p.feature_a, p.feature_b, k)
            else:
                assert getattr(p, k) == v


def same_graph(got: FeatureGraph, want: dict[str, Any]) -> None:
    """Graph JSON equal except metadata.formula; numbers to 1e-12, order exact."""
    a = json.loads(got.to_json())
    b = json.loads(json.dumps(want))
    assert a["metadata"].pop("formula") and b["metadata"].pop("formula")
    for ea, eb in zip(a["edges"], b["edges"]):
        for k in ("weight", "floor", "gap"):
            assert abs(ea.pop(k) - eb.pop(k)) <= TOL
    assert a == b


def test_analysis_reference(ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]) -> None:
    for case in ref["analysis"]:
        ids, kw = case["inputs"]["feature_ids"], case["inputs"]["kwargs"]
        pred = predict_cancellation_depth(toy, ids, **kw)
        check_pairs(pred, case["pairs"])
        for name, v in case["feature_sensitivity"].items():
            assert abs(pred.feature_sensitivity[name] - v) <= TOL
        assert abs(pred.encoding_suitability_score - case["encoding_suitability_score"]) <= TOL
        same_graph(build_sharing_graph(pred, 0.5), case["sharing_graph_json_threshold_0.5"])
        same_graph(build_separation_graph(pred, 0.2), case["separation_graph_json_threshold_0.2"])
        assert feature_sensitivity(toy, ids, **kw) == dict(pred.feature_sensitivity)
        assert encoding_suitability_score(toy, ids, **kw) == pred.encoding_suitability_score


def test_gap_pair_reference(ref: dict[str, Any], gap_pair: Dictionary) -> None:
    case = ref["analysis_gap_pair_graphs"]
    pred = triage_dictionary(gap_pair)
    check_pairs(pred, case["pairs"])
    for name, v in case["feature_sensitivity"].items():
        assert abs(pred.feature_sensitivity[name] - v) <= TOL
    assert abs(pred.encoding_suitability_score - case["encoding_suitability_score"]) <= TOL
    assert pred.selection_report.cluster_method == case["selection_report_cluster_method"]
    seen = 0
    for key, want in case.items():
        m = re.fullmatch(r"(sharing|separation)_graph (\{.*\})", key)
        if not m:
            continue
        build = build_sharing_graph if m.group(1) == "sharing" else build_separation_graph
        same_graph(build(pred, **json.loads(m.group(2))), want)
        seen += 1
    assert seen == 5


def test_triage_placeholder_report(gap_pair: Dictionary) -> None:
    rep = triage_dictionary(gap_pair).selection_report
    assert rep.cluster_method == "dictionary" and rep.beta_variance_explained == 1.0
    assert rep.tier_preservation is None and set(rep.reconstruction_error.values()) == {0.0}
    assert rep.n_selected == 4 and rep.feature_ids == ()


@given(st.lists(st.floats(-math.pi, 2 * math.pi), min_size=4, max_size=4), st.integers(0, 3))
def test_closed_form_is_right_for_any_phi(phis: list[float], shift_idx: int) -> None:
    """0.0.1's quirk 14: M, V, m_pi and the floor hold for any φ, checked
    against Grams with the relative phase set to 0 and to π explicitly."""
    rng = np.random.default_rng(len(phis) + shift_idx)
    feats = [
        Feature(n, c, float(b), alpha=float(a), gamma=float(g), phi=p)
        for n, c, b, a, g, p in zip(
            ["a1", "a2", "b1", "b2"], ["ka", "ka", "kb", "kb"],
            rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4), phis,
        )
    ]  # fmt: skip
    d = Dictionary("Phased", feats, {"ka": ["a1", "a2"], "kb": ["b1", "b2"]})
    pred = triage_dictionary(d)
    over = d.overlaps()
    for p in pred.pairs:
        i, j = d.feature_index(p.feature_a), d.feature_index(p.feature_b)
        phi_i = d.features[i].phi
        at0 = d.with_knob(f"{p.feature_b}.phi", phi_i).overlaps()[i, j]
        atpi = d.with_knob(f"{p.feature_b}.phi", phi_i + math.pi).overlaps()[i, j]
        assert abs(p.current_overlap - over[i, j]) <= TOL
        assert abs(p.M + p.V - at0) <= 1e-10 and abs(p.m_pi - atpi) <= 1e-10
        assert abs(p.structural_floor - min(at0, atpi)) <= 1e-10
        assert p.cancellation_gap >= 0.0
        assert p.structural_floor <= p.current_overlap + 1e-10
    assert 0.0 <= pred.encoding_suitability_score <= 1.0
    assert all(v >= 0 for v in pred.feature_sensitivity.values())


def test_single_feature_and_hea(toy: dict[int, SAEFeatureRecord]) -> None:
    pred = predict_cancellation_depth(toy, [3])
    assert pred.pairs == () and pred.encoding_suitability_score == 0.0
    assert dict(pred.feature_sensitivity) == {"cat_siamese": 0.0}
    assert build_sharing_graph(pred).clusters == (("cat_siamese",),)
    with pytest.raises(AnalysisError, match="expected a Dictionary"):
        triage_dictionary("nope")  # type: ignore[arg-type]


# ------------------------------------------------------------------ graphs


def _pred(pairs: list[PairPrediction], names: list[str], clusters: list[str]) -> TriagePrediction:
    hier: dict[str, list[str]] = {}
    for n, c in zip(names, clusters):
        hier.setdefault(c, []).append(n)
    d = Dictionary("G", [Feature(n, c, 0.0) for n, c in zip(names, clusters)], hier)
    base = triage_dictionary(d)
    return TriagePrediction(d, base.selection_report, tuple(pairs), {}, 0.0)


def _pair(a: str, b: str, ca: str, cb: str, cur: float, floor: float) -> PairPrediction:
    return PairPrediction(
        a, b, ca, cb, cur, floor, (cur + floor) / 2, (cur - floor) / 2, floor, cur - floor
    )


def test_graph_rules_reasons_components_and_order() -> None:
    pairs = [
        _pair("a", "b", "x", "x", 0.9, 0.1),  # headroom 0.888…
        _pair("a", "c", "x", "y", 0.9, 0.1),  # cross: blocked unless allowed
        _pair("b", "c", "x", "y", 0.8, 0.6),  # floor above FLOOR_BLOCK
        _pair("d", "e", "y", "y", 0.4, 0.4),  # no headroom
        _pair("c", "d", "y", "y", 0.5, 0.3),  # 0.4, below the 0.5 threshold
    ]
    pred = _pred(pairs, ["a", "b", "c", "d", "e"], ["x", "x", "y", "y", "y"])
    g = build_sharing_graph(pred)
    assert [(e.source, e.target, e.reason) for e in g.edges] == [("a", "b", "phase_headroom")]
    assert g.clusters == (("a", "b"), ("c",), ("d",), ("e",))
    g = build_sharing_graph(pred, threshold=0.0, allow_cross_cluster=True)
    assert [(e.source, e.target) for e in g.edges] == [("a", "b"), ("a", "c"), ("c", "d")]
    assert g.clusters == (("a", "b", "c", "d"), ("e",))
    assert g.metadata["allow_cross_cluster"] is True and g.metadata["threshold"] == 0.0
    s = build_separation_graph(pred)
    assert [(e.source, e.target, e.weight) for e in s.edges] == [("b", "c", 0.6)]  # a–c: 0.1 < 0.2
    s = build_separation_graph(pred, threshold=0.0, include_within_cluster=True)
    assert [e.reason for e in s.edges] == [
        "irreducible_cross_cluster", "irreducible_within_cluster", "irreducible_within_cluster",
        "irreducible_within_cluster", "irreducible_cross_cluster",
    ]  # fmt: skip
    assert [e.weight for e in s.edges] == sorted((e.weight for e in s.edges), reverse=True)
    assert FLOOR_BLOCK == 0.5
    with pytest.raises(AnalysisError, match="NaN"):
        build_sharing_graph(pred, threshold=math.nan)
    with pytest.raises(AnalysisError, match="TriagePrediction"):
        build_separation_graph("x")  # type: ignore[arg-type]


def test_json_round_trip_and_refusals(ref: dict[str, Any], gap_pair: Dictionary) -> None:
    pred = triage_dictionary(gap_pair)
    for g in (build_sharing_graph(pred, 0.0, True), build_separation_graph(pred, 0.2, True)):
        text = g.to_json()
        assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        back = FeatureGraph.from_json(text)
        assert back == g and FeatureGraph.from_json(json.loads(text)) == g
        assert isinstance(back.nodes, tuple) and isinstance(back.clusters[0], tuple)
    raw = ref["analysis_gap_pair_graphs"]['sharing_graph {"threshold": 0.5}']
    assert FeatureGraph.from_json(raw).to_dict()["edges"][0]["source"] == "a1"
    with pytest.raises(AnalysisError, match=r"missing key\(s\) \['nodes'\]"):
        FeatureGraph.from_json({k: v for k, v in raw.items() if k != "nodes"})
    with pytest.raises(ValueError, match="invalid JSON"):
        FeatureGraph.from_json("{")
    with pytest.raises(ValueError, match="expected an object"):
        FeatureGraph.from_json("[1]")
    with pytest.raises(ValueError, match=r"edges\[0\] lacks"):
        FeatureGraph.from_json({**raw, "edges": [{"source": "a"}]})


def test_graph_section_markdown(gap_pair: Dictionary) -> None:
    pred = triage_dictionary(gap_pair)
    md = render_feature_graph_section(build_sharing_graph(pred))
    assert md.startswith("## Sharing graph\n")
    assert "- Kept edges: 2" in md and "- Components: 2" in md and "- Threshold: 0.5" in md
    assert "| a1 | a2 | 0.9281 | 0.0718 | 0.9270 | no | phase_headroom |" in md
    assert "- { a1, a2 }" in md and "### Formula\n\n```\n" in md
    md = render_feature_graph_section(build_separation_graph(pred))
    assert md.startswith("## Separation graph\n") and "| _(none)_ | | | | | | |" in md
    assert md.count("- { ") == 4


# ------------------------------------------------------------------ report


def _sections(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("#")]


def test_report_layout(ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]) -> None:
    pred = predict_cancellation_depth(toy, [0, 1, 4, 5])
    md = render_report(pred, sae_source="tests/fixtures/toy_sae.json", feature_ids=[0, 1, 4, 5])
    assert _sections(md) == [
        "# Polygram analysis — ImportedSAE",
        "## Caveats",
        "## Pair predictions",
        "## Per-feature sensitivity (mean |V_ij|)",
        "## Choosing knobs",
        "## Encoding suitability",
    ]
    lines = md.splitlines()
    assert lines[2:7] == [
        "- SAE source: `tests/fixtures/toy_sae.json`",
        "- Selected feature_ids: [0, 1, 4, 5]",
        "- Cluster method: `from_labels`",
        "- β variance explained: 0.9765",
        "- Projection→Polygram tier correlation: 0.9999",
    ]
    rows = [line for line in lines if "↔" in line]
    assert rows == [
        "| dog_poodle ↔ dog_beagle | intra | 1.0000 | 0.7702 | 0.2298 | 0.8851 | +0.1149 |",
        "| hawk_red ↔ hawk_cooper | intra | 1.0000 | 0.7702 | 0.2298 | 0.8851 | +0.1149 |",
        "| dog_poodle ↔ hawk_red | cross | 0.5931 | 0.5931 | 0.0000 | 0.6816 | -0.0885 |",
        "| dog_poodle ↔ hawk_cooper | cross | 0.5931 | 0.5931 | 0.0000 | 0.6816 | -0.0885 |",
        "| dog_beagle ↔ hawk_red | cross | 0.5931 | 0.5931 | 0.0000 | 0.6816 | -0.0885 |",
        "| dog_beagle ↔ hawk_cooper | cross | 0.5931 | 0.5931 | 0.0000 | 0.6816 | -0.0885 |",
    ]
    assert "|------|------|--------:|------:|----:|--:|--:|" in lines
    assert "| dog_poodle | mammals | 0.0973 |" in lines
    assert "**Score: 0.0000**  (range [0, 1])" in lines
    assert md.count("```") == 2 and "## Warnings" not in md
    assert md.count("\n**") == 7  # six knob-guidance paragraphs + the score line


def test_report_gamma_order_warnings_and_nan(
    ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]
) -> None:
    md = render_report(predict_cancellation_depth(toy, [0, 1, 4, 5], assign_gamma=True))
    rows = [line.split(" | ")[0][2:] for line in md.splitlines() if "↔" in line]
    assert rows[:2] == ["hawk_red ↔ hawk_cooper", "dog_poodle ↔ dog_beagle"]
    sens = [
        line for line in md.splitlines() if re.fullmatch(r"\| \w+ \| \w+ \| \d\.\d{4} \|", line)
    ]
    assert [s.split(" | ")[0][2:] for s in sens] == [
        "dog_beagle",
        "hawk_red",
        "hawk_cooper",
        "dog_poodle",
    ]
    # spec 05 §5.2: both bullets only when the caller gives them
    assert "Selected feature_ids" not in md and "SAE source" not in md
    assert "**Score: 0.0028**  (range [0, 1])" in md
    unl = {i: SAEFeatureRecord(i, r.name, r.projection) for i, r in toy.items()}
    md = render_report(predict_cancellation_depth(unl, [0, 1], n_clusters=5))
    assert "- Projection→Polygram tier correlation: nan" in md
    assert md.rstrip().endswith("## Warnings\n\n- n_clusters=5 > selected=2; clamping to 2")
    single = render_report(predict_cancellation_depth(toy, [3]))
    assert "tier correlation" not in single


def test_report_of_triaged_dictionary(gap_pair: Dictionary) -> None:
    md = render_report(triage_dictionary(gap_pair))
    assert "- Cluster method: `dictionary`" in md and "Selected feature_ids" not in md
    assert "| a1 ↔ a2 | intra | 0.9988 | 0.0718 | 0.9270 | 0.5353 | +0.4635 |" in md
    with pytest.raises(AnalysisError):
        render_report(gap_pair)  # type: ignore[arg-type]


@pytest.mark.parametrize("explicit_theta", [False, True])
def test_hea_triage_uses_the_flip_recipe(explicit_theta: bool) -> None:
    """HEA_Rung2 has no closed form: spec 05 §5.1's recipe itself (N + 1 Grams,
    φ_j = π written on the later feature).  A feature whose φ cannot move
    (explicit θ) keeps m_pi = current, as 0.0.1's silent no-op write did."""
    enc = HEA_Rung2(depth=2, n_qubits=3)
    theta = np.full(enc.theta_shape, 0.3) if explicit_theta else None
    feats = [
        Feature("a", "x", 0.1, gamma=0.4),
        Feature("b", "y", 0.2, alpha=-0.3),
        Feature("c", "y", 0.7, theta=theta),
    ]
    d = Dictionary("H", feats, {"x": ["a"], "y": ["b", "c"]}, enc)
    pred = triage_dictionary(d)
    m0 = d.overlaps()
    names = [f.name for f in feats]
    for p in pred.pairs:
        i, j = names.index(p.feature_a), names.index(p.feature_b)
        if explicit_theta and p.feature_b == "c":
            m_pi = m0[i, j]
        else:
            m_pi = d.with_knob(f"{p.feature_b}.phi", math.pi).overlaps()[i, j]
        assert abs(p.current_overlap - m0[i, j]) <= TOL and abs(p.m_pi - m_pi) <= TOL
        assert abs(p.M - (m0[i, j] + m_pi) / 2) <= TOL
        assert abs(p.V - (m0[i, j] - m_pi) / 2) <= TOL
        assert p.structural_floor == min(m0[i, j], m_pi)
        assert abs(p.cancellation_gap - (m0[i, j] - min(m0[i, j], m_pi))) <= TOL
    gaps = [p.cancellation_gap for p in pred.pairs]
    want = float(np.mean(gaps)) * (1 - max(p.current_overlap for p in pred.pairs))
    assert abs(pred.encoding_suitability_score - want) <= TOL
    assert any(g > 1e-3 for g in gaps)  # φ does move default-θ HEA features
