"""Spec 15 §§1–2: phase / amp knobs from decoder geometry, geometric profiles,
exact triage for φ ≠ 0 — every reference case, an independent oracle for
each rule (eigendecomposition instead of SVD, brute-force ranking) and
hypothesis properties."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spec15_cases import ATOL, CASES, case_ids, records_of, rows_of

import polygram
from polygram import Dictionary, Feature, HEA_Rung2, MPSRung1, Rung3
from polygram.analysis import predict_cancellation_depth
from polygram.config import SAEImportConfig
from polygram.errors import FeatureSelectionError, ProfileError
from polygram.geometry import (
    ClusteredKnobAssignment,
    GeometricFidelity,
    GeometricProfile,
    KnobAssignment,
    KnobAssignmentResult,
    RankRecallAtKFidelity,
    TierPreservationFidelity,
    UniformSphereKnobAssignment,
    available_profiles,
    clustered,
    get_profile,
    register_profile,
    uniform_sphere,
)
from polygram.sae import SAEFeatureRecord, from_sae_lens, kmeans_partition

IMPORT_CASES = [
    "phase_knobs_mps",
    "phase_knobs_rank2",
    "amp_knobs_rung3",
    "phase_knobs_labels_gamma",
    "uniform_sphere_default_k",
    "uniform_sphere_k2_gamma",
]
KNOB_FIELDS = ("alpha", "beta", "gamma", "phi", "theta_amp", "psi_aux")


def _import(case: dict[str, Any]) -> tuple[Dictionary, Any]:
    recs = records_of(case["inputs"]["records"])
    kw = dict(case["inputs"]["from_sae_lens_kwargs"])
    if kw.get("encoding") == "rung3":
        kw["encoding"] = Rung3()
    return from_sae_lens(recs, case_ids(case, recs), **kw)


def _records(rows: np.ndarray) -> dict[int, SAEFeatureRecord]:
    return {i: SAEFeatureRecord(i, f"feat_{i}", row) for i, row in enumerate(rows)}


# ------------------------------------------------------------ reference
@pytest.mark.parametrize("key", IMPORT_CASES)
def test_import_reference_case(key: str) -> None:
    want = CASES[key]["expected"]
    d, rep = _import(CASES[key])
    for knob in KNOB_FIELDS:
        if knob in want:
            got = [getattr(f, knob) for f in d.features]
            np.testing.assert_allclose(got, want[knob], atol=ATOL, rtol=0, err_msg=knob)
    np.testing.assert_allclose(np.abs(d.gram()) ** 2, want["overlap_sq"], atol=ATOL, rtol=0)
    assert [f.cluster for f in d.features] == want["cluster"]
    assert rep.cluster_method == want["cluster_method"]
    assert rep.gamma_method == want["gamma_method"]
    assert rep.profile == want["profile"]
    assert list(rep.assigned_knobs) == want["assigned_knobs"]
    assert rep.beta_variance_explained == pytest.approx(want["beta_variance_explained"], abs=ATOL)
    assert rep.geometric_fidelity == pytest.approx(want["geometric_fidelity"], abs=ATOL)
    if want["tier_preservation"] is None:
        assert rep.tier_preservation is None
    else:
        assert rep.tier_preservation == pytest.approx(want["tier_preservation"], abs=ATOL)
    clustering = [w for w in rep.warnings if not w.startswith("assign_")]
    assert clustering == want["warnings_from_clustering"]


def test_rank2_notes_the_missing_axis() -> None:
    _, rep = _import(CASES["phase_knobs_rank2"])
    notes = [w for w in rep.warnings if w.startswith("assign_")]
    assert notes == [
        "assign_phase_knobs: phi left at its default (PC3 unavailable: 2 usable principal axes)"
    ]


@pytest.mark.parametrize("key", ["triage_phase_exact", "triage_phase_toy"])
def test_triage_reference_case(key: str) -> None:
    case = CASES[key]
    recs = records_of(case["inputs"]["records"])
    pred = predict_cancellation_depth(
        recs, case_ids(case, recs), **case["inputs"]["from_sae_lens_kwargs"]
    )
    want = case["expected"]
    np.testing.assert_allclose(
        [f.alpha for f in pred.dictionary.features], want["alpha"], atol=ATOL
    )
    np.testing.assert_allclose([f.phi for f in pred.dictionary.features], want["phi"], atol=ATOL)
    assert len(pred.pairs) == len(want["pairs"])
    for p, w in zip(pred.pairs, want["pairs"], strict=True):
        assert (p.feature_a, p.feature_b) == (w["a"], w["b"])
        assert p.current_overlap == pytest.approx(w["current"], abs=ATOL)
        assert abs(p.M - w["M"]) <= ATOL
        assert abs(p.V - w["V"]) <= ATOL
        assert p.structural_floor == pytest.approx(w["floor"], abs=ATOL)
        assert p.cancellation_gap == pytest.approx(w["gap"], abs=ATOL)
    for name, v in want["feature_sensitivity"].items():
        assert pred.feature_sensitivity[name] == pytest.approx(v, abs=ATOL)
    assert pred.encoding_suitability_score == pytest.approx(
        want["encoding_suitability_score"], abs=ATOL
    )
    # 0.15's flip-to-absolute-π floors are wrong wherever φ matters
    wrong = want["upstream_0_15_triage_structural_floor_WRONG"]
    assert any(abs(p.structural_floor - w) > 1e-3 for p, w in zip(pred.pairs, wrong, strict=True))


def test_rank_recall_reference_case() -> None:
    case = CASES["rank_recall_fidelity"]
    rows = rows_of(case["inputs"]["projections"])
    feats = [Feature(f"feat_{i}", "c", beta=b) for i, b in enumerate(case["inputs"]["betas"])]
    d = Dictionary("D", feats, {"c": [f.name for f in feats]}, MPSRung1())
    want = case["expected"]
    assert RankRecallAtKFidelity().compute(rows, d) == pytest.approx(want["rank_recall"], abs=ATOL)
    assert TierPreservationFidelity().compute(rows, d) == pytest.approx(
        want["tier_preservation"], abs=ATOL
    )


# ------------------------------------------------------------- oracles
def _oracle_coordinate(rows: np.ndarray, axis: int) -> np.ndarray | None:
    """PC coordinates by eigendecomposition of XᵀX (not SVD), first row ≤ 0;
    None when the axis is not spanned: Gaussian rows span min(n − 1, d) axes."""
    n, d = rows.shape
    if axis >= min(n - 1, d):
        return None
    x = rows - rows.mean(axis=0)
    lam, vec = np.linalg.eigh(x.T @ x)
    vec = vec[:, np.argsort(lam)[::-1]]
    c = x @ vec[:, axis]
    return -c if c[0] > 0 else c


def _oracle_knob(rows: np.ndarray, axis: int, lo: float, hi: float, default: float) -> np.ndarray:
    c = _oracle_coordinate(rows, axis)
    if c is None or np.abs(c).max() < 1e-12:
        return np.full(rows.shape[0], default)
    return lo + (c / np.abs(c).max() + 1) / 2 * (hi - lo)


def _well_separated(rows: np.ndarray, upto: int) -> bool:
    """Singular values distinct enough that eigh and SVD pick the same axes."""
    s = np.linalg.svd(rows - rows.mean(axis=0), compute_uv=False)
    s = s[: upto + 2]
    gaps = np.abs(np.diff(s)) / max(s[0], 1e-300)
    return s[0] > 1e-6 and bool((gaps > 1e-4).all())


rows_strategy = st.integers(0, 2**32 - 1).flatmap(
    lambda seed: st.tuples(st.just(seed), st.integers(2, 8), st.integers(1, 10))
)


@given(rows_strategy)
def test_phase_knobs_match_the_eigen_oracle(params: tuple[int, int, int]) -> None:
    seed, n, d = params
    rows = np.random.default_rng(seed).standard_normal((n, d))
    if not _well_separated(rows, 3):
        return
    dic, rep = from_sae_lens(_records(rows), list(range(n)), assign_phase_knobs=True)
    alpha = _oracle_knob(rows, 1, 0.0, 2 * math.pi, 0.0)
    phi = _oracle_knob(rows, 2, 0.0, 2 * math.pi, 0.0)
    np.testing.assert_allclose([f.alpha for f in dic.features], alpha, atol=1e-7)
    np.testing.assert_allclose([f.phi for f in dic.features], phi, atol=1e-7)
    expect = tuple(
        k for k, a in (("alpha", 1), ("phi", 2)) if _oracle_coordinate(rows, a) is not None
    )
    assert rep.assigned_knobs == expect


@given(rows_strategy)
def test_amp_knobs_match_the_eigen_oracle(params: tuple[int, int, int]) -> None:
    seed, n, d = params
    rows = np.random.default_rng(seed).standard_normal((n, d))
    if not _well_separated(rows, 5):
        return
    dic, rep = from_sae_lens(
        _records(rows), list(range(n)), assign_amp_knobs=True, encoding=Rung3()
    )
    theta = _oracle_knob(rows, 3, 0.0, math.pi / 2, math.pi / 4)
    psi = _oracle_knob(rows, 4, 0.0, 2 * math.pi, 0.0)
    np.testing.assert_allclose([f.theta_amp for f in dic.features], theta, atol=1e-7)
    np.testing.assert_allclose([f.psi_aux for f in dic.features], psi, atol=1e-7)
    # the amp flag alone leaves the phase knobs alone
    assert all(f.alpha == 0.0 and f.phi == 0.0 for f in dic.features)
    assert set(rep.assigned_knobs) <= {"theta_amp", "psi_aux"}


@given(rows_strategy, st.booleans(), st.booleans())
def test_knob_properties(params: tuple[int, int, int], phase: bool, amp: bool) -> None:
    seed, n, d = params
    rows = np.random.default_rng(seed).standard_normal((n, d)) * 3
    dic, rep = from_sae_lens(
        _records(rows),
        list(range(n)),
        assign_phase_knobs=phase,
        assign_amp_knobs=amp,
        encoding=Rung3(),
    )
    plain, _ = from_sae_lens(_records(rows), list(range(n)), encoding=Rung3())
    # knobs never touch clusters, β or γ
    for a, b in zip(dic.features, plain.features, strict=True):
        assert (a.cluster, a.beta, a.gamma) == (b.cluster, b.beta, b.gamma)
    ranges = {
        "alpha": (0, 2 * math.pi),
        "phi": (0, 2 * math.pi),
        "theta_amp": (0, math.pi / 2),
        "psi_aux": (0, 2 * math.pi),
    }
    for knob, (lo, hi) in ranges.items():
        vals = np.array([getattr(f, knob) for f in dic.features])
        assert ((vals >= lo - 1e-12) & (vals <= hi + 1e-12)).all()
        if knob in rep.assigned_knobs:
            # the row with the largest |coordinate| sits on an end of the range
            assert min(abs(vals - lo).min(), abs(vals - hi).min()) < 1e-9
        else:
            default = math.pi / 4 if knob == "theta_amp" else 0.0
            assert (vals == default).all()
    assert list(rep.assigned_knobs) == sorted(
        rep.assigned_knobs, key=("alpha", "phi", "theta_amp", "psi_aux").index
    )
    if not phase and not amp:
        np.testing.assert_array_equal(dic.gram(), plain.gram())


@given(rows_strategy)
def test_phi_sign_is_irrelevant_but_alpha_sign_is_not(params: tuple[int, int, int]) -> None:
    """Spec 15 §0.2: flipping φ for every feature (φ → 2π − φ) leaves every
    |G|² as it is — so the sign rule matters for α, not φ."""
    seed, n, d = params
    rows = np.random.default_rng(seed).standard_normal((n, d))
    dic, _ = from_sae_lens(_records(rows), list(range(n)), assign_phase_knobs=True)
    flipped = Dictionary(
        "F",
        [replace(f, phi=2 * math.pi - f.phi) for f in dic.features],
        dic.hierarchy,
        dic.encoding,
    )
    np.testing.assert_allclose(np.abs(flipped.gram()) ** 2, np.abs(dic.gram()) ** 2, atol=1e-12)


@given(rows_strategy)
def test_triage_is_exact_for_imported_phases(params: tuple[int, int, int]) -> None:
    """The method-free check of §1.6: φ_j := φ_i and φ_j := φ_i + π give M ± V."""
    seed, n, d = params
    rows = np.random.default_rng(seed).standard_normal((n, d))
    pred = predict_cancellation_depth(_records(rows), list(range(n)), assign_phase_knobs=True)
    feats = pred.dictionary.features
    index = {f.name: k for k, f in enumerate(feats)}
    for p in pred.pairs:
        i, j = index[p.feature_a], index[p.feature_b]
        ov = []
        for shift in (0.0, math.pi):
            changed = list(feats)
            changed[j] = replace(feats[j], phi=(feats[i].phi + shift) % (2 * math.pi))
            g = Dictionary("T", changed, pred.dictionary.hierarchy, pred.dictionary.encoding)
            ov.append(float(abs(g.gram()[i, j]) ** 2))
        assert ov[0] == pytest.approx(p.M + p.V, abs=1e-9)
        assert ov[1] == pytest.approx(p.M - p.V, abs=1e-9)
        assert p.structural_floor == pytest.approx(min(ov), abs=1e-9)
        delta = feats[i].phi - feats[j].phi
        assert p.current_overlap == pytest.approx(p.M + p.V * math.cos(delta), abs=1e-9)


def _oracle_rank_recall(rows: np.ndarray, dic: Dictionary) -> float | None:
    n = rows.shape[0]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if n <= 1:
        return None
    k = max(3, len(pairs) // 2)
    if len(pairs) < k + 1:
        return None
    g = np.abs(dic.gram()) ** 2
    cos = []
    for i, j in pairs:
        a, b = rows[i], rows[j]
        na, nb = np.linalg.norm(a) or 1.0, np.linalg.norm(b) or 1.0
        cos.append(abs(float(a @ b)) / (na * nb))
    ov = [float(g[i, j]) for i, j in pairs]
    top_a = sorted(range(len(pairs)), key=lambda t: (-cos[t], t))[:k]
    top_b = sorted(range(len(pairs)), key=lambda t: (-ov[t], t))[:k]
    return len(set(top_a) & set(top_b)) / k


@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(2, 10))
def test_rank_recall_matches_brute_force(seed: int, n: int, d: int) -> None:
    rows = np.random.default_rng(seed).standard_normal((n, d))
    dic, rep = from_sae_lens(_records(rows), list(range(n)), profile="uniform-sphere")
    want = _oracle_rank_recall(rows, dic)
    assert rep.geometric_fidelity == want
    assert rep.tier_preservation is None
    if n <= 3:
        assert want is None


@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.integers(2, 12))
def test_uniform_sphere_beta_is_pc1(seed: int, n: int, d: int) -> None:
    rows = np.random.default_rng(seed).standard_normal((n, d))
    if not _well_separated(rows, 0):
        return
    dic, rep = from_sae_lens(
        _records(rows), list(range(n)), profile="uniform-sphere", beta_range=(-1.0, 2.0)
    )
    want = _oracle_knob(rows, 0, -1.0, 2.0, 0.5)
    np.testing.assert_allclose([f.beta for f in dic.features], want, atol=1e-7)
    s = np.linalg.svd(rows - rows.mean(axis=0), compute_uv=False)
    assert rep.beta_variance_explained == pytest.approx(s[0] ** 2 / (s**2).sum(), abs=1e-12)
    assert rep.cluster_method == "pca_axis"


def test_uniform_sphere_keeps_the_best_of_n_init_restarts() -> None:
    rows = rows_of({"recipe": "planted", "seed": 7, "n": 8, "d": 6, "n_groups": 3, "sigma": 0.6})
    unit = rows / np.linalg.norm(rows, axis=1)[:, None]

    def inertia(labels: np.ndarray) -> float:
        return sum(
            float(((unit[labels == c] - unit[labels == c].mean(axis=0)) ** 2).sum())
            for c in np.unique(labels)
        )

    runs = [kmeans_partition(unit, 3, seed=s) for s in range(4)]
    best = min(range(4), key=lambda s: (inertia(runs[s]), s))
    res = UniformSphereKnobAssignment().assign(
        rows,
        [f"f{i}" for i in range(8)],
        n_clusters=3,
        gamma_range=(-0.25, 0.25),
        assign_gamma=False,
        seed=0,
    )
    assert res.cluster_per_feature == [f"cluster_{int(v)}" for v in runs[best]]


def test_single_row_uniform_sphere() -> None:
    rows = np.ones((1, 4))
    dic, rep = from_sae_lens(_records(rows), [0], profile="uniform-sphere")
    assert dic.features[0].beta == 0.0
    assert rep.beta_variance_explained == 1.0
    assert rep.geometric_fidelity is None


# ------------------------------------------------- encodings and notes
def test_hea_gets_no_knobs_and_an_unchanged_gram() -> None:
    rows = np.random.default_rng(3).standard_normal((4, 6))
    enc = HEA_Rung2(n_qubits=2, depth=1)
    d0, _ = from_sae_lens(_records(rows), [0, 1, 2, 3], encoding=enc)
    d1, rep = from_sae_lens(
        _records(rows), [0, 1, 2, 3], encoding=enc, assign_phase_knobs=True, assign_amp_knobs=True
    )
    np.testing.assert_array_equal(d0.gram(), d1.gram())
    assert rep.assigned_knobs == ()
    assert rep.warnings == [
        "assign_phase_knobs: HEA_Rung2 has no MPS phase knobs; nothing assigned",
        "assign_amp_knobs: HEA_Rung2 has no amp branch; nothing assigned",
    ]


def test_mps_amp_flag_notes_and_assigns_nothing() -> None:
    rows = np.random.default_rng(4).standard_normal((6, 8))
    d0, _ = from_sae_lens(_records(rows), list(range(6)))
    d1, rep = from_sae_lens(_records(rows), list(range(6)), assign_amp_knobs=True)
    np.testing.assert_array_equal(d0.gram(), d1.gram())
    assert rep.warnings == ["assign_amp_knobs: MPSRung1 has no amp branch; nothing assigned"]


def test_two_rows_get_no_phase_knobs() -> None:
    rows = np.random.default_rng(5).standard_normal((2, 5))
    dic, rep = from_sae_lens(_records(rows), [0, 1], assign_phase_knobs=True)
    assert rep.assigned_knobs == ()
    assert [f.alpha for f in dic.features] == [0.0, 0.0]
    assert len([w for w in rep.warnings if w.startswith("assign_phase_knobs")]) == 2


def test_user_path_gets_knobs_and_keeps_its_beta_spread() -> None:
    rows = np.random.default_rng(6).standard_normal((5, 7))
    assign = {i: "a" if i < 2 else "b" for i in range(5)}
    dic, rep = from_sae_lens(
        _records(rows),
        list(range(5)),
        cluster_assignments=assign,
        assign_phase_knobs=True,
        beta_range=(-1.0, 1.0),
    )
    assert rep.cluster_method == "user"
    assert [f.beta for f in dic.features] == [-1.0, -1.0, 1.0, 1.0, 1.0]
    assert rep.assigned_knobs == ("alpha", "phi")


def test_beta_range_is_honoured_on_the_kmeans_path() -> None:
    """§13.3: 0.15 ignored beta_range on the strategy path (β stayed ±0.5)."""
    rows = np.random.default_rng(8).standard_normal((6, 5))
    dic, _ = from_sae_lens(_records(rows), list(range(6)), beta_range=(-1.0, 1.0))
    assert sorted({f.beta for f in dic.features}) == [-1.0, 1.0]


def test_default_import_is_0_0_1() -> None:
    """No flag, no profile: α = φ = 0, k-means seed 0, the clustered profile."""
    rows = np.random.default_rng(9).standard_normal((7, 5))
    dic, rep = from_sae_lens(_records(rows), list(range(7)))
    assert all(f.alpha == 0.0 and f.phi == 0.0 for f in dic.features)
    labels = kmeans_partition(rows, 2)
    np.testing.assert_array_equal(labels, kmeans_partition(rows, 2, seed=0))
    assert [f.cluster for f in dic.features] == [f"cluster_{int(v)}" for v in labels]
    assert rep.profile == "clustered" and rep.assigned_knobs == ()
    assert rep.tier_preservation == rep.geometric_fidelity


# ------------------------------------------------------------ profiles
def test_registry() -> None:
    names = available_profiles()
    assert names == sorted(names) and {"clustered", "uniform-sphere"} <= set(names)
    assert get_profile("clustered").default_n_clusters == 2
    us = get_profile("uniform-sphere")
    assert (us.default_n_clusters, us.default_gamma_range) == (16, (-0.25, 0.25))
    assert isinstance(us.knob_assignment, UniformSphereKnobAssignment)
    assert isinstance(us.geometric_fidelity, RankRecallAtKFidelity)
    assert isinstance(clustered().knob_assignment, ClusteredKnobAssignment)
    assert clustered() == clustered() and clustered() is not clustered()
    assert uniform_sphere().name == "uniform-sphere"
    for obj in (ClusteredKnobAssignment(), UniformSphereKnobAssignment()):
        assert isinstance(obj, KnobAssignment)
    for fid in (TierPreservationFidelity(), RankRecallAtKFidelity()):
        assert isinstance(fid, GeometricFidelity)


def test_registry_refusals() -> None:
    with pytest.raises(KeyError, match=r"nope.*clustered.*uniform-sphere"):
        get_profile("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_profile(clustered())
    with pytest.raises(TypeError, match="GeometricProfile"):
        register_profile("clustered")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        GeometricProfile("", ClusteredKnobAssignment(), TierPreservationFidelity(), 2, (0, 1))
    with pytest.raises(ValueError, match="name"):
        GeometricProfile(3, ClusteredKnobAssignment(), TierPreservationFidelity(), 2, (0, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low <= high"):
        GeometricProfile("x", ClusteredKnobAssignment(), TierPreservationFidelity(), 2, (1, 0))
    with pytest.raises(ProfileError, match="n_init"):
        UniformSphereKnobAssignment(n_init=0)


def test_from_sae_lens_profile_refusals() -> None:
    recs = _records(np.eye(4))
    with pytest.raises(KeyError, match=r"'bogus'.*\['clustered', 'uniform-sphere'"):
        from_sae_lens(recs, [0, 1, 2], profile="bogus")
    with pytest.raises(TypeError, match="profile"):
        from_sae_lens(recs, [0, 1, 2], profile=3)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="registered"):
        from_sae_lens(recs, [0, 1, 2], config=SAEImportConfig(profile="bogus"))
    with pytest.raises(TypeError, match="SAEImportConfig"):
        from_sae_lens(recs, [0, 1, 2], config={"assign_gamma": True})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="assign_phase_knobs"):
        from_sae_lens(recs, [0, 1, 2], assign_phase_knobs="yes")  # type: ignore[arg-type]
    with pytest.raises(FeatureSelectionError, match="n_clusters"):
        from_sae_lens(recs, [0, 1, 2], n_clusters=0)


class _UpstreamStyle:
    """A strategy written for 0.15: no beta_range, returns its own α."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def assign(
        self,
        projections: np.ndarray,
        feature_names: Sequence[str],
        *,
        n_clusters: int,
        gamma_range: tuple[float, float],
        assign_gamma: bool,
        seed: int,
        assign_amp_knobs: bool = False,
        assign_phase_knobs: bool = False,
        encoding: Any = None,
    ) -> KnobAssignmentResult:
        self.calls.append(
            {"n_clusters": n_clusters, "gamma_range": gamma_range, "encoding": encoding}
        )
        n = len(feature_names)
        return KnobAssignmentResult(
            cluster_per_feature=["only"] * n,
            betas=[0.1] * n,
            gammas=[gamma_range[1]] * n,
            cluster_method="custom",
            beta_variance_explained=0.5,
            alphas=[0.25 * k for k in range(n)],
        )


