"""``from_sae_lens``: a Polygram ``Dictionary`` from selected SAE features
(spec 05 §5.5), plus the ``SelectionReport`` saying how lossy it was.

Projections decide only *which cluster* a feature joins (labels, or
k-means) and, with ``assign_gamma``, its γ; β is one value per cluster
spread over ``beta_range``; α = φ = 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from polygram.dictionary import Dictionary, Feature
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3
from polygram.errors import FeatureSelectionError, SAEFormatError
from polygram.sae.records import SAEFeatureRecord, selected_ids

__all__ = ["SelectionReport", "from_sae_lens", "kmeans_partition"]

_KMEANS_MAX_ITER = 100


@dataclass(frozen=True)
class SelectionReport:
    """How the projection-vector → (cluster, β, γ) collapse went.

    ``cluster_assignments`` and ``reconstruction_error`` are keyed by
    feature *name*; ``warnings`` is a list of strings (k-means clamp, empty
    clusters), as in 0.0.1; ``feature_ids`` keeps the original SAE indices (in
    selection order; empty for ``triage_dictionary``'s placeholder).
    """

    n_input_features: int
    n_selected: int
    cluster_assignments: Mapping[str, str]
    cluster_method: str
    beta_variance_explained: float
    reconstruction_error: Mapping[str, float]
    tier_preservation: float | None
    gamma_method: str
    warnings: list[str] = field(default_factory=list)
    feature_ids: tuple[int, ...] = field(default=())


def _range(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise FeatureSelectionError(
            f"{name}: got {value!r}; expected a (low, high) pair of finite numbers"
        ) from None
    out = []
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
            raise FeatureSelectionError(
                f"{name}: got {value!r}; expected a (low, high) pair of finite numbers"
            )
        out.append(float(v))
    return out[0], out[1]


def _check_selection(
    records: Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int],
    cap: int,
    enc_name: str,
    cluster_assignments: Mapping[int, str] | None,
) -> list[int]:
    if not isinstance(records, Mapping):
        raise FeatureSelectionError(
            f"records: got {type(records).__name__}; "
            "expected a mapping feature id → SAEFeatureRecord"
        )
    ids = selected_ids(feature_ids, cap=cap, encoding=enc_name)
    unknown = [i for i in ids if i not in records]
    if unknown:
        have = sorted(records)
        shown = f"{have[:10]}{' …' if len(have) > 10 else ''}"
        raise FeatureSelectionError(
            f"feature_ids: {unknown} not in records ({len(have)} records, ids {shown})"
        )
    for i in ids:
        if not isinstance(records[i], SAEFeatureRecord):
            raise FeatureSelectionError(
                f"records[{i}]: got {type(records[i]).__name__}; expected SAEFeatureRecord"
            )
    if cluster_assignments is not None:
        if not isinstance(cluster_assignments, Mapping):
            raise FeatureSelectionError(
                f"cluster_assignments: got {type(cluster_assignments).__name__}; "
                "expected a mapping feature id → cluster name"
            )
        lacking = [i for i in ids if i not in cluster_assignments]
        if lacking:
            raise FeatureSelectionError(
                f"cluster_assignments: no entry for selected id(s) {lacking}"
            )
        for i in ids:
            c = cluster_assignments[i]
            if not isinstance(c, str) or not c:
                raise FeatureSelectionError(
                    f"cluster_assignments[{i}]: got {c!r}; expected a non-empty cluster name"
                )
    return ids


def kmeans_partition(points: np.ndarray, k: int) -> np.ndarray:
    """k-means++ seeding + Lloyd, consuming ``numpy.random.default_rng(0)``
    exactly as polygram 0.0.1 does (spec 05 §5.5), so the RNG-dependent
    reference partitions come out the same.  Returns a label per point."""
    x = np.asarray(points, dtype=np.float64)
    n = x.shape[0]
    rng = np.random.default_rng(0)
    centroids = [x[int(rng.integers(0, n))]]
    for _ in range(1, k):
        c = np.asarray(centroids)
        d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        total = d2.sum()
        idx = int(rng.integers(0, n)) if total <= 0 else int(rng.choice(n, p=d2 / total))
        centroids.append(x[idx])
    cent = np.array(centroids, dtype=np.float64)
    labels: np.ndarray | None = None
    for _ in range(_KMEANS_MAX_ITER):
        dist = np.sqrt(((x[:, None, :] - cent[None, :, :]) ** 2).sum(axis=2))
        new = dist.argmin(axis=1)  # argmin: ties go to the lowest index
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = labels == j
            if members.any():  # an empty cluster keeps its centroid
                cent[j] = x[members].mean(axis=0)
    assert labels is not None
    return labels


def _clusters(
    recs: Sequence[SAEFeatureRecord],
    ids: list[int],
    points: np.ndarray,
    cluster_assignments: Mapping[int, str] | None,
    n_clusters: int | None,
    warnings: list[str],
) -> tuple[list[str], str]:
    if cluster_assignments is not None:
        return [cluster_assignments[i] for i in ids], "user"
    prefixes = [r.label.split("/", 1)[0] if r.label and "/" in r.label else "" for r in recs]
    if all(prefixes):  # all-or-nothing: one unlabelled feature → k-means for everyone
        return prefixes, "from_labels"
    n = len(recs)
    k = 2 if n_clusters is None else n_clusters
    if k > n:
        warnings.append(f"n_clusters={k} > selected={n}; clamping to {n}")
        k = n
    if k <= 1:
        labels = np.zeros(n, dtype=np.int64)
    else:
        labels = kmeans_partition(points, k)
        empty = k - len(np.unique(labels))
        if empty:
            warnings.append(f"k-means produced {empty} empty cluster(s) (k={k}, n={n})")
    return [f"cluster_{int(lab)}" for lab in labels], "kmeans"


def _pca_gamma(
    points: np.ndarray, clusters: list[str], order: list[str], lo: float, hi: float
) -> np.ndarray:
    raw = np.zeros(len(clusters))
    for c in order:
        idx = [i for i, ci in enumerate(clusters) if ci == c]
        if len(idx) < 2:
            continue  # singletons score 0 → the range midpoint after rescaling
        centred = points[idx] - points[idx].mean(axis=0)
        pc1 = np.linalg.svd(centred, full_matrices=False)[2][0]
        scores = centred @ pc1
        # LAPACK's sign is arbitrary; the port pins it (first member ≤ 0),
        # which reproduces 0.0.1 on every reference case.
        if scores[0] > 0:
            scores = -scores
        raw[idx] = scores
    peak = float(np.abs(raw).max())
    if peak == 0.0:
        return raw
    # one global scale: the largest |score| of the whole selection hits an end of the range
    return raw / peak * ((hi - lo) / 2) + (hi + lo) / 2


def _tier_preservation(points: np.ndarray, dictionary: Dictionary) -> float | None:
    n = points.shape[0]
    if n <= 1:
        return None
    norms = np.linalg.norm(points, axis=1)
    unit = points / np.where(norms > 0, norms, 1.0)[:, None]  # zero vectors stay zero
    cos2 = (unit @ unit.T) ** 2
    g2 = np.abs(dictionary.gram()) ** 2
    iu = np.triu_indices(n, 1)
    a, b = cos2[iu], g2[iu]
    if a.std() < 1e-12 or b.std() < 1e-12:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / math.sqrt(float(a @ a) * float(b @ b)))


def from_sae_lens(
    records: Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int],
    *,
    name: str = "ImportedSAE",
    cluster_assignments: Mapping[int, str] | None = None,
    n_clusters: int | None = None,
    encoding: MPSRung1 | HEA_Rung2 | Rung3 | None = None,
    beta_range: tuple[float, float] = (-0.5, 0.5),
    assign_gamma: bool = False,
    gamma_range: tuple[float, float] = (-0.25, 0.25),
) -> tuple[Dictionary, SelectionReport]:
    """Build a Dictionary from ``records[feature_ids]`` (in that order).

    Clusters: ``cluster_assignments`` (method ``user``) > every label of the
    form ``"<cluster>/…"`` (``from_labels``) > k-means with ``n_clusters``
    (default 2, ``kmeans``).  β per cluster by first appearance, evenly over
    ``beta_range``; γ from per-cluster PCA when ``assign_gamma``.  At most
    ``encoding.max_features`` ids (8 for the default MPSRung1).
    """
    enc = MPSRung1() if encoding is None else encoding
    cap = getattr(enc, "max_features", None)
    if not isinstance(cap, int):
        raise FeatureSelectionError(
            f"encoding: got {enc!r}; expected an encoding (MPSRung1, HEA_Rung2 or Rung3)"
        )
    ids = _check_selection(records, feature_ids, cap, type(enc).__name__, cluster_assignments)
    if n_clusters is not None and (
        isinstance(n_clusters, bool) or not isinstance(n_clusters, Integral) or n_clusters < 1
    ):
        raise FeatureSelectionError(f"n_clusters: got {n_clusters!r}; expected an integer >= 1")
    b_lo, b_hi = _range("beta_range", beta_range)
    g_lo, g_hi = _range("gamma_range", gamma_range)

    recs = [records[i] for i in ids]
    dims = {r.dim for r in recs}
    if len(dims) != 1:
        raise SAEFormatError(
            f"records: selected projections have different lengths {sorted(dims)}; "
            "they must come from one SAE"
        )
    # ≤ 8 rows, so the float64 copy is negligible (the checkpoint stays float32)
    points = np.stack([r.projection.astype(np.float64) for r in recs])

    warnings: list[str] = []
    clusters, method = _clusters(
        recs,
        ids,
        points,
        cluster_assignments,
        None if n_clusters is None else int(n_clusters),
        warnings,
    )
    order = list(dict.fromkeys(clusters))
    c = len(order)
    beta_of = {
        cl: (b_lo + b_hi) / 2 if c == 1 else b_lo + (b_hi - b_lo) * i / (c - 1)
        for i, cl in enumerate(order)
    }
    if assign_gamma:
        gammas = _pca_gamma(points, clusters, order, g_lo, g_hi)
        gamma_method = "projection_pca"
    else:
        gammas = np.zeros(len(ids))
        gamma_method = "zero"

    features = [
        Feature(name=r.name, cluster=cl, beta=beta_of[cl], gamma=float(g))
        for r, cl, g in zip(recs, clusters, gammas)
    ]
    hierarchy = {cl: [r.name for r, ci in zip(recs, clusters) if ci == cl] for cl in order}
    dictionary = Dictionary(name, features, hierarchy, enc)

    centroid = {
        cl: points[[i for i, ci in enumerate(clusters) if ci == cl]].mean(axis=0) for cl in order
    }
    resid = np.stack([points[i] - centroid[cl] for i, cl in enumerate(clusters)])
    ss_res = float((resid**2).sum())
    ss_tot = float(((points - points.mean(axis=0)) ** 2).sum())
    explained = 1.0 if ss_tot < 1e-12 else min(1.0, max(0.0, 1.0 - ss_res / ss_tot))

    report = SelectionReport(
        n_input_features=len(records),
        n_selected=len(ids),
        cluster_assignments={r.name: cl for r, cl in zip(recs, clusters)},
        cluster_method=method,
        beta_variance_explained=explained,
        reconstruction_error={r.name: float(np.linalg.norm(resid[i])) for i, r in enumerate(recs)},
        tier_preservation=_tier_preservation(points, dictionary),
        gamma_method=gamma_method,
        warnings=warnings,
        feature_ids=tuple(ids),
    )
    return dictionary, report
