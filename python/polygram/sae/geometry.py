"""Decoder geometry → knobs: geometric profiles and the knob rules of the
importer (spec 05 §5.5, spec 15 §§0.2, 1, 2).  Re-exported as
``polygram.geometry``.

A *profile* pairs a knob assignment (cluster, β and γ per feature, from the
selected projections) with a fidelity score saying how well the built
Dictionary's overlaps follow the projections' geometry.  Two are built in:
``clustered`` (k-means, 0.0.1's importer) and ``uniform-sphere`` (k-means
on unit rows, β from the first principal axis).  α, φ, θ_amp and ψ_aux come
from further principal axes (PC2…PC5) when the import asks for them
(:func:`geometry_knobs`), whatever the profile.

Every principal-axis coordinate follows one sign rule: the first row gets a
coordinate ≤ 0.  LAPACK's sign is arbitrary and, for α, β and γ, changes
the overlaps; pinning it makes imports reproducible across BLAS builds.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from polygram import _core
from polygram.encoding import RUNG3_DEFAULT_PSI_AUX, RUNG3_DEFAULT_THETA_AMP, HEA_Rung2, Rung3
from polygram.errors import ProfileError, UnknownProfileError

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary

__all__ = [
    "KNOB_ORDER",
    "ClusteredKnobAssignment",
    "GeometricFidelity",
    "GeometricProfile",
    "ImportedKnobs",
    "KnobAssignment",
    "KnobAssignmentResult",
    "RankRecallAtKFidelity",
    "TierPreservationFidelity",
    "UniformSphereKnobAssignment",
    "assign_knobs",
    "available_profiles",
    "cluster_residual_norms",
    "clustered",
    "geometry_knobs",
    "get_profile",
    "kmeans_partition",
    "register_profile",
    "resolve_profile",
    "rows_of",
    "tier_preservation",
    "uniform_sphere",
]

_KMEANS_MAX_ITER = 100
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class _KnobAxis:
    axis: int  # 0-based principal axis: 1 = PC2
    lo: float
    hi: float
    default: float
    flag: str  # "phase" or "amp"


#: The geometry knobs, in the order ``SelectionReport.assigned_knobs`` lists them.
KNOB_ORDER: tuple[str, ...] = ("alpha", "phi", "theta_amp", "psi_aux")
_AXES = {
    "alpha": _KnobAxis(1, 0.0, _TWO_PI, 0.0, "phase"),
    "phi": _KnobAxis(2, 0.0, _TWO_PI, 0.0, "phase"),
    "theta_amp": _KnobAxis(3, 0.0, math.pi / 2, RUNG3_DEFAULT_THETA_AMP, "amp"),
    "psi_aux": _KnobAxis(4, 0.0, _TWO_PI, RUNG3_DEFAULT_PSI_AUX, "amp"),
}


# ------------------------------------------------------------- the math
#: Rows per chunk are chosen so a float64 copy of the chunk stays below this.
_CHUNK_BYTES = 64 << 20
#: Above this many values (m·d) a principal-axis fit uses the d×d cross
#: product accumulated in row chunks instead of a thin SVD of an m×d copy.
_SVD_VALUES = 1 << 15


def rows_of(points: Any) -> np.ndarray:
    """``points`` as a C-contiguous 2-D array: float32 stays float32 (loader
    views, spec 17 §17.9.4), anything else float64 (no copy when it already is)."""
    arr = np.asarray(points)
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return np.ascontiguousarray(arr, dtype=dtype)


def _chunks(n: int, d: int) -> list[tuple[int, int]]:
    step = max(1, _CHUNK_BYTES // (8 * max(d, 1)))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _groups(clusters: Sequence[str]) -> list[np.ndarray]:
    """Member indices of each cluster, clusters by first appearance."""
    order = {c: k for k, c in enumerate(dict.fromkeys(clusters))}
    codes = np.fromiter((order[c] for c in clusters), dtype=np.int64, count=len(clusters))
    return [np.flatnonzero(codes == k) for k in range(len(order))]


def _cluster_means(x: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Member sums / counts of every label, in float64 row chunks (one chunk:
    the same sums as ``x[members].sum(axis=0)``)."""
    sums = np.zeros((k, x.shape[1]))
    counts = np.bincount(labels, minlength=k)
    for a, b in _chunks(*x.shape):
        chunk, lab = np.asarray(x[a:b], dtype=np.float64), labels[a:b]
        for j in np.unique(lab).tolist():
            sums[j] += chunk[lab == j].sum(axis=0)
    return sums, counts


