"""Bad input to the clustered-dictionary API: specific exceptions that name
the field, the value and what is allowed (spec 17 §17.2–§17.12)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from clustered_helpers import plant_a

from polygram import Dictionary, Feature, HEA_Rung2, MPSRung1, Rung3
from polygram.clustered import (
    BlockFormation,
    BlockSparseGram,
    ClusteredDictionary,
    CrossBlockRedundancyReport,
    build_clustered_dictionary,
    compute_cosine_pair_graph,
)
from polygram.errors import (
    CapacityError,
    ClusteringError,
    DictionaryError,
    GraphTooLargeError,
    OutputError,
    UnknownFeatureError,
)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "kmeans"}, "strategy"),
        ({"strategy": "cosine", "cosine_threshold": -0.1}, "cosine_threshold"),
        ({"strategy": "cosine", "cosine_threshold": 1.5}, "cosine_threshold"),
        ({"strategy": "cosine", "cosine_threshold": math.nan}, "cosine_threshold"),
        ({"strategy": "cosine", "cosine_threshold": True}, "cosine_threshold"),
        ({"strategy": "cosine", "cosine_threshold": "0.3"}, "cosine_threshold"),
        ({"strategy": "cosine", "block_size_max": 0}, "block_size_max"),
        ({"strategy": "cosine", "block_size_max": 2.0}, "block_size_max"),
        ({"strategy": "cosine", "block_size_max": True}, "block_size_max"),
        ({"strategy": "cosine", "firing_corpus": ["a"]}, "firing_corpus"),
        ({"strategy": "co_firing", "firing_corpus": [1]}, "firing_corpus"),
        ({"strategy": "co_firing", "co_firing_threshold": 0.0}, "co_firing_threshold"),
        ({"strategy": "co_firing", "co_firing_threshold": 1.01}, "co_firing_threshold"),
        ({"strategy": "cosine", "max_edges": 0}, "max_edges"),
    ],
)
def test_block_formation_refuses(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ClusteringError, match=rf"BlockFormation\.{field}: got"):
        BlockFormation(**kwargs)


def test_block_formation_values() -> None:
    bf = BlockFormation("cosine", 0.5, 3)
    assert bf == BlockFormation(strategy="cosine", cosine_threshold=0.5, block_size_max=3)
    assert hash(bf) == hash(BlockFormation("cosine", 0.5, 3))
    assert BlockFormation("co_firing", firing_corpus="kjv").firing_corpus == ("kjv",)
    assert BlockFormation("co_firing", firing_corpus=["a", "b"]).firing_corpus == ("a", "b")
    assert BlockFormation("cosine", np.float32(0.25)).cosine_threshold == 0.25
    assert BlockFormation("cosine", block_size_max=np.int64(4)).block_size_max == 4
    with pytest.raises(AttributeError):
        bf.strategy = "co_firing"  # type: ignore[misc]


def test_edge_budget_env(monkeypatch: pytest.MonkeyPatch) -> None:
    bf = BlockFormation("cosine")
    monkeypatch.delenv("POLYGRAM_MAX_EDGES", raising=False)
    assert bf.resolved_max_edges() == 50_000_000
    monkeypatch.setenv("POLYGRAM_MAX_EDGES", "12")
    assert bf.resolved_max_edges() == 12
    assert BlockFormation("cosine", max_edges=5).resolved_max_edges() == 5
    monkeypatch.setenv("POLYGRAM_MAX_EDGES", "lots")
    with pytest.raises(ClusteringError, match="POLYGRAM_MAX_EDGES"):
        bf.resolved_max_edges()


def build(**kw: Any) -> ClusteredDictionary:
    x, _, feats = plant_a()
    args: dict[str, Any] = {
        "name": "PlantA",
        "features": feats,
        "decoder_vectors": x,
        "encoding": MPSRung1(),
        "block_formation": BlockFormation("cosine", cosine_threshold=0.5),
    }
    args.update(kw)
    return build_clustered_dictionary(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "1bad"}, r"name: got '1bad'"),
        ({"features": []}, "features: empty"),
        ({"features": "abc"}, "features: got str"),
        ({"features": [1, 2]}, r"features\[0\]: got int"),
        ({"decoder_vectors": np.zeros((29, 24))}, r"shape \(29, 24\); expected \(30, d\)"),
        ({"decoder_vectors": np.zeros((30, 0))}, r"d >= 1"),
        ({"decoder_vectors": np.zeros(30)}, r"shape \(30,\)"),
        ({"decoder_vectors": np.zeros((30, 2), dtype=complex)}, "dtype complex128"),
        ({"decoder_vectors": np.zeros((30, 2), dtype=bool)}, "dtype bool"),
        ({"encoding": "mps"}, "encoding: got 'mps'"),
        ({"block_formation": "cosine"}, "block_formation: got str"),
        (
            {"block_formation": BlockFormation("user_declared")},
            "strategy 'user_declared' needs a mapping",
        ),
        ({"block_formation": BlockFormation("co_firing")}, "co_firing' needs a"),
        ({"activation_traces": np.ones((5, 30))}, "given with strategy 'cosine'"),
    ],
)
def test_build_refuses(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ClusteringError, match=match):
        build(**kwargs)


def test_non_finite_decoder_names_the_entry() -> None:
    x, _, _ = plant_a()
    x = x.copy()
    x[3, 5] = np.nan
    with pytest.raises(ClusteringError, match=r"entry \[3, 5\] is nan"):
        build(decoder_vectors=x)


def test_block_size_above_the_cap_is_a_capacity_error() -> None:
    with pytest.raises(CapacityError, match=r"block_size_max=9 exceeds MPSRung1\.max_features=8"):
        build(block_formation=BlockFormation("cosine", block_size_max=9))
    assert build(block_formation=BlockFormation("cosine", block_size_max=8)).n_features == 30
    x, _, feats = plant_a()
    cd = build_clustered_dictionary(
        "R", feats, x, Rung3(), BlockFormation("cosine", 0.5, block_size_max=16)
    )
    assert max(b.features.__len__() for b in cd.blocks) <= 16
    with pytest.raises(CapacityError):
        build_clustered_dictionary(
            "H",
            feats,
            x,
            HEA_Rung2(depth=1, n_qubits=2),
            BlockFormation("cosine", block_size_max=5),
        )


@pytest.mark.parametrize(
    ("traces", "match"),
    [
        (np.ones((4, 29)), r"shape \(4, 29\); expected \(T, 30\)"),
        (np.ones((0, 30)), r"T >= 1"),
        (np.ones(30), r"shape \(30,\)"),
        (np.full((2, 30), np.inf), r"entry \[0, 0\] is inf"),
        (np.array([["a"] * 30]), "dtype <U1"),
    ],
)
def test_bad_activation_traces(traces: np.ndarray, match: str) -> None:
    with pytest.raises(ClusteringError, match=match):
        build(block_formation=BlockFormation("co_firing"), activation_traces=traces)


def test_user_declared_hierarchy_rules() -> None:
    bf = BlockFormation("user_declared", block_size_max=4)
    names = [f"f{i:02d}" for i in range(30)]
    with pytest.raises(ClusteringError, match="'f01' is listed twice in the same cluster"):
        build(block_formation=bf, hierarchy={"a": [*names, "f01"]})
    with pytest.raises(ClusteringError, match="under both 'a' and 'b'"):
        build(block_formation=bf, hierarchy={"a": names, "b": ["f03"]})
    with pytest.raises(ClusteringError, match="'zz' is not a feature name"):
        build(block_formation=bf, hierarchy={"a": [*names, "zz"]})
    with pytest.raises(ClusteringError, match=r"7 feature\(s\) not mentioned: 'f23'.*\(\+2 more\)"):
        build(block_formation=bf, hierarchy={"a": names[:23]})
    with pytest.raises(ClusteringError, match=r"hierarchy\['a'\]: got 'f00'"):
        build(block_formation=bf, hierarchy={"a": "f00"})
    # an empty cluster gives no block; order and chunks follow the mapping
    cd = build(block_formation=bf, hierarchy={"e": [], "a": names[::-1]})
    assert [list(cd.block_view(b).indices) for b in range(2)] == [
        [29, 28, 27, 26],
        [25, 24, 23, 22],
    ]
    assert cd.n_blocks == 8


def test_dictionary_rules_over_the_whole_selection() -> None:
    x = np.eye(4)
    bf = BlockFormation("cosine", block_size_max=1)
    feats = [
        Feature("a", "c", 0.0),
        Feature("b", "c", 0.0),
        Feature("a", "d", 0.0),
        Feature("e", "c", 0.0),
    ]
    with pytest.raises(DictionaryError, match="duplicate feature names"):
        build_clustered_dictionary("D", feats, x, MPSRung1(), bf)
    feats[2] = Feature("c", "d", 0.0)
    with pytest.raises(DictionaryError, match="both as feature and cluster"):
        build_clustered_dictionary("D", feats, x, MPSRung1(), bf)
    feats[2] = Feature("A", "d", 0.0)
    with pytest.raises(DictionaryError, match="share the emitted name 'a'"):
        build_clustered_dictionary("D", feats, x, MPSRung1(), bf)
    hea = HEA_Rung2(depth=1, n_qubits=2)
    bad = [Feature("p", "c", 0.0, theta=np.zeros((1, 1, 1))), Feature("q", "c", 0.0)]
    with pytest.raises(DictionaryError, match="theta shape"):
        build_clustered_dictionary("D", bad, np.eye(2), hea, BlockFormation("cosine"))


def test_graph_too_large_message() -> None:
    with pytest.raises(GraphTooLargeError) as e:
        build(block_formation=BlockFormation("cosine", cosine_threshold=0.5, max_edges=3))
    msg = str(e.value)
    assert "cosine_threshold=0.5" in msg and "budget of 3" in msg and "max_edges" in msg
    assert isinstance(e.value, ClusteringError) and isinstance(e.value, ValueError)


def test_accessors_and_lookups() -> None:
    cd = build()
    assert cd.block(-1).name == cd.blocks[-1].name == f"PlantA_b{cd.n_blocks - 1}"
    with pytest.raises(IndexError):
        cd.block(cd.n_blocks)
    with pytest.raises(IndexError):
        cd.block_view(-cd.n_blocks - 1)
    with pytest.raises(TypeError):
        cd.block("0")  # type: ignore[arg-type]
    with pytest.raises(UnknownFeatureError, match="unknown feature 'nope'"):
        cd.locate("nope")
    assert cd.locate("f29") == (6, 0)
    for arr in (cd.block_of, cd.local_index, cd.block_order, cd.decoder):
        assert arr is not None and not arr.flags.writeable
    arrays = cd.cross_block_edge_arrays()
    assert all(not a.flags.writeable for a in arrays.values())
    with pytest.raises(AttributeError):
        cd.name = "x"  # type: ignore[misc]
    pairs = cd.cross_block_pairs
    key = next(iter(pairs))
    assert key in pairs and pairs[key] == cd.cross_block_edges_tuple[0][1]
    assert (0, 0, 0, 1) not in pairs and "x" not in pairs
    with pytest.raises(KeyError):
        pairs[(0, 0, 0, 1)]


def test_redundancy_threshold_and_json_errors() -> None:
    cd = build()
    for bad in (-0.1, 1.1, math.nan, True, "0.7"):
        with pytest.raises(ClusteringError, match="threshold: got"):
            cd.cross_block_redundant_pairs(bad)  # type: ignore[arg-type]
    with pytest.raises(ClusteringError, match="missing key"):
        CrossBlockRedundancyReport.from_json('{"pairs": []}')
    with pytest.raises(ClusteringError, match="not valid JSON"):
        CrossBlockRedundancyReport.from_json("{")
    with pytest.raises(ClusteringError, match="schema_version"):
        CrossBlockRedundancyReport.from_json(
            {
                "coverage": [],
                "n_total_cross_block_edges": 0,
                "pairs": [],
                "schema_version": 9,
                "threshold": 0.5,
            }
        )


def test_gram_errors_and_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from polygram.errors import GridTooLargeError

    with pytest.raises(ClusteringError, match="empty"):
        BlockSparseGram([])
    with pytest.raises(ClusteringError, match=r"block_grams\[0\]: shape \(2, 3\)"):
        BlockSparseGram([np.zeros((2, 3))])
    with pytest.raises(ClusteringError, match="0 <= bi < bj < 2"):
        BlockSparseGram([np.eye(2), np.eye(1)], {(1, 0, 0, 0): 0.5})
    with pytest.raises(ClusteringError, match="local indices"):
        BlockSparseGram([np.eye(2), np.eye(1)], {(0, 2, 1, 0): 0.5})
    g = BlockSparseGram([np.eye(2), np.eye(1)], {(0, 1, 1, 0): 0.5})
    with pytest.raises(ClusteringError, match="bins: got 0"):
        g.cross_block_cosine_histogram(0)
    monkeypatch.setenv("POLYGRAM_MAX_GRID_BYTES", "100")
    with pytest.raises(GridTooLargeError, match="to_dense"):
        g.to_dense()
    with pytest.raises(GridTooLargeError, match="block Grams"):
        build().gram()


def test_direct_construction_checks() -> None:
    a = Dictionary("A", [Feature("x", "c", 0.0)], {"c": ["x"]})
    b = Dictionary("B", [Feature("y", "c", 0.5), Feature("z", "c", 0.1)], {"c": ["y", "z"]})
    cd = ClusteredDictionary("CD", [a, b], {(0, 0, 1, 1): 0.9})
    assert cd.blocks[1] is b and cd.decoder is None
    assert cd.block_formation == BlockFormation("user_declared")
    assert cd.block_view(1).decoder_slice is None
    assert cd.cross_block_edge_arrays()["index_j"].tolist() == [2]
    with pytest.raises(ClusteringError, match="name"):
        ClusteredDictionary("bad name", [a])
    with pytest.raises(ClusteringError, match="empty"):
        ClusteredDictionary("CD", [])
    with pytest.raises(ClusteringError, match=r"blocks\[1\]: got str"):
        ClusteredDictionary("CD", [a, "b"])  # type: ignore[list-item]
    rung3 = Dictionary("R", [Feature("w", "c", 0.0)], {"c": ["w"]}, Rung3())
    with pytest.raises(ClusteringError, match="share one encoding"):
        ClusteredDictionary("CD", [a, rung3])
    with pytest.raises(ClusteringError, match="'x' appears in more than one"):
        ClusteredDictionary("CD", [a, a])
    with pytest.raises(ClusteringError, match="key"):
        ClusteredDictionary("CD", [a, b], {(0, 0, 1): 0.9})  # type: ignore[dict-item]
    with pytest.raises(ClusteringError, match="finite real"):
        ClusteredDictionary("CD", [a, b], {(0, 0, 1, 0): math.inf})
    with pytest.raises(ClusteringError, match="block_formation"):
        ClusteredDictionary("CD", [a], block_formation="cosine")  # type: ignore[arg-type]


def test_pair_graph_helper_refuses() -> None:
    x, _, _ = plant_a()
    with pytest.raises(ClusteringError, match="threshold"):
        compute_cosine_pair_graph(x, threshold=math.nan)
    with pytest.raises(ClusteringError, match="out of range"):
        compute_cosine_pair_graph(x, threshold=0.5, indices=[0, 30])
    with pytest.raises(ClusteringError, match="distinct"):
        compute_cosine_pair_graph(x, threshold=0.5, indices=[1, 1])
    with pytest.raises(ClusteringError, match="real"):
        compute_cosine_pair_graph(np.zeros(3), threshold=0.5)


def test_emit_to_an_unusable_directory(tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        build().emit_qorca(blocker / "sub")
