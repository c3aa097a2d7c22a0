"""``polygram.experts``: the experts_A reference case, sources, routing
against a plain-Python oracle, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from clustered_helpers import REF17, activations, plant_a
from hypothesis import given
from hypothesis import strategies as st

from polygram import Dictionary, Feature, MPSRung1, Rung3
from polygram.clustered import BlockFormation, build_clustered_dictionary
from polygram.errors import ClusteringError
from polygram.experts import ExpertDictionary, cluster_experts

EXP = REF17["experts_A"]["expected"]


def test_experts_a() -> None:
    x, _, feats = plant_a()
    ex = cluster_experts(feats, x, coherence_threshold=0.5)
    assert ex.n_experts == EXP["n_experts"] and ex.n_features == 30
    assert ex.feature_to_expert.tolist() == EXP["feature_to_expert"]
    assert not ex.feature_to_expert.flags.writeable
    assert ex.experts[0].name == "Experts_b0"
    a = np.random.default_rng(7).random(30)
    assert ex.route(a, 3) == EXP["route_top3"]
    assert ex.route(a, 5) == EXP["route_top5"]
    assert ex.route(np.zeros(30), 3) == EXP["route_zeros_top3"]
    four = EXP["max_features_per_expert=4"]
    ex4 = cluster_experts(feats, x, coherence_threshold=0.5, max_features_per_expert=4)
    assert ex4.n_experts == four["n_experts"]
    assert ex4.feature_to_expert.tolist() == four["feature_to_expert"]
    assert ex4.route(a, 2) == four["route_top2"]
    batch = EXP["route_batch"]
    got = ex.route_batch(np.random.default_rng(11).random((4, 30)), batch["top_k"])
    assert got.dtype == np.int64 and got.tolist() == batch["expected"]


def test_clustered_source_uses_its_decoder_and_name() -> None:
    x, _, feats = plant_a()
    cd = build_clustered_dictionary("PlantA", feats, x, MPSRung1(), BlockFormation("cosine", 0.5))
    ex = cluster_experts(cd, coherence_threshold=0.5)
    assert [e.name for e in ex.experts][:2] == EXP["upstream_expert_names_first2"]
    assert ex.feature_to_expert.tolist() == EXP["feature_to_expert"]
    assert ex.clustered is not None and ex.clustered.n_blocks == 7
    assert ex.source is cd
    hierarchy: dict[str, list[str]] = {}
    for f in feats[:6]:
        hierarchy.setdefault(f.cluster, []).append(f.name)
    d = Dictionary("Small", feats[:6], hierarchy)
    small = cluster_experts(d, x[:6], coherence_threshold=0.5)
    assert small.experts[0].name == "Small_experts_b0" and small.n_features == 6


def test_coactivation_method() -> None:
    x, labels, feats = plant_a()
    acts = activations(42, 256, labels)
    ex = cluster_experts(feats, x, method="coactivation", coherence_threshold=0.4, activations=acts)
    want = REF17["co_firing_A"]["expected"]["block_size_max=None"]["blocks"]
    groups = [np.flatnonzero(ex.feature_to_expert == e).tolist() for e in range(ex.n_experts)]
    assert sorted(groups) == sorted(sorted(b) for b in want)


@given(st.integers(1, 6), st.integers(0, 1000))
def test_route_matches_a_python_oracle(top_k: int, seed: int) -> None:
    x, _, feats = plant_a()
    ex = cluster_experts(feats, x, coherence_threshold=0.5)
    k = min(top_k, ex.n_experts)
    rng = np.random.default_rng(seed)
    a = np.round(rng.standard_normal((3, 30)), 1)  # rounding makes ties likely
    for row, got in zip(a, ex.route_batch(a, k)):
        score = [0.0] * ex.n_experts
        for i, e in enumerate(ex.feature_to_expert):
            score[e] += float(row[i])
        want = sorted(range(ex.n_experts), key=lambda e: (-score[e], e))[:k]
        assert got.tolist() == want == ex.route(row, k)


def test_experts_refuse_bad_input() -> None:
    x, _, feats = plant_a()
    ex = cluster_experts(feats, x, coherence_threshold=0.5)
    for bad in (0, 8, True, 2.0):
        with pytest.raises(ClusteringError, match="top_k: got"):
            ex.route(np.zeros(30), bad)  # type: ignore[arg-type]
    for arr in (np.zeros(29), np.zeros((2, 30)), np.array([math.nan] * 30), np.array(["a"] * 30)):
        with pytest.raises(ClusteringError, match="activations"):
            ex.route(arr, 1)
    with pytest.raises(ClusteringError, match="activations"):
        ex.route_batch(np.zeros(30), 1)
    with pytest.raises(ClusteringError, match="method: got 'kmeans'"):
        cluster_experts(feats, x, method="kmeans")
    with pytest.raises(ClusteringError, match="coherence_threshold: got 1.5"):
        cluster_experts(feats, x, coherence_threshold=1.5)
    with pytest.raises(ClusteringError, match="coherence_threshold: got 0.0"):
        cluster_experts(
            feats, x, method="coactivation", coherence_threshold=0.0, activations=np.ones((3, 30))
        )
    with pytest.raises(ClusteringError, match="needs a"):
        cluster_experts(feats, x, method="coactivation")
    with pytest.raises(ClusteringError, match="only 'coactivation'"):
        cluster_experts(feats, x, activations=np.ones((3, 30)))
    with pytest.raises(ClusteringError, match="decoder_vectors: required"):
        cluster_experts(feats)
    d = Dictionary("D", feats[:2], {"c4": ["f00"], "c2": ["f01"]})
    with pytest.raises(ClusteringError, match="encoding: given"):
        cluster_experts(d, x[:2], encoding=Rung3())
    with pytest.raises(ClusteringError, match="source: got int"):
        cluster_experts(3, x)  # type: ignore[arg-type]


def test_direct_expert_dictionary_checks() -> None:
    f = [Feature("a", "c", 0.0), Feature("b", "c", 0.1), Feature("z", "c", 0.2)]
    e0 = Dictionary("E0", f[:2], {"c": ["a", "b"]})
    e1 = Dictionary("E1", f[2:], {"c": ["z"]})
    ed = ExpertDictionary([e0, e1], f, [0, 0, 1])
    assert ed.n_experts == 2 and ed.clustered is None and ed.route(np.array([0, 0, 1.0]), 1) == [1]
    with pytest.raises(ClusteringError, match="empty"):
        ExpertDictionary([], f, [])
    with pytest.raises(ClusteringError, match="one expert per source feature"):
        ExpertDictionary([e0, e1], f, [0, 0])
    with pytest.raises(ClusteringError, match=r"feature_to_expert\[2\]: got 0"):
        ExpertDictionary([e0, e1], f, [0, 0, 0])
    with pytest.raises(ClusteringError, match="not a partition"):
        ExpertDictionary([e0], f, [0, 0, 0])