def test_third_party_profile() -> None:
    strat = _UpstreamStyle()
    prof = GeometricProfile(
        "test-upstream-style", strat, TierPreservationFidelity(), 5, (-0.1, 0.3)
    )
    register_profile(prof)
    rows = np.random.default_rng(10).standard_normal((5, 6))
    dic, rep = from_sae_lens(
        _records(rows), list(range(5)), profile="test-upstream-style", assign_phase_knobs=True
    )
    call = strat.calls[-1]
    assert call["n_clusters"] == 5  # the profile's default
    assert call["gamma_range"] == (-0.1, 0.3)  # default_gamma_range is used (§13.8)
    assert isinstance(call["encoding"], MPSRung1)  # resolved before dispatch (§13.1)
    assert [f.alpha for f in dic.features] == [0.0, 0.25, 0.5, 0.75, 1.0]  # the strategy's α wins
    phi = _oracle_knob(rows, 2, 0.0, 2 * math.pi, 0.0)
    np.testing.assert_allclose([f.phi for f in dic.features], phi, atol=1e-7)  # filled
    assert rep.assigned_knobs == ("alpha", "phi")
    assert rep.cluster_method == "custom" and rep.profile == "test-upstream-style"
    # kwarg > config > profile default
    from_sae_lens(
        _records(rows),
        list(range(5)),
        profile=prof,
        n_clusters=3,
        config=SAEImportConfig(n_clusters=4, gamma_range=(0.0, 0.0)),
    )
    assert strat.calls[-1]["n_clusters"] == 3 and strat.calls[-1]["gamma_range"] == (0.0, 0.0)
    from_sae_lens(
        _records(rows), list(range(5)), profile=prof, config=SAEImportConfig(n_clusters=4)
    )
    assert strat.calls[-1]["n_clusters"] == 4


def test_config_precedence_case() -> None:
    case = CASES["config_precedence"]
    rows = np.random.default_rng(11).standard_normal((6, 5))
    _, rep = from_sae_lens(
        _records(rows),
        list(range(6)),
        config=SAEImportConfig(assign_gamma=True, profile="uniform-sphere"),
        profile="clustered",
    )
    want = case["expected"]["d"]
    assert (rep.gamma_method, rep.profile) == (want["gamma_method"], want["profile"])


def test_top_level_exports() -> None:
    for name in (
        "GeometricProfile",
        "register_profile",
        "get_profile",
        "available_profiles",
        "uniform_sphere",
    ):
        assert getattr(polygram, name) is getattr(polygram.geometry, name)
    # polygram.clustered is the clustered-dictionary module (spec 18 §6); called, it is
    # the clustered-profile factory
    assert polygram.clustered() == polygram.geometry.clustered()
