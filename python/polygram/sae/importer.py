"""``from_sae_lens``: a Polygram ``Dictionary`` from selected SAE features
(spec 05 §5.5), plus the ``SelectionReport`` saying how lossy it was.

Projections decide which cluster a feature joins (labels, or the geometric
profile's strategy), its β and, with ``assign_gamma``, its γ; α = φ = 0
unless ``assign_phase_knobs`` (and θ_amp/ψ_aux unless ``assign_amp_knobs``).
The geometry itself lives in :mod:`polygram.sae.geometry`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Literal, overload

import numpy as np

from polygram.clustered import BlockFormation, ClusteredDictionary
from polygram.clustered.importer import (
    choose_clustered,
    import_clustered,
    promotion_warning,
    stack_projections,
)
from polygram.config import SAEImportConfig, config_of, pick
from polygram.dictionary import Dictionary, Feature
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3
from polygram.errors import FeatureSelectionError, SAEFormatError
from polygram.sae.geometry import (
    GeometricProfile,
    RankRecallAtKFidelity,
    TierPreservationFidelity,
    assign_knobs,
    cluster_residual_norms,
    kmeans_partition,
    resolve_profile,
)
from polygram.sae.records import SAEFeatureRecord, selected_ids

__all__ = ["SelectionReport", "from_sae_lens", "kmeans_partition"]


@dataclass(frozen=True)
class SelectionReport:
    """How the projection-vector → (cluster, β, γ) collapse went.

    ``cluster_assignments`` and ``reconstruction_error`` are keyed by
    feature *name*; ``warnings`` is a list of strings (k-means clamp, empty
    clusters, as in 0.0.1, then the ``assign_…`` notes of knobs left at their
    defaults); ``feature_ids`` keeps the original SAE indices (in selection
    order; empty for ``triage_dictionary``'s placeholder).  ``assigned_knobs``
    lists the knobs that received geometry values (``alpha, phi, theta_amp,
    psi_aux`` order); ``profile`` names the geometric profile and
    ``geometric_fidelity`` is its score (``tier_preservation`` repeats it for
    the ``clustered`` profile's fidelity, and is ``None`` otherwise).  A
    clustered import adds ``n_blocks``, ``mean_block_size``,
    ``n_cross_block_edges`` and ``block_tier_preservation`` (the tier
    correlation pooled over intra-block pairs); its ``tier_preservation``
    covers all pairs, streamed from float32 cosines.
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
    assigned_knobs: tuple[str, ...] = field(default=())
    profile: str | None = None
    geometric_fidelity: float | None = None
    # clustered imports only (spec 17 §17.9.3; None on a flat result)
    n_blocks: int | None = None
    mean_block_size: float | None = None
    n_cross_block_edges: int | None = None
    block_tier_preservation: float | None = None


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
    cap: int | None,
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


def _label_clusters(
    recs: Sequence[SAEFeatureRecord],
    ids: list[int],
    cluster_assignments: Mapping[int, str] | None,
) -> tuple[list[str] | None, str]:
    """Clusters given by the caller (``user``) or by every label's
    ``"<cluster>/…"`` prefix (``from_labels``); ``None`` → the profile's
    strategy decides."""
    if cluster_assignments is not None:
        return [cluster_assignments[i] for i in ids], "user"
    prefixes = [r.label.split("/", 1)[0] if r.label and "/" in r.label else "" for r in recs]
    if all(prefixes):  # all-or-nothing: one unlabelled feature → the strategy for everyone
        return prefixes, "from_labels"
    return None, ""


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"from_sae_lens: {name} got {value!r}; expected True or False")
    return bool(value)


@overload
def from_sae_lens(
    records: Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int],
    *,
    name: str = "ImportedSAE",
    cluster_assignments: Mapping[int, str] | None = None,
    n_clusters: int | None = None,
    encoding: MPSRung1 | HEA_Rung2 | Rung3 | None = None,
    beta_range: tuple[float, float] = (-0.5, 0.5),
    assign_gamma: bool | None = None,
    gamma_range: tuple[float, float] | None = None,
    assign_phase_knobs: bool | None = None,
    assign_amp_knobs: bool | None = None,
    profile: str | GeometricProfile | None = None,
    config: SAEImportConfig | None = None,
    clustered: Literal[False],
    block_formation: BlockFormation | None = None,
    activation_traces: Any = None,
) -> tuple[Dictionary, SelectionReport]: ...


