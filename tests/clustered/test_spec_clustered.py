"""Spec 17 reference cases of ``build_clustered_dictionary`` and its results:
every ``*_A``/``*_C`` entry of reference_values_17.json."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clustered_helpers import (
    REF17,
    activations,
    assert_edges,
    assert_gram,
    block_lists,
    edge_rows,
    iso,
    plant_a,
)

from polygram import Feature, MPSRung1
from polygram.clustered import (
    BlockFormation,
    CrossBlockRedundancyReport,
    build_clustered_dictionary,
    compute_cosine_pair_graph,
)
from polygram.errors import GraphTooLargeError


def build_a(cap: int | None, **kw: Any) -> tuple[Any, list[str]]:
    x, _, feats = plant_a()
    bf = BlockFormation("cosine", cosine_threshold=0.5, block_size_max=cap, **kw)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        cd = build_clustered_dictionary("PlantA", feats, x, MPSRung1(), bf)
    return cd, [str(m.message) for m in w]


def test_pair_graph_a() -> None:
    ref = REF17["pair_graph_A"]
    x, _, _ = plant_a()
    pairs = compute_cosine_pair_graph(x, threshold=0.5)
    assert sorted(pairs) == [tuple(p) for p in ref["expected"]["pairs"]]
    assert len(pairs) == ref["expected"]["n_pairs"]
    got = compute_cosine_pair_graph(x, threshold=0.5, indices=ref["inputs"]["indices"])
    assert sorted(got) == [tuple(p) for p in ref["expected"]["pairs_with_indices_sorted"]]
    assert compute_cosine_pair_graph(x[:1], threshold=0.5) == set()
    assert compute_cosine_pair_graph(x, threshold=0.5, indices=[3]) == set()


@pytest.mark.parametrize("cap", [None, 3])
def test_cosine_blocks_a(cap: int | None) -> None:
    ref = REF17["cosine_blocks_A"][f"block_size_max={cap}"]
    cd, warned = build_a(cap)
    assert warned == ref["warnings"]
    assert cd.n_blocks == ref["n_blocks"]
    assert cd.mean_block_size == pytest.approx(ref["mean_block_size"], abs=1e-15)
    assert block_lists(cd) == ref["blocks"]
    assert [b.name for b in cd.blocks] == ref["block_names"]
    assert [dict(b.hierarchy) for b in cd.blocks] == ref["block_hierarchies"]
    assert cd.n_cross_block_edges == ref["n_cross_block_edges"]
    assert_edges(edge_rows(cd), ref["cross_block_edges"])
    g = cd.gram()
    assert list(g.shape) == ref["gram_shape"]
    assert g.density == pytest.approx(ref["density"], abs=1e-15)
    assert g.cross_block_density == g.density
    counts, edges = g.cross_block_cosine_histogram(4)
    assert counts.tolist() == ref["histogram_bins4"]["counts"]
    assert edges.tolist() == ref["histogram_bins4"]["edges"]
    assert sum(1 for _ in g.entries()) == ref["n_entries"]
    for b, want in ref["block_grams"].items():
        assert_gram(g.block_grams[int(b)], want)
        assert np.allclose(cd.blocks[int(b)].gram(), g.block_grams[int(b)], atol=1e-12)
    for t in ("0.7", "0.5", "0.0"):
        want = ref[f"redundancy_{t}"]
        rep = cd.cross_block_redundant_pairs(float(t))
        assert rep.threshold == want["threshold"]
        assert rep.n_total_cross_block_edges == want["n_total_cross_block_edges"]
        assert len(rep.pairs) == want["n_pairs"]
        assert [[*k, c] for k, c in rep.coverage.items()] == want["coverage"]
        got = [
            [p.block_i_idx, p.feat_i_name, p.block_j_idx, p.feat_j_name, p.cosine]
            for p in rep.pairs[:10]
        ]
        assert [r[:4] for r in got] == [r[:4] for r in want["pairs_first10"]]
        assert np.allclose([r[4] for r in got], [r[4] for r in want["pairs_first10"]], atol=1e-12)


def test_cosine_blocks_a_cap1_is_degenerate() -> None:
    ref = REF17["cosine_blocks_A"]["block_size_max=1"]
    cd, warned = build_a(1)
    assert cd.n_blocks == ref["n_blocks"]
    assert cd.n_cross_block_edges == ref["n_cross_block_edges"]
    assert warned == ref["warnings"]


def test_user_declared_a() -> None:
    ref = REF17["user_declared_A"]
    x, _, feats = plant_a()
    cd = build_clustered_dictionary(
        "PlantA",
        feats,
        x,
        MPSRung1(),
        BlockFormation("user_declared", cosine_threshold=0.5, block_size_max=4),
        hierarchy=ref["inputs"]["hierarchy"],
    )
    exp = ref["expected"]
    assert block_lists(cd) == exp["blocks"]
    assert cd.n_cross_block_edges == exp["n_cross_block_edges"]
    assert [dict(b.hierarchy) for b in cd.blocks] == exp["block_hierarchies"]
    assert cd.gram().density == pytest.approx(exp["density"], abs=1e-15)
    for b, want in exp["block_grams"].items():
        assert_gram(cd.gram().block_grams[int(b)], want)


@pytest.mark.parametrize("cap", [None, 3])
def test_co_firing_a(cap: int | None) -> None:
    ref = REF17["co_firing_A"]
    x, labels, feats = plant_a()
    traces = activations(42, 256, labels)
    assert (traces > 0).sum(axis=0).tolist() == ref["expected"]["fire_counts"]
    bf = BlockFormation(
        "co_firing", co_firing_threshold=0.4, cosine_threshold=0.5, block_size_max=cap
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # co_firing never warns about degeneracy
        cd = build_clustered_dictionary(
            "PlantA", feats, x, MPSRung1(), bf, activation_traces=traces
        )
    exp = ref["expected"][f"block_size_max={cap}"]
    assert block_lists(cd) == exp["blocks"]
    assert cd.n_cross_block_edges == exp["n_cross_block_edges"]
    if "cross_block_edges_first5" in exp:
        assert_edges(edge_rows(cd)[:5], exp["cross_block_edges_first5"])
    # bool traces give the same blocks
    cd2 = build_clustered_dictionary(
        "PlantA", feats, x, MPSRung1(), bf, activation_traces=traces > 0
    )
    assert block_lists(cd2) == exp["blocks"]


def test_co_firing_edge_budget() -> None:
    from polygram import _core

    n_edges = REF17["co_firing_A"]["expected"]["n_co_firing_edges"]
    x, labels, _ = plant_a()
    fires = np.ascontiguousarray(activations(42, 256, labels) > 0, dtype=np.uint8)

    def run(budget: int) -> dict[str, Any]:
        # cosine threshold 1.0: no decoder pair, so only the co-firing graph counts
        return _core.cluster_blocks(  # type: ignore[no-any-return]
            x, 1.0, budget, 30, "co_firing", fires=fires, co_firing_threshold=0.4
        )

    assert "members" in run(n_edges)
    assert run(n_edges - 1)["over_budget"][0] == "co_firing"


def test_degenerate_iso_c() -> None:
    ref = REF17["degenerate_iso_C"]
    x = iso(2024, 20, 64)
    feats = [Feature(name=f"r{i}", cluster="all", beta=0.0) for i in range(20)]
    with pytest.warns(UserWarning) as rec:
        cd = build_clustered_dictionary(
            "IsoC", feats, x, MPSRung1(), BlockFormation("cosine", cosine_threshold=0.5)
        )
    assert [str(w.message) for w in rec] == ref["expected"]["warnings"]
    assert cd.n_blocks == ref["expected"]["n_blocks"]
    assert cd.n_cross_block_edges == 0


def test_edge_budget_a(monkeypatch: pytest.MonkeyPatch) -> None:
    exp = REF17["edge_budget_A"]["expected"]
    cd, _ = build_a(None, max_edges=exp["n_pairs_at_threshold"])
    assert cd.n_blocks == 7
    for m in (exp["n_pairs_at_threshold"] - 1, 10):
        with pytest.raises(GraphTooLargeError, match=r"max_edges.*cosine_threshold=0\.5"):
            build_a(None, max_edges=m)
    monkeypatch.setenv("POLYGRAM_MAX_EDGES", "118")
    with pytest.raises(GraphTooLargeError, match="POLYGRAM_MAX_EDGES"):
        build_a(None)
    monkeypatch.setenv("POLYGRAM_MAX_EDGES", "119")
    assert build_a(None)[0].n_cross_block_edges == 46


def test_manifest_a_cap3(tmp_path: Path) -> None:
    ref = REF17["manifest_A_cap3"]["expected"]
    cd, _ = build_a(3)
    out = cd.emit_qorca(tmp_path / "m")
    assert list(out) == ref["returned_keys"]
    assert out["manifest"] == tmp_path / "m" / "manifest.json"
    text = out["manifest"].read_text(encoding="utf-8")
    assert not text.endswith("\n")
    got = json.loads(text)
    want = ref["manifest"]
    assert list(got) == list(want)
    edges_got, edges_want = got.pop("cross_block_edges"), dict(want)["cross_block_edges"]
    assert got == {k: v for k, v in want.items() if k != "cross_block_edges"}
    assert [(e["from"], e["to"]) for e in edges_got] == [(e["from"], e["to"]) for e in edges_want]
    assert np.allclose(
        [e["cosine"] for e in edges_got], [e["cosine"] for e in edges_want], atol=1e-12
    )
    assert text == json.dumps(json.loads(text), indent=2)  # layout: indent 2, ASCII


def test_redundancy_json_a_cap3() -> None:
    want = REF17["redundancy_json_A_cap3"]["expected"]["json"]
    cd, _ = build_a(3)
    rep = cd.cross_block_redundant_pairs(0.85)
    text = rep.to_json()
    got, exp = json.loads(text), json.loads(want)
    assert list(got) == list(exp)
    for p in got["pairs"] + exp["pairs"]:
        assert list(p) == sorted(p)
    assert [dict(p, cosine=0) for p in got["pairs"]] == [dict(p, cosine=0) for p in exp["pairs"]]
    assert np.allclose(
        [p["cosine"] for p in got["pairs"]], [p["cosine"] for p in exp["pairs"]], atol=1e-12
    )
    assert {k: v for k, v in got.items() if k != "pairs"} == {
        k: v for k, v in exp.items() if k != "pairs"
    }
    assert "," + " " not in text and ": " not in text
    back = CrossBlockRedundancyReport.from_json(text)
    assert back == rep
    assert CrossBlockRedundancyReport.from_json(json.loads(text)) == rep