def kmeans_partition(points: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """k-means++ seeding + Lloyd (≤ 100 iterations, ties to the lowest
    centroid), consuming ``numpy.random.default_rng(seed)`` exactly as
    polygram 0.0.1 (seed 0) and 0.15 do, so the RNG-dependent reference
    partitions come out the same (spec 05 §5.5, 15 §2.5).  A label per point.

    Distances run in the Rust core over the rows as given (float32 or
    float64, spec 17 §17.9.4) and centroids are float64 member means taken in
    row chunks, so no ``n × k × d`` temporary exists."""
    x = rows_of(points)
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    cent = [np.asarray(x[int(rng.integers(0, n))], dtype=np.float64)]
    d2: np.ndarray | None = None
    for _ in range(1, k):
        # the minimum over the chosen centroids, one new centroid at a time
        d_new = _core.kmeans_assign(x, cent[-1][None, :])[1]
        d2 = d_new if d2 is None else np.minimum(d2, d_new)
        total = d2.sum()
        idx = int(rng.integers(0, n)) if total <= 0 else int(rng.choice(n, p=d2 / total))
        cent.append(np.asarray(x[idx], dtype=np.float64))
    centroids = np.array(cent, dtype=np.float64)
    labels: np.ndarray | None = None
    for _ in range(_KMEANS_MAX_ITER):
        new = _core.kmeans_assign(x, centroids)[0]  # ties go to the lowest index
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        sums, counts = _cluster_means(x, labels, k)
        full = counts > 0  # an empty cluster keeps its centroid
        centroids[full] = sums[full] / counts[full, None]
    assert labels is not None
    return labels


def _signed(c: np.ndarray) -> np.ndarray:
    """The sign rule: the first row's coordinate is ≤ 0."""
    return -c if c[0] > 0 else c


@dataclass(frozen=True)
class _Axes:
    """Principal axes of centred rows: the leading singular values
    (descending), ``total`` = Σ of all squared singular values, and the first
    ``len(scores)`` coordinate columns (unsigned)."""

    singular: np.ndarray
    total: float
    scores: list[np.ndarray]


def _principal(points: np.ndarray, count: int, idx: np.ndarray | None = None) -> _Axes:
    """Leading singular values and coordinates ``X·v_a`` (a < count) of the
    rows ``points[idx]`` centred.  A thin SVD for small inputs; otherwise
    ``eigh`` of the smaller Gram: ``X·Xᵀ`` (m < d; coordinates ``σ_a·u_a``)
    or ``XᵀX`` accumulated in float64 row chunks (O(d² + m) extra memory).
    Axes agree with the SVD to ~1e-13 when the singular values are separated."""
    rows = points if idx is None else points[idx]
    m, d = rows.shape
    if m * d <= _SVD_VALUES:
        x = np.asarray(rows, dtype=np.float64)
        x = x - x.mean(axis=0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        return _Axes(s, float((s**2).sum()), [x @ vt[a] for a in range(min(count, len(vt)))])
    mean = np.zeros(d)
    for a, b in _chunks(m, d):
        mean += np.asarray(rows[a:b], dtype=np.float64).sum(axis=0)
    mean /= m
    k = min(count, m, d)
    if m < d:  # m·d < d², so the centred copy is bounded by the d×d Gram's size
        x = np.asarray(rows, dtype=np.float64) - mean
        lam, u = np.linalg.eigh(x @ x.T)
        lam, u = np.clip(lam[::-1], 0.0, None), u[:, ::-1]
        sig = np.sqrt(lam)
        return _Axes(sig, float(lam.sum()), [u[:, a] * sig[a] for a in range(k)])
    cross = np.zeros((d, d))
    for a, b in _chunks(m, d):
        x = np.asarray(rows[a:b], dtype=np.float64) - mean
        cross += x.T @ x
    lam, v = np.linalg.eigh(cross)
    lam, v = np.clip(lam[::-1], 0.0, None), v[:, ::-1]
    out = np.empty((m, k))
    for a, b in _chunks(m, d):
        out[a:b] = (np.asarray(rows[a:b], dtype=np.float64) - mean) @ v[:, :k]
    return _Axes(np.sqrt(lam), float(np.trace(cross)), [out[:, a] for a in range(k)])


def _usable_axes(s: np.ndarray, n: int) -> int:
    if n < 2 or s.size == 0 or s[0] < 1e-12:
        return 0
    return int((s > 1e-9 * s[0]).sum())


def _rescale(c: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """``c`` mapped so the largest |c| hits an end of [lo, hi] and 0 the
    midpoint; ``None`` when every coordinate is (numerically) 0."""
    m = float(np.abs(c).max()) if c.size else 0.0
    if m < 1e-12:
        return None
    return c / m * ((hi - lo) / 2) + (hi + lo) / 2


def _clamp_k(k: int, n: int, warnings: list[str]) -> int:
    if k > n:
        warnings.append(f"n_clusters={k} > selected={n}; clamping to {n}")
        return n
    return k


def _empty_clusters(labels: np.ndarray, k: int, n: int, warnings: list[str]) -> None:
    empty = k - len(np.unique(labels))
    if empty:
        warnings.append(f"k-means produced {empty} empty cluster(s) (k={k}, n={n})")


def spread_betas(clusters: Sequence[str], lo: float, hi: float) -> np.ndarray:
    """One β per cluster (by first appearance) spread evenly over [lo, hi];
    the midpoint for a single cluster (spec 05 §5.5)."""
    order = list(dict.fromkeys(clusters))
    c = len(order)
    beta_of = {
        cl: (lo + hi) / 2 if c == 1 else lo + (hi - lo) * i / (c - 1) for i, cl in enumerate(order)
    }
    return np.array([beta_of[cl] for cl in clusters], dtype=np.float64)


def pca_gamma(points: np.ndarray, clusters: Sequence[str], lo: float, hi: float) -> np.ndarray:
    """γ from each cluster's first principal axis (sign rule per cluster), one
    global scale so the largest |score| of the selection hits an end of
    [lo, hi]; singletons score 0 (the midpoint)."""
    raw = np.zeros(len(clusters))
    for idx in _groups(clusters):
        if len(idx) < 2:
            continue
        raw[idx] = _signed(_principal(points, 1, idx).scores[0])
    peak = float(np.abs(raw).max())
    if peak == 0.0:
        return raw
    return raw / peak * ((hi - lo) / 2) + (hi + lo) / 2


def cluster_variance_explained(points: np.ndarray, clusters: Sequence[str]) -> float:
    """``1 − SS_within / SS_total`` of the partition, clipped to [0, 1]
    (1.0 for rows with no spread)."""
    within, total = _residual_norms(points, clusters, with_total=True)
    ss_res, ss_tot = float((within**2).sum()), float((total**2).sum())
    return 1.0 if ss_tot < 1e-12 else min(1.0, max(0.0, 1.0 - ss_res / ss_tot))


def cluster_residual_norms(points: np.ndarray, clusters: Sequence[str]) -> np.ndarray:
    """‖row − mean of its cluster's rows‖ of every row, in float64 row chunks."""
    return _residual_norms(points, clusters, with_total=False)[0]


def _residual_norms(
    points: np.ndarray, clusters: Sequence[str], *, with_total: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Residual norms to the cluster means and (``with_total``) to the global
    mean, in one chunked pass."""
    x = rows_of(points)
    n, d = x.shape
    groups = _groups(clusters)
    labels = np.empty(n, dtype=np.int64)
    for k, idx in enumerate(groups):
        labels[idx] = k
    sums, counts = _cluster_means(x, labels, len(groups))
    means = sums / np.maximum(counts, 1)[:, None]
    grand = sums.sum(axis=0) / max(n, 1)
    within, total = np.empty(n), np.empty(n if with_total else 0)
    for a, b in _chunks(n, d):
        chunk = np.asarray(x[a:b], dtype=np.float64)
        r = chunk - means[labels[a:b]]
        within[a:b] = np.sqrt(np.einsum("ij,ij->i", r, r))
        if with_total:
            r = chunk - grand
            total[a:b] = np.sqrt(np.einsum("ij,ij->i", r, r))
    return within, total


def tier_preservation(points: np.ndarray, dictionary: Dictionary) -> float | None:
    """Pearson(cos², |G|²) over the pairs i < j; ``None`` for one row, NaN
    when either side has no spread (std < 1e-12)."""
    n = points.shape[0]
    if n <= 1:
        return None
    cos2 = _abs_cosines(points) ** 2
    g2 = np.abs(dictionary.gram()) ** 2
    iu = np.triu_indices(n, 1)
    a, b = cos2[iu], g2[iu]
    if a.std() < 1e-12 or b.std() < 1e-12:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / math.sqrt(float(a @ a) * float(b @ b)))


def _abs_cosines(points: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(points, axis=1)
    unit = points / np.where(norms > 0, norms, 1.0)[:, None]  # zero rows stay zero
    return np.abs(unit @ unit.T)


# ------------------------------------------------------ geometry knobs
def _knobs_of(encoding: object, flag: str) -> tuple[tuple[str, ...], str | None]:
    """The knobs ``flag`` assigns on ``encoding``, or a note saying why none."""
    name = type(encoding).__name__
    if isinstance(encoding, HEA_Rung2):
        what = "MPS phase knobs" if flag == "phase" else "amp branch"
        return (), f"assign_{flag}_knobs: {name} has no {what}; nothing assigned"
    if flag == "amp" and not isinstance(encoding, Rung3):
        return (), f"assign_amp_knobs: {name} has no amp branch; nothing assigned"
    return tuple(k for k in KNOB_ORDER if _AXES[k].flag == flag), None


def geometry_knobs(
    points: np.ndarray,
    encoding: object,
    *,
    assign_phase_knobs: bool,
    assign_amp_knobs: bool,
    supplied: Sequence[str] = (),
) -> tuple[dict[str, np.ndarray], list[str]]:
    """α (PC2), φ (PC3), θ_amp (PC4), ψ_aux (PC5) of the selection (spec 15 §1.3).

    Returns the knobs that received geometry values and the notes for the
    ones left at their defaults (an axis the rows do not span, or an encoding
    without the knob).  Knobs in ``supplied`` (a strategy gave them) are
    neither computed nor noted.
    """
    wanted: list[str] = []
    notes: list[str] = []
    for flag, on in (("phase", assign_phase_knobs), ("amp", assign_amp_knobs)):
        if not on:
            continue
        knobs, note = _knobs_of(encoding, flag)
        if note is not None:
            notes.append(note)
        wanted += [k for k in knobs if k not in supplied]
    if not wanted:
        return {}, notes
    axes = _principal(points, 1 + max(_AXES[k].axis for k in wanted))
    r = _usable_axes(axes.singular, points.shape[0])
    out: dict[str, np.ndarray] = {}
    for knob in wanted:
        ax = _AXES[knob]
        flag = f"assign_{ax.flag}_knobs"
        if ax.axis >= r:
            notes.append(
                f"{flag}: {knob} left at its default (PC{ax.axis + 1} unavailable: "
                f"{r} usable principal axes)"
            )
            continue
        values = _rescale(_signed(axes.scores[ax.axis]), ax.lo, ax.hi)
        if values is None:
            notes.append(f"{flag}: {knob} left at its default (PC{ax.axis + 1} is flat)")
            continue
        out[knob] = values
    return out, notes


# --------------------------------------------------- strategy protocols
@dataclass(frozen=True)
class KnobAssignmentResult:
    """What a knob assignment decided, per feature in selection order.  Knob
    arrays left ``None`` are filled by ``from_sae_lens`` when its flags ask
    for them.  ``warnings`` (a port addition) carries clamp and empty-cluster
    notes into ``SelectionReport.warnings``."""

    cluster_per_feature: list[str]
    betas: list[float]
    gammas: list[float]
    cluster_method: str
    beta_variance_explained: float
    alphas: list[float] | None = None
    phis: list[float] | None = None
    theta_amps: list[float] | None = None
    psi_auxes: list[float] | None = None
    warnings: tuple[str, ...] = ()


@runtime_checkable
class KnobAssignment(Protocol):
    """Projections (float64, selection order) → clusters, β, γ (and optionally
    α, φ, θ_amp, ψ_aux).  Strategies written for polygram 0.15 without a
    ``beta_range`` parameter keep working (``from_sae_lens`` passes it only
    when ``assign`` accepts it)."""

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
    ) -> KnobAssignmentResult: ...


@runtime_checkable
class GeometricFidelity(Protocol):
    """How well a built Dictionary follows its projections (``None`` when undefined)."""

    def compute(self, projections: np.ndarray, dictionary: Dictionary) -> float | None: ...


def _gammas(
    points: np.ndarray, clusters: Sequence[str], assign: bool, gamma_range: tuple[float, float]
) -> list[float]:
    if not assign:
        return [0.0] * len(clusters)
    return pca_gamma(points, clusters, *gamma_range).tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ClusteredKnobAssignment:
    """0.0.1's importer: k-means of the raw rows, one β per cluster spread
    over ``beta_range``, γ by per-cluster PCA (``cluster_method="kmeans"``)."""

    def assign(
        self,
        projections: np.ndarray,
        feature_names: Sequence[str],
        *,
        n_clusters: int,
        gamma_range: tuple[float, float],
        assign_gamma: bool,
        seed: int = 0,
        assign_amp_knobs: bool = False,
        assign_phase_knobs: bool = False,
        encoding: Any = None,
        beta_range: tuple[float, float] = (-0.5, 0.5),
    ) -> KnobAssignmentResult:
        p = rows_of(projections)
        n = p.shape[0]
        notes: list[str] = []
        k = _clamp_k(int(n_clusters), n, notes)
        if k <= 1:
            labels = np.zeros(n, dtype=np.int64)
        else:
            labels = kmeans_partition(p, k, seed=seed)
            _empty_clusters(labels, k, n, notes)
        clusters = [f"cluster_{int(lab)}" for lab in labels]
        return KnobAssignmentResult(
            cluster_per_feature=clusters,
            betas=spread_betas(clusters, *beta_range).tolist(),
            gammas=_gammas(p, clusters, assign_gamma, gamma_range),
            cluster_method="kmeans",
            beta_variance_explained=cluster_variance_explained(p, clusters),
            warnings=tuple(notes),
        )


def _inertia(u: np.ndarray, labels: np.ndarray) -> float:
    return float((cluster_residual_norms(u, [str(v) for v in labels.tolist()]) ** 2).sum())


@dataclass(frozen=True)
class UniformSphereKnobAssignment:
    """For SAEs whose decoder rows spread over the sphere rather than sit in
    a few clusters: the best of ``n_init`` k-means runs on the *unit* rows
    (seeds ``seed … seed + n_init − 1``, lowest inertia, first one on ties), β
    the first principal coordinate of the raw rows mapped onto
    ``beta_range``, γ by per-cluster PCA (``cluster_method="pca_axis"``)."""

    beta_range: tuple[float, float] = (-0.5, 0.5)
    n_init: int = 4

    def __post_init__(self) -> None:
        n = self.n_init
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ProfileError(
                f"UniformSphereKnobAssignment.n_init: got {n!r}; allowed: an integer >= 1"
            )

    def assign(
        self,
        projections: np.ndarray,
        feature_names: Sequence[str],
        *,
        n_clusters: int,
        gamma_range: tuple[float, float],
        assign_gamma: bool,
        seed: int = 0,
        assign_amp_knobs: bool = False,
        assign_phase_knobs: bool = False,
        encoding: Any = None,
        beta_range: tuple[float, float] | None = None,
    ) -> KnobAssignmentResult:
        lo, hi = self.beta_range if beta_range is None else beta_range
        p = rows_of(projections)
        n = p.shape[0]
        notes: list[str] = []
        k = _clamp_k(int(n_clusters), n, notes)
        if p.dtype == np.float64:
            norms = np.linalg.norm(p, axis=1)
        else:  # float32 rows: norms in float64, unit rows kept float32
            norms = np.sqrt(np.einsum("ij,ij->i", p, p, dtype=np.float64))
        u = (p / np.where(norms > 0, norms, 1.0)[:, None]).astype(p.dtype)
        if k <= 1:
            labels = np.zeros(n, dtype=np.int64)
        else:
            best: tuple[float, np.ndarray] | None = None
            for s in range(seed, seed + self.n_init):
                run = kmeans_partition(u, k, seed=s)
                inertia = _inertia(u, run)
                if best is None or inertia < best[0]:
                    best = (inertia, run)
            assert best is not None
            labels = best[1]
            _empty_clusters(labels, k, n, notes)
        clusters = [f"cluster_{int(lab)}" for lab in labels]
        mid = (lo + hi) / 2
        if n >= 2:
            axes = _principal(p, 1)
            total = axes.total
            explained = (
                1.0 if total <= 1e-12 else min(1.0, max(0.0, float(axes.singular[0] ** 2) / total))
            )
            betas = _rescale(_signed(axes.scores[0]), lo, hi)
            beta_list = [mid] * n if betas is None else betas.tolist()
        else:
            explained, beta_list = 1.0, [mid] * n
        return KnobAssignmentResult(
            cluster_per_feature=clusters,
            betas=beta_list,
            gammas=_gammas(p, clusters, assign_gamma, gamma_range),
            cluster_method="pca_axis",
            beta_variance_explained=explained,
            warnings=tuple(notes),
        )


@dataclass(frozen=True)
class TierPreservationFidelity:
    """Pearson(cos², |G|²) over the pairs (spec 05 ``tier_preservation``)."""

    def compute(self, projections: np.ndarray, dictionary: Dictionary) -> float | None:
        return tier_preservation(np.asarray(projections, dtype=np.float64), dictionary)


@dataclass(frozen=True)
class RankRecallAtKFidelity:
    """The share of the k most-aligned projection pairs (|cos|) that are also
    among the k largest overlaps |G|², k = max(3, ⌊pairs/2⌋); ``None`` for
    fewer than k + 1 pairs.  Ties rank the lower pair index (row-major) first."""

    def compute(self, projections: np.ndarray, dictionary: Dictionary) -> float | None:
        p = np.asarray(projections, dtype=np.float64)
        n = p.shape[0]
        if n <= 1:
            return None
        n_pairs = n * (n - 1) // 2
        k = max(3, n_pairs // 2)
        if n_pairs < k + 1:
            return None
        iu = np.triu_indices(n, 1)
        a = _abs_cosines(p)[iu]
        b = (np.abs(dictionary.gram()) ** 2)[iu]
        top_a = np.argsort(-a, kind="stable")[:k]
        top_b = np.argsort(-b, kind="stable")[:k]
        return len(set(top_a.tolist()) & set(top_b.tolist())) / k


# ------------------------------------------------------------- profiles
@dataclass(frozen=True)
class GeometricProfile:
    """A named knob assignment + fidelity, with the cluster count and γ range
    an import uses when neither a keyword nor a config sets them."""

    name: str
    knob_assignment: KnobAssignment
    geometric_fidelity: GeometricFidelity
    default_n_clusters: int | None
    default_gamma_range: tuple[float, float]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProfileError(
                f"GeometricProfile.name: got {self.name!r}; allowed: a non-empty string"
            )
        if not isinstance(self.knob_assignment, KnobAssignment):
            raise TypeError(
                f"GeometricProfile({self.name!r}).knob_assignment: got "
                f"{type(self.knob_assignment).__name__}; expected an object with assign(...)"
            )
        if not isinstance(self.geometric_fidelity, GeometricFidelity):
            raise TypeError(
                f"GeometricProfile({self.name!r}).geometric_fidelity: got "
                f"{type(self.geometric_fidelity).__name__}; expected an object with compute(...)"
            )
        k = self.default_n_clusters
        if k is not None and (isinstance(k, bool) or not isinstance(k, Integral) or k < 1):
            raise ProfileError(
                f"GeometricProfile({self.name!r}).default_n_clusters: got {k!r}; "
                "allowed: an integer >= 1 or None"
            )
        g = self.default_gamma_range
        try:
            lo, hi = g
        except (TypeError, ValueError):
            raise ProfileError(
                f"GeometricProfile({self.name!r}).default_gamma_range: got {g!r}; "
                "allowed: a (low, high) pair with low <= high"
            ) from None
        ok = all(isinstance(v, Real) and not isinstance(v, bool) for v in (lo, hi))
        if not ok or not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ProfileError(
                f"GeometricProfile({self.name!r}).default_gamma_range: got {g!r}; "
                "allowed: a (low, high) pair of finite numbers with low <= high"
            )
        object.__setattr__(self, "default_gamma_range", (float(lo), float(hi)))


def clustered() -> GeometricProfile:
    """A fresh ``clustered`` profile: 0.0.1's k-means importer, tier preservation."""
    return GeometricProfile(
        "clustered", ClusteredKnobAssignment(), TierPreservationFidelity(), 2, (-0.25, 0.25)
    )


def uniform_sphere() -> GeometricProfile:
    """A fresh ``uniform-sphere`` profile: unit-row k-means (k 16), β from PC1,
    rank-recall@k."""
    return GeometricProfile(
        "uniform-sphere",
        UniformSphereKnobAssignment(),
        RankRecallAtKFidelity(),
        16,
        (-0.25, 0.25),
    )


_REGISTRY: dict[str, GeometricProfile] = {}


def register_profile(profile: GeometricProfile) -> None:
    """Add ``profile`` under its name; a name already taken is refused
    (profiles are never overridden)."""
    if not isinstance(profile, GeometricProfile):
        raise TypeError(
            f"register_profile: got {type(profile).__name__}; expected a GeometricProfile"
        )
    if profile.name in _REGISTRY:
        raise ProfileError(
            f"register_profile: a profile named {profile.name!r} is already registered "
            f"(registered: {available_profiles()}); choose another name"
        )
    _REGISTRY[profile.name] = profile


def available_profiles() -> list[str]:
    """The registered profile names, sorted."""
    return sorted(_REGISTRY)


def get_profile(name: str) -> GeometricProfile:
    """The registered profile ``name``; ``KeyError`` listing the others."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownProfileError(
            f"profile: unknown geometric profile {name!r}; registered: {available_profiles()}"
        ) from None


def resolve_profile(value: str | GeometricProfile) -> GeometricProfile:
    """A profile given by name (looked up) or as an object (used as is)."""
    if isinstance(value, GeometricProfile):
        return value
    if isinstance(value, str):
        return get_profile(value)
    raise TypeError(
        f"profile: got {type(value).__name__}; expected a profile name "
        f"({available_profiles()}) or a GeometricProfile"
    )


register_profile(clustered())
register_profile(uniform_sphere())


# ------------------------------------------------- a selection's knobs
@dataclass(frozen=True)
class ImportedKnobs:
    """Every knob of a selection (defaults filled), how the clusters were
    found and which knobs came from the geometry."""

    clusters: tuple[str, ...]
    cluster_method: str
    beta_variance_explained: float
    gamma_method: str
    knobs: dict[str, np.ndarray]  # beta, gamma, alpha, phi, theta_amp, psi_aux
    assigned_knobs: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())


def _accepts_beta_range(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "beta_range" or p.kind is p.VAR_KEYWORD for p in params)


def _strategy_array(values: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise ProfileError(
            f"knob assignment returned {what} of shape {arr.shape}; expected {n} finite values"
        )
    return arr


def assign_knobs(
    points: np.ndarray,
    names: Sequence[str],
    *,
    clusters: Sequence[str] | None,
    cluster_method: str,
    profile: GeometricProfile,
    n_clusters: int,
    beta_range: tuple[float, float],
    gamma_range: tuple[float, float],
    assign_gamma: bool,
    assign_phase_knobs: bool,
    assign_amp_knobs: bool,
    encoding: object,
    seed: int = 0,
) -> ImportedKnobs:
    """The knobs of a selection (spec 05 §5.5, 15 §§1.2–2.3).

    Given ``clusters`` (user labels or label prefixes, method
    ``cluster_method``), β is 05's even spread and γ its per-cluster PCA;
    without them the profile's strategy decides both.  Then, on every path,
    α/φ (``assign_phase_knobs``) and θ_amp/ψ_aux (``assign_amp_knobs``) come
    from PC2…PC5 unless the strategy returned them.
    """
    n = len(names)
    notes: list[str] = []
    supplied: dict[str, np.ndarray] = {}
    if clusters is not None:
        labels = list(clusters)
        betas = spread_betas(labels, *beta_range)
        gammas = np.asarray(_gammas(points, labels, assign_gamma, gamma_range))
        explained = cluster_variance_explained(points, labels)
        method = cluster_method
    else:
        strategy = profile.knob_assignment
        kwargs: dict[str, Any] = {
            "n_clusters": n_clusters,
            "gamma_range": gamma_range,
            "assign_gamma": assign_gamma,
            "seed": seed,
            "assign_amp_knobs": assign_amp_knobs,
            "assign_phase_knobs": assign_phase_knobs,
            "encoding": encoding,
        }
        if _accepts_beta_range(strategy.assign):
            kwargs["beta_range"] = beta_range
        builtin = isinstance(strategy, ClusteredKnobAssignment | UniformSphereKnobAssignment)
        # the built-ins read float32 rows as they are; others get the float64 the protocol names
        rows = points if builtin else np.asarray(points, dtype=np.float64)
        res = strategy.assign(rows, list(names), **kwargs)
        if not isinstance(res, KnobAssignmentResult):
            raise TypeError(
                f"profile {profile.name!r}: assign() returned {type(res).__name__}; "
                "expected a KnobAssignmentResult"
            )
        labels = [str(c) for c in res.cluster_per_feature]
        if len(labels) != n:
            raise ProfileError(
                f"profile {profile.name!r}: assign() returned {len(labels)} clusters for "
                f"{n} features"
            )
        betas = _strategy_array(res.betas, n, "betas")
        gammas = _strategy_array(res.gammas, n, "gammas")
        explained = float(res.beta_variance_explained)
        method = res.cluster_method
        notes += res.warnings
        # a strategy's knob arrays count only where the flags and encoding allow them
        allowed = set()
        for flag, on in (("phase", assign_phase_knobs), ("amp", assign_amp_knobs)):
            if on:
                allowed |= set(_knobs_of(encoding, flag)[0])
        for knob, values in (
            ("alpha", res.alphas),
            ("phi", res.phis),
            ("theta_amp", res.theta_amps),
            ("psi_aux", res.psi_auxes),
        ):
            if values is not None and knob in allowed:
                supplied[knob] = _strategy_array(values, n, knob)
    computed, knob_notes = geometry_knobs(
        points,
        encoding,
        assign_phase_knobs=assign_phase_knobs,
        assign_amp_knobs=assign_amp_knobs,
        supplied=tuple(supplied),
    )
    notes += knob_notes
    geometry = {**computed, **supplied}
    knobs = {"beta": betas, "gamma": gammas}
    for knob in KNOB_ORDER:
        knobs[knob] = geometry.get(knob, np.full(n, _AXES[knob].default))
    return ImportedKnobs(
        clusters=tuple(labels),
        cluster_method=method,
        beta_variance_explained=explained,
        gamma_method="projection_pca" if assign_gamma else "zero",
        knobs=knobs,
        assigned_knobs=tuple(k for k in KNOB_ORDER if k in geometry),
        warnings=tuple(notes),
    )