@overload
def from_sae_lens(
    records: Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int],
    *,
    name: str = "ImportedSAE",
    cluster_assignments: Mapping[int, str] | None = None,
    n_clusters: int | None = None,
    encoding: MPSRung1 | HEA_Rung2 | Rung3 | None = None,
    beta_range: tuple[float, float] = (-0.5, 0.5),
    assign_gamma: bool | None = None,
    gamma_range: tuple[float, float] | None = None,
    assign_phase_knobs: bool | None = None,
    assign_amp_knobs: bool | None = None,
    profile: str | GeometricProfile | None = None,
    config: SAEImportConfig | None = None,
    clustered: Literal[True],
    block_formation: BlockFormation | None = None,
    activation_traces: Any = None,
) -> tuple[ClusteredDictionary, SelectionReport]: ...


@overload
def from_sae_lens(
    records: Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int],
    *,
    name: str = "ImportedSAE",
    cluster_assignments: Mapping[int, str] | None = None,
    n_clusters: int | None = None,
    encoding: MPSRung1 | HEA_Rung2 | Rung3 | None = None,
    beta_range: tuple[float, float] = (-0.5, 0.5),
    assign_gamma: bool | None = None,
    gamma_range: tuple[float, float] | None = None,
    assign_phase_knobs: bool | None = None,
    assign_amp_knobs: bool | None = None,
    profile: str | GeometricProfile | None = None,
    config: SAEImportConfig | None = None,
    clustered: None = None,
    block_formation: BlockFormation | None = None,
    activation_traces: Any = None,
) -> tuple[Dictionary | ClusteredDictionary, SelectionReport]: ...


