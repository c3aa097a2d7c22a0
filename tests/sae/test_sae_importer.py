"""``from_sae_lens``: parity with every ``from_sae_lens*`` reference case,
refusals, and hypothesis properties on synthetic SAEs with planted clusters."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sae_helpers import TOY, write_numpy

from polygram import HEA_Rung2, MPSRung1
from polygram.errors import CapacityError, DictionaryError, FeatureSelectionError, SAEFormatError
from polygram.sae import (
    SAEFeatureRecord,
    SelectionReport,
    from_sae_lens,
    load_sae_safetensors,
    load_toy_sae,
)

TOL = 1e-12


@pytest.fixture(scope="module")
def toy() -> dict[int, SAEFeatureRecord]:
    return load_toy_sae(TOY)


def unlabelled(recs: dict[int, SAEFeatureRecord]) -> dict[int, SAEFeatureRecord]:
    return {i: dataclasses.replace(r, label=None) for i, r in recs.items()}


def partition(assign: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for name, c in assign.items():
        groups.setdefault(c, set()).add(name)
    return {frozenset(g) for g in groups.values()}


def close(a: float | None, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(b, float) and math.isnan(b):
        return math.isnan(a)
    return abs(a - b) <= TOL


def check_report(rep: SelectionReport, want: dict[str, Any], kmeans: bool) -> None:
    for key in ("n_input_features", "n_selected", "gamma_method", "cluster_method"):
        if key in want:
            assert getattr(rep, key) == want[key], key
    if "warnings" in want:
        assert list(rep.warnings) == want["warnings"]
    if "cluster_assignments" in want:
        if kmeans:  # k-means labels are compared up to relabelling
            assert partition(dict(rep.cluster_assignments)) == partition(
                want["cluster_assignments"]
            )
        else:
            assert dict(rep.cluster_assignments) == want["cluster_assignments"]
    assert close(rep.beta_variance_explained, want["beta_variance_explained"])
    if "tier_preservation" in want:
        assert close(rep.tier_preservation, want["tier_preservation"])
    for name, v in want.get("reconstruction_error", {}).items():
        assert close(rep.reconstruction_error[name], v), name


def check_features(d: Any, want: list[dict[str, Any]], kmeans: bool) -> None:
    assert [f.name for f in d.features] == [w["name"] for w in want]
    for f, w in zip(d.features, want):
        for k in ("alpha", "beta", "gamma", "phi"):
            if k in w:
                assert close(getattr(f, k), w[k]), (f.name, k)
        if not kmeans:
            assert f.cluster == w["cluster"]
    got = partition({f.name: f.cluster for f in d.features})
    assert got == partition({w["name"]: w["cluster"] for w in want})


def test_from_sae_lens_reference_cases(
    ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]
) -> None:
    cases = ref["from_sae_lens"]
    assert len(cases) == 8
    for case in cases:
        inp = case["inputs"]
        kmeans = "label=None" in inp["fixture"]
        recs = unlabelled(toy) if kmeans else toy
        d, rep = from_sae_lens(recs, inp["feature_ids"], **inp["kwargs"])
        check_features(d, case["features"], kmeans)
        check_report(rep, case["report"], kmeans)
        if kmeans:
            # hierarchy as a partition, keys in first-appearance order
            assert [set(v) for v in d.hierarchy.values()] == [
                set(v) for v in case["hierarchy"].values()
            ]
        else:
            assert {k: list(v) for k, v in d.hierarchy.items()} == case["hierarchy"]
            assert list(d.hierarchy) == list(case["hierarchy"])
        if "overlap_sq" in case:
            np.testing.assert_allclose(d.overlaps(), case["overlap_sq"], rtol=0, atol=TOL)
        assert rep.feature_ids == tuple(inp["feature_ids"])


def test_kmeans_labels_match_numpy_stream(
    ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]
) -> None:
    # stronger than the partition: the exact numpy call sequence also gives the same names
    for case in ref["from_sae_lens"]:
        if "label=None" in case["inputs"]["fixture"]:
            d, _ = from_sae_lens(
                unlabelled(toy), case["inputs"]["feature_ids"], **case["inputs"]["kwargs"]
            )
            assert [f.cluster for f in d.features] == [w["cluster"] for w in case["features"]]


def test_asymmetric_ranges(ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]) -> None:
    case = ref["from_sae_lens_asymmetric_ranges"]
    inp = dict(case["inputs"])
    ids = inp.pop("feature_ids")
    inp["gamma_range"] = tuple(inp["gamma_range"])
    inp["beta_range"] = tuple(inp["beta_range"])
    d, rep = from_sae_lens(toy, ids, **inp)
    assert d.name == "Asym"
    check_features(d, case["features"], kmeans=False)
    assert close(rep.beta_variance_explained, case["report"]["beta_variance_explained"])
    assert close(rep.tier_preservation, case["report"]["tier_preservation"])


def test_single_feature(ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]) -> None:
    case = ref["from_sae_lens_single_feature"]
    d, rep = from_sae_lens(toy, case["inputs"]["feature_ids"])
    assert d.features[0].beta == case["beta"] and d.features[0].cluster == case["cluster"]
    assert rep.cluster_method == case["cluster_method"]
    assert rep.tier_preservation is None and case["tier_preservation"] is None
    assert rep.beta_variance_explained == case["beta_variance_explained"]


def test_user_clusters(ref: dict[str, Any], toy: dict[int, SAEFeatureRecord]) -> None:
    case = ref["from_sae_lens_user_clusters"]
    assignments = {int(k): v for k, v in case["inputs"]["cluster_assignments"].items()}
    d, rep = from_sae_lens(toy, case["inputs"]["feature_ids"], cluster_assignments=assignments)
    check_features(d, case["features"], kmeans=False)
    assert {k: list(v) for k, v in d.hierarchy.items()} == case["hierarchy"]
    assert rep.cluster_method == case["cluster_method"]
    assert close(rep.beta_variance_explained, case["beta_variance_explained"])


def test_one_unlabelled_feature_sends_everything_to_kmeans(
    toy: dict[int, SAEFeatureRecord],
) -> None:
    recs = dict(toy)
    recs[5] = dataclasses.replace(recs[5], label="no_slash")
    _, rep = from_sae_lens(recs, [0, 1, 4, 5])
    assert rep.cluster_method == "kmeans"
    recs[5] = dataclasses.replace(recs[5], label="/empty_prefix")
    assert from_sae_lens(recs, [0, 1, 4, 5])[1].cluster_method == "kmeans"


def test_kmeans_degenerate_k(toy: dict[int, SAEFeatureRecord]) -> None:
    d, rep = from_sae_lens(unlabelled(toy), [0, 4, 8], n_clusters=1)
    assert {f.cluster for f in d.features} == {"cluster_0"} and rep.warnings == []
    assert all(f.beta == 0.0 for f in d.features)
    # identical points: k-means++ falls back to a uniform draw, leaves an empty cluster
    same = {i: SAEFeatureRecord(i, f"f{i}", [1.0, 2.0]) for i in range(3)}
    d, rep = from_sae_lens(same, [0, 1, 2], n_clusters=2)
    assert rep.warnings == ["k-means produced 1 empty cluster(s) (k=2, n=3)"]
    assert rep.beta_variance_explained == 1.0  # SS_tot = 0


def test_tier_preservation_zero_vector_and_nan() -> None:
    recs = {
        0: SAEFeatureRecord(0, "a", [0.0, 0.0], label="x/a"),
        1: SAEFeatureRecord(1, "b", [1.0, 0.0], label="x/b"),
        2: SAEFeatureRecord(2, "c", [1.0, 1.0], label="y/c"),
    }
    _, rep = from_sae_lens(recs, [0, 1, 2])
    assert rep.tier_preservation is not None and -1.0 <= rep.tier_preservation <= 1.0
    _, rep = from_sae_lens(recs, [1, 2])
    assert rep.tier_preservation is not None and math.isnan(rep.tier_preservation)


def test_encoding_is_passed_and_caps(toy: dict[int, SAEFeatureRecord]) -> None:
    enc = HEA_Rung2(depth=1, n_qubits=2)
    d, _ = from_sae_lens(toy, [0, 1, 4, 5], encoding=enc)
    assert d.encoding is enc
    with pytest.raises(CapacityError, match="at most 4"):
        from_sae_lens(toy, [0, 1, 2, 3, 4], encoding=enc, clustered=False)
    # above the cap the default (clustered=None) builds a ClusteredDictionary (spec 17 §17.9)
    cd, rep = from_sae_lens(toy, [0, 1, 2, 3, 4], encoding=enc)
    assert type(cd).__name__ == "ClusteredDictionary" and rep.n_blocks == cd.n_blocks


@pytest.mark.parametrize(
    ("ids", "kwargs", "exc", "match"),
    [
        (
            list(range(9)),
            {"clustered": False},
            CapacityError,
            "9 selected but MPSRung1 holds at most 8",
        ),
        ([], {}, FeatureSelectionError, "empty selection"),
        ([0, 99], {}, FeatureSelectionError, r"\[99\] not in records"),
        ([0, 1, 0], {}, FeatureSelectionError, r"repeated id\(s\) \[0\]"),
        (
            [0, 1],
            {"cluster_assignments": {0: "a"}},
            FeatureSelectionError,
            r"no entry for selected id\(s\) \[1\]",
        ),
        (
            [0, 1],
            {"cluster_assignments": {0: "a", 1: ""}},
            FeatureSelectionError,
            "non-empty cluster",
        ),
        ([0, "1"], {}, FeatureSelectionError, "not integers"),
        ([0, 1], {"n_clusters": 0}, FeatureSelectionError, "n_clusters"),
        ([0, 1], {"beta_range": (0.0, math.inf)}, FeatureSelectionError, "beta_range"),
        ([0, 1], {"gamma_range": 0.5}, FeatureSelectionError, "gamma_range"),
        ([0, 1], {"encoding": "mps"}, FeatureSelectionError, "encoding"),
        ([0, 1], {"name": "bad name"}, DictionaryError, "Dictionary.name"),
    ],
)
def test_refusals(
    toy: dict[int, SAEFeatureRecord], ids: list[Any], kwargs: dict[str, Any], exc: type, match: str
) -> None:
    with pytest.raises(exc, match=match) as e:
        from_sae_lens(toy, ids, **kwargs)
    assert isinstance(e.value, ValueError)


def test_record_and_cluster_name_clash_and_dims() -> None:
    recs = {0: SAEFeatureRecord(0, "x", [1.0, 0.0], label="x/x")}
    with pytest.raises(DictionaryError):
        from_sae_lens(recs, [0])
    mixed = {0: SAEFeatureRecord(0, "a", [1.0]), 1: SAEFeatureRecord(1, "b", [1.0, 2.0])}
    with pytest.raises(SAEFormatError, match="different lengths"):
        from_sae_lens(mixed, [0, 1])
    with pytest.raises(FeatureSelectionError, match="expected SAEFeatureRecord"):
        from_sae_lens({0: "nope"}, [0])  # type: ignore[dict-item]


def test_loader_records_are_not_widened(tmp_path: Path, toy: dict[int, SAEFeatureRecord]) -> None:
    rows = np.stack([toy[i].projection for i in range(16)]).astype(np.float32)
    recs = load_sae_safetensors(write_numpy(tmp_path / "t.safetensors", W_dec=rows))
    base = recs[0].projection.base
    from_sae_lens(recs, [0, 1, 4, 5], assign_gamma=True)
    assert all(
        r.projection.dtype == np.float32 and r.projection.base is base for r in recs.values()
    )


# ------------------------------------------------------------ properties


@st.composite
def planted(draw: st.DrawFn) -> tuple[dict[int, SAEFeatureRecord], list[int], list[int]]:
    """Well-separated clusters (orthogonal centres, tiny jitter) and a shuffled id order."""
    k = draw(st.integers(2, 4))
    sizes = [draw(st.integers(1, min(3, 8 // k))) for _ in range(k)]  # ≤ 8 features
    dim = draw(st.integers(k, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:k] * draw(st.floats(0.5, 5.0))
    recs: dict[int, SAEFeatureRecord] = {}
    truth: list[int] = []
    fid = draw(st.integers(0, 1000))
    for c, size in enumerate(sizes):
        for _ in range(size):
            vec = centres[c] + rng.normal(scale=1e-3, size=dim)
            recs[fid] = SAEFeatureRecord(
                fid, f"f{fid}", vec.astype(np.float32), label=f"c{c}/f{fid}"
            )
            truth.append(c)
            fid += draw(st.integers(1, 50))
    order = draw(st.permutations(range(len(truth))))
    ids = [list(recs)[i] for i in order]
    return recs, ids, [truth[i] for i in order]


@given(planted(), st.booleans())
def test_planted_partition_is_recovered(data: Any, gamma: bool) -> None:
    recs, ids, truth = data
    k = len(set(truth))
    want = partition({f"f{i}": str(t) for i, t in zip(ids, truth)})
    by_label = from_sae_lens(recs, ids, assign_gamma=gamma)[1]
    assert by_label.cluster_method == "from_labels"
    assert partition(dict(by_label.cluster_assignments)) == want
    _, rep = from_sae_lens(unlabelled(recs), ids, n_clusters=k, assign_gamma=gamma)
    assert rep.cluster_method == "kmeans"
    assert partition(dict(rep.cluster_assignments)) == want
    assert rep.beta_variance_explained > 0.99


@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 8),
    st.integers(1, 6),
    st.booleans(),
    st.sampled_from([None, 1, 2, 3, 9]),
    st.tuples(st.floats(-2, 0), st.floats(0, 2)),
    st.tuples(st.floats(-1, 0), st.floats(0, 1)),
)
def test_stats_are_in_range(
    seed: int,
    n: int,
    dim: int,
    gamma: bool,
    k: int | None,
    beta_range: tuple[float, float],
    gamma_range: tuple[float, float],
) -> None:
    rng = np.random.default_rng(seed)
    recs = {i: SAEFeatureRecord(i, f"f{i}", rng.normal(size=dim)) for i in range(n)}
    d, rep = from_sae_lens(
        recs, list(range(n)), n_clusters=k, assign_gamma=gamma,
        beta_range=beta_range, gamma_range=gamma_range,
    )  # fmt: skip
    assert 0.0 <= rep.beta_variance_explained <= 1.0
    assert all(v >= 0 for v in rep.reconstruction_error.values())
    if n == 1:
        assert rep.tier_preservation is None
    else:
        tp = rep.tier_preservation
        assert tp is not None and (math.isnan(tp) or -1 - 1e-12 <= tp <= 1 + 1e-12)
    lo, hi = beta_range
    assert all(lo - 1e-12 <= f.beta <= hi + 1e-12 for f in d.features)
    glo, ghi = gamma_range if gamma else (0.0, 0.0)
    assert all(glo - 1e-12 <= f.gamma <= ghi + 1e-12 for f in d.features)
    if gamma and n > 1 and any(len(m) > 1 for m in d.hierarchy.values()):
        # the global rescale puts the largest |score| on an end of the range
        ends = [min(abs(f.gamma - glo), abs(f.gamma - ghi)) for f in d.features]
        assert min(ends) < 1e-9
    assert all(f.alpha == 0.0 and f.phi == 0.0 for f in d.features)
    assert len(rep.warnings) == (1 if (k or 2) > n else 0) + sum("empty" in w for w in rep.warnings)
    assert isinstance(d.encoding, MPSRung1)
