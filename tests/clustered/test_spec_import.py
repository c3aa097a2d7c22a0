"""Spec 17 §17.9 reference cases of ``from_sae_lens(clustered=…)``:
``from_sae_lens_D``, ``labels_user_declared_E``, ``rung3_M`` and ``tier_T``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from clustered_helpers import REF17, assert_edges, assert_gram, block_lists, edge_rows, planted

from polygram import Dictionary, Rung3
from polygram.clustered import BlockFormation, ClusteredDictionary
from polygram.errors import CapacityError, FeatureSelectionError
from polygram.sae import SAEFeatureRecord, from_sae_lens

D = REF17["from_sae_lens_D"]
TOL = 1e-12


def records_d() -> dict[int, SAEFeatureRecord]:
    x = planted(99, 16, [7, 7, 6], 0.5)[0]
    return {i: SAEFeatureRecord(feature_id=i, name=f"feat_{i}", projection=x[i]) for i in range(20)}


IDS = D["inputs"]["feature_ids"]


def check_report(rep: Any, want: dict[str, Any], tier_tol: float = 1e-6) -> None:
    for key, value in want.items():
        got = getattr(rep, key)
        if key == "tier_preservation":
            assert got == pytest.approx(value, abs=tier_tol), key
        elif key in ("beta_variance_explained", "mean_block_size"):
            assert got == pytest.approx(value, abs=TOL), key
        elif key == "reconstruction_error":
            assert list(got) == list(value)
            assert np.allclose(list(got.values()), list(value.values()), rtol=0, atol=TOL)
        elif key == "cluster_assignments":
            assert dict(got) == value and list(got) == list(value)
        else:
            assert got == value, key


def check_features(cd: ClusteredDictionary, want: list[list[Any]]) -> None:
    got = [f for b in cd.blocks for f in b.features]
    assert [(f.name, f.cluster) for f in got] == [(w[0], w[1]) for w in want]
    assert [f.beta for f in got] == [w[2] for w in want]  # β exact
    assert np.allclose([f.gamma for f in got], [w[3] for w in want], rtol=0, atol=TOL)
    if len(want[0]) > 4:
        assert [f.alpha for f in got] == [w[4] for w in want]
        assert [f.phi for f in got] == [w[5] for w in want]


def nan_or(value: Any) -> Any:
    return pytest.approx(value, abs=TOL, nan_ok=True)


def test_k3_gamma_auto_promotes() -> None:
    case = D["k3_gamma"]
    cd, rep = from_sae_lens(records_d(), IDS, n_clusters=3, assign_gamma=True)
    assert isinstance(cd, ClusteredDictionary)
    check_report(rep, case["report"])
    port = case["report_port_fields"]
    assert rep.block_tier_preservation == nan_or(port["block_tier_preservation"])
    assert rep.tier_preservation == pytest.approx(port["tier_preservation_float32_tiles"], abs=1e-6)
    assert rep.geometric_fidelity == rep.tier_preservation and rep.profile == "clustered"
    check_features(cd, case["features_in_block_order"])
    assert block_lists(cd) == case["blocks"]
    assert [b.name for b in cd.blocks] == case["block_names"]
    assert cd.n_cross_block_edges == case["n_cross_block_edges"]
    assert_edges(edge_rows(cd), case["cross_block_edges"])
    for b, want in case["block_grams"].items():
        assert_gram(cd.gram().block_grams[int(b)], want)
    red = cd.cross_block_redundant_pairs(0.7)
    want = case["redundancy_0.7"]
    assert red.n_total_cross_block_edges == want["n_total_cross_block_edges"]
    got = [
        [p.block_i_idx, p.feat_i_name, p.block_j_idx, p.feat_j_name, p.cosine] for p in red.pairs
    ]
    assert [g[:4] for g in got] == [w[:4] for w in want["pairs"]]
    assert np.allclose([g[4] for g in got], [w[4] for w in want["pairs"]], atol=TOL)
    assert [[*k, c] for k, c in red.coverage.items()] == want["coverage"]
    assert rep.feature_ids == tuple(IDS)


def test_k2_threshold_06() -> None:
    case = D["k2_nogamma_t06"]
    cd, rep = from_sae_lens(
        records_d(),
        IDS,
        assign_gamma=False,
        block_formation=BlockFormation(strategy="cosine", cosine_threshold=0.6),
    )
    check_report(rep, case["report"])
    port = case["report_port_fields"]
    assert rep.block_tier_preservation == nan_or(port["block_tier_preservation"])
    assert rep.tier_preservation == pytest.approx(port["tier_preservation_float32_tiles"], abs=1e-6)
    check_features(cd, case["features_in_block_order"])
    assert block_lists(cd) == case["blocks"]
    assert cd.n_cross_block_edges == case["n_cross_block_edges"]
    assert_edges(edge_rows(cd), case["cross_block_edges"])
    for b, want in case["block_grams"].items():
        assert_gram(cd.gram().block_grams[int(b)], want)


def test_clustered_true_below_the_cap() -> None:
    case = D["clustered_true_5"]
    cd, rep = from_sae_lens(records_d(), IDS[:5], clustered=True, assign_gamma=False)
    assert isinstance(cd, ClusteredDictionary)
    assert block_lists(cd) == case["blocks"]
    check_report(rep, case["report"])
    assert not any(w.startswith("auto-promoted") for w in rep.warnings)
    port = case["report_port_fields"]
    assert rep.block_tier_preservation == nan_or(port["block_tier_preservation"])
    for b, want in case["block_grams"].items():
        assert_gram(cd.gram().block_grams[int(b)], want)


def test_flat_below_the_cap_is_unchanged() -> None:
    case = D["flat_first8"]
    d, rep = from_sae_lens(records_d(), IDS[:8], n_clusters=3, assign_gamma=True)
    assert type(d) is Dictionary
    assert rep.tier_preservation == pytest.approx(case["report_tier_preservation"], abs=TOL)
    assert rep.n_blocks is None and rep.block_tier_preservation is None
    assert rep.mean_block_size is None and rep.n_cross_block_edges is None


def test_strict_above_the_cap() -> None:
    with pytest.raises(CapacityError) as e:
        from_sae_lens(records_d(), IDS[:9], clustered=False)
    msg = str(e.value)
    assert "9" in msg and "MPSRung1" in msg and "8" in msg and "clustered=None or True" in msg
    assert isinstance(e.value, ValueError)


def test_clustered_argument_rules() -> None:
    recs = records_d()
    for bad in (1, "yes", 0):
        with pytest.raises(FeatureSelectionError, match="clustered: got"):
            from_sae_lens(recs, IDS, clustered=bad)  # type: ignore[arg-type]
    with pytest.raises(FeatureSelectionError, match="block_formation: given with clustered=False"):
        from_sae_lens(recs, IDS[:4], clustered=False, block_formation=BlockFormation("cosine"))
    with pytest.raises(FeatureSelectionError, match="activation_traces: given with clustered"):
        from_sae_lens(recs, IDS[:4], clustered=False, activation_traces=np.ones((3, 4)))
    with pytest.raises(FeatureSelectionError, match="block_formation: got str"):
        from_sae_lens(recs, IDS, block_formation="cosine")  # type: ignore[arg-type]
    with pytest.raises(FeatureSelectionError, match="only BlockFormation"):
        from_sae_lens(recs, IDS, activation_traces=np.ones((3, 20)))
    with pytest.raises(FeatureSelectionError, match="needs a"):
        from_sae_lens(recs, IDS, block_formation=BlockFormation("co_firing"))
    # the selection checks still run first, without the cap
    with pytest.raises(FeatureSelectionError, match="repeated"):
        from_sae_lens(recs, [*IDS, IDS[0]])
    # unused under a flat clustered=None result
    d, _ = from_sae_lens(recs, IDS[:4], block_formation=BlockFormation("cosine"))
    assert type(d) is Dictionary


def test_co_firing_import_uses_the_traces_in_selection_order() -> None:
    recs = records_d()
    rng = np.random.default_rng(1)
    traces = (rng.random((64, 20)) < 0.3).astype(float)
    bf = BlockFormation("co_firing", co_firing_threshold=0.2, block_size_max=4)
    cd, rep = from_sae_lens(recs, IDS, block_formation=bf, activation_traces=traces)
    assert isinstance(cd, ClusteredDictionary) and rep.n_blocks == cd.n_blocks
    assert max(cd.block_view(b).n_features for b in range(cd.n_blocks)) <= 4


def test_labels_user_declared_e() -> None:
    case = REF17["labels_user_declared_E"]
    x, lab = planted(5, 12, [5, 5], 0.4)
    labels = [("A" if lab[i] == 0 else "B") + f"/x{i}" for i in range(10)]
    assert labels == case["inputs"]["labels"]
    recs = {
        i: SAEFeatureRecord(feature_id=i, name=f"lab_{i}", projection=x[i], label=labels[i])
        for i in range(10)
    }
    cd, rep = from_sae_lens(
        recs,
        list(range(10)),
        assign_gamma=True,
        block_formation=BlockFormation("user_declared", cosine_threshold=0.3, block_size_max=3),
    )
    exp = case["expected"]
    check_report(rep, exp["report"])
    assert block_lists(cd) == exp["blocks"]
    assert [b.name for b in cd.blocks] == exp["block_names"]
    assert [dict(b.hierarchy) for b in cd.blocks] == exp["block_hierarchies"]
    check_features(cd, exp["features_in_block_order"])
    assert_edges(edge_rows(cd), exp["cross_block_edges"])
    for b, want in exp["block_grams"].items():
        assert_gram(cd.gram().block_grams[int(b)], want)
    assert rep.block_tier_preservation == pytest.approx(exp["block_tier_preservation"], abs=TOL)
    assert rep.tier_preservation == pytest.approx(exp["tier_preservation_float32_tiles"], abs=1e-6)


def test_rung3_m() -> None:
    case = REF17["rung3_M"]
    x = planted(31, 20, [10, 10, 4], 0.5)[0]
    recs = {i: SAEFeatureRecord(feature_id=i, name=f"m_{i}", projection=x[i]) for i in range(24)}
    cd, rep = from_sae_lens(recs, list(range(24)), encoding=Rung3(), assign_gamma=False)
    exp = case["expected"]
    assert cd.n_blocks == exp["n_blocks"] and block_lists(cd) == exp["blocks"]
    assert rep.warnings == exp["warnings"]
    assert type(cd.encoding).__name__ == exp["encoding"]
    assert cd.n_cross_block_edges == exp["n_cross_block_edges"]
    assert rep.tier_preservation == pytest.approx(exp["tier_preservation"], abs=1e-6)


def test_tier_t() -> None:
    exp = REF17["tier_T"]["expected"]
    x = planted(123, 32, [40] * 5, 0.7)[0]
    recs = {i: SAEFeatureRecord(feature_id=i, name=f"t_{i}", projection=x[i]) for i in range(200)}
    cd, rep = from_sae_lens(recs, list(range(200)), assign_gamma=False)
    assert rep.tier_preservation == pytest.approx(exp["tier_preservation"], abs=1e-6)
    assert rep.tier_preservation == pytest.approx(exp["tier_preservation_float32_tiles"], abs=1e-6)
    assert rep.block_tier_preservation == pytest.approx(exp["block_tier_preservation"], abs=TOL)
    assert cd.n_blocks == exp["n_blocks"]
    assert [cd.block_view(b).n_features for b in range(cd.n_blocks)] == exp["block_sizes"]
    assert cd.n_cross_block_edges == exp["n_cross_block_edges"]
    assert rep.beta_variance_explained == pytest.approx(exp["beta_variance_explained"], abs=TOL)
    assert rep.warnings == exp["warnings"]