def from_sae_lens(
    records: Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int],
    *,
    name: str = "ImportedSAE",
    cluster_assignments: Mapping[int, str] | None = None,
    n_clusters: int | None = None,
    encoding: MPSRung1 | HEA_Rung2 | Rung3 | None = None,
    beta_range: tuple[float, float] = (-0.5, 0.5),
    assign_gamma: bool | None = None,
    gamma_range: tuple[float, float] | None = None,
    assign_phase_knobs: bool | None = None,
    assign_amp_knobs: bool | None = None,
    profile: str | GeometricProfile | None = None,
    config: SAEImportConfig | None = None,
    clustered: bool | None = None,
    block_formation: BlockFormation | None = None,
    activation_traces: Any = None,
) -> tuple[Dictionary | ClusteredDictionary, SelectionReport]:
    """Build a Dictionary from ``records[feature_ids]`` (in that order).

    Clusters: ``cluster_assignments`` (method ``user``) > every label of the
    form ``"<cluster>/…"`` (``from_labels``) > the profile's strategy
    (``clustered``: k-means with ``n_clusters``, default 2).  On the first two
    paths β is one value per cluster spread over ``beta_range`` and γ (with
    ``assign_gamma``) comes from per-cluster PCA.  ``assign_phase_knobs``
    sets α/φ from PC2/PC3 and ``assign_amp_knobs`` θ_amp/ψ_aux from PC4/PC5
    (Rung3) on every path.  Each option left ``None`` comes from ``config``
    (an :class:`~polygram.config.SAEImportConfig`), else its default (all
    flags off, profile ``clustered``).

    More than ``encoding.max_features`` ids (8 for MPSRung1) give a
    ``ClusteredDictionary`` (``clustered=None`` promotes with a warning in
    the report; ``clustered=True`` always clusters; ``clustered=False``
    refuses with ``CapacityError``): the knobs are assigned over the whole
    selection first, then ``block_formation`` (default cosine BFS at 0.3)
    cuts the blocks, with ``activation_traces`` for ``co_firing``
    (spec 17 §17.9).
    """
    # The encoding is resolved before anything else: every step sees the
    # real encoding (0.15 forwarded None and its knob helpers did nothing).
    enc = MPSRung1() if encoding is None else encoding
    cap = getattr(enc, "max_features", None)
    if not isinstance(cap, int):
        raise FeatureSelectionError(
            f"encoding: got {enc!r}; expected an encoding (MPSRung1, HEA_Rung2 or Rung3)"
        )
    cfg = config_of(SAEImportConfig, config, "from_sae_lens")
    chosen: str | GeometricProfile | None = pick(profile, cfg, "profile")
    prof = resolve_profile("clustered" if chosen is None else chosen)
    ids = _check_selection(records, feature_ids, None, type(enc).__name__, cluster_assignments)
    as_clustered = choose_clustered(clustered, len(ids), enc, block_formation, activation_traces)
    if n_clusters is not None and (
        isinstance(n_clusters, bool) or not isinstance(n_clusters, Integral) or n_clusters < 1
    ):
        raise FeatureSelectionError(f"n_clusters: got {n_clusters!r}; expected an integer >= 1")
    k_given: int | None = pick(n_clusters, cfg, "n_clusters")
    k = int(k_given if k_given is not None else (prof.default_n_clusters or 2))
    b_lo, b_hi = _range("beta_range", beta_range)
    g_range: tuple[float, float] | None = pick(gamma_range, cfg, "gamma_range")
    g_lo, g_hi = _range("gamma_range", prof.default_gamma_range if g_range is None else g_range)
    gamma_on = _flag("assign_gamma", pick(assign_gamma, cfg, "assign_gamma"))
    phase_on = _flag("assign_phase_knobs", pick(assign_phase_knobs, cfg, "assign_phase_knobs"))
    amp_on = _flag("assign_amp_knobs", pick(assign_amp_knobs, cfg, "assign_amp_knobs"))

    recs = [records[i] for i in ids]
    dims = {r.dim for r in recs}
    if len(dims) != 1:
        raise SAEFormatError(
            f"records: selected projections have different lengths {sorted(dims)}; "
            "they must come from one SAE"
        )
    if as_clustered:  # float32 loader views stay float32 (spec 17 §17.9.4)
        points = stack_projections([r.projection for r in recs])
    else:  # ≤ cap rows, so the float64 copy is negligible (the checkpoint stays float32)
        points = np.stack([r.projection.astype(np.float64) for r in recs])

    labels, method = _label_clusters(recs, ids, cluster_assignments)
    knobs = assign_knobs(
        points,
        [r.name for r in recs],
        clusters=labels,
        cluster_method=method,
        profile=prof,
        n_clusters=k,
        beta_range=(b_lo, b_hi),
        gamma_range=(g_lo, g_hi),
        assign_gamma=gamma_on,
        assign_phase_knobs=phase_on,
        assign_amp_knobs=amp_on,
        encoding=enc,
    )
    clusters = list(knobs.clusters)
    v = knobs.knobs
    resid = cluster_residual_norms(points, clusters)
    common: dict[str, Any] = {
        "n_input_features": len(records),
        "n_selected": len(ids),
        "cluster_assignments": {r.name: cl for r, cl in zip(recs, clusters)},
        "cluster_method": knobs.cluster_method,
        "beta_variance_explained": knobs.beta_variance_explained,
        "reconstruction_error": {r.name: float(resid[i]) for i, r in enumerate(recs)},
        "gamma_method": knobs.gamma_method,
        "feature_ids": tuple(ids),
        "assigned_knobs": knobs.assigned_knobs,
        "profile": prof.name,
    }
    if as_clustered:
        fid = prof.geometric_fidelity
        kind = (
            "tier_preservation"
            if isinstance(fid, TierPreservationFidelity)
            else "rank_recall"
            if isinstance(fid, RankRecallAtKFidelity)
            else type(fid).__name__
        )
        result = import_clustered(
            name,
            [r.name for r in recs],
            clusters,
            v,
            points,
            enc,
            block_formation,
            activation_traces,
            kind,
        )
        cd = result.dictionary
        promoted = [promotion_warning(len(ids), enc)] if clustered is None else []
        report = SelectionReport(
            **common,
            tier_preservation=result.tier_preservation,
            warnings=[*promoted, *knobs.warnings, *result.warnings],
            geometric_fidelity=result.geometric_fidelity,
            n_blocks=cd.n_blocks,
            mean_block_size=cd.mean_block_size,
            n_cross_block_edges=cd.n_cross_block_edges,
            block_tier_preservation=result.block_tier_preservation,
        )
        return cd, report

    features = [
        Feature(
            name=r.name,
            cluster=cl,
            beta=float(v["beta"][i]),
            alpha=float(v["alpha"][i]),
            gamma=float(v["gamma"][i]),
            phi=float(v["phi"][i]),
            theta_amp=float(v["theta_amp"][i]),
            psi_aux=float(v["psi_aux"][i]),
        )
        for i, (r, cl) in enumerate(zip(recs, clusters, strict=True))
    ]
    order = list(dict.fromkeys(clusters))
    hierarchy = {cl: [r.name for r, ci in zip(recs, clusters) if ci == cl] for cl in order}
    dictionary = Dictionary(name, features, hierarchy, enc)

    fidelity = prof.geometric_fidelity.compute(points, dictionary)
    fidelity = None if fidelity is None else float(fidelity)
    report = SelectionReport(
        **common,
        tier_preservation=(
            fidelity if isinstance(prof.geometric_fidelity, TierPreservationFidelity) else None
        ),
        warnings=list(knobs.warnings),
        geometric_fidelity=fidelity,
    )
    return dictionary, report
