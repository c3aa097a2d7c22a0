"""``build_clustered_dictionary`` (spec 17 §17.3): validate, then one Rust
call runs the tiled pair pass, forms the blocks (cosine BFS, user-declared
chunks or co-firing BFS), splits the canonical cross-block edges and computes
their float64 cosines."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polygram import _core
from polygram._budget import check_result_bytes
from polygram.clustered._checks import check_name
from polygram.clustered.catalog import AnyEncoding, FeatureCatalog
from polygram.clustered.dictionary import ClusteredDictionary
from polygram.clustered.formation import MAX_EDGES_ENV, BlockFormation
from polygram.dictionary import Feature
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3
from polygram.errors import CapacityError, ClusteringError, GraphTooLargeError

__all__ = [
    "Built",
    "build",
    "build_clustered_dictionary",
    "check_decoder",
    "check_encoding",
    "check_traces",
    "degenerate_warning",
]


def check_encoding(encoding: object) -> AnyEncoding:
    if not isinstance(encoding, MPSRung1 | HEA_Rung2 | Rung3):
        raise ClusteringError(f"encoding: got {encoding!r}; expected MPSRung1, HEA_Rung2 or Rung3")
    return encoding


def check_decoder(decoder_vectors: object, n: int) -> np.ndarray:
    """A finite real ``(n, d)`` array, ``d >= 1``: float32 stays float32,
    other real dtypes become float64 (one owned, read-only copy)."""
    try:
        arr = np.asarray(decoder_vectors)
    except (TypeError, ValueError) as e:
        raise ClusteringError(f"decoder_vectors: not a numeric array ({e})") from None
    if arr.dtype.kind not in "iuf":
        raise ClusteringError(
            f"decoder_vectors: dtype {arr.dtype}; expected real numbers (float or int)"
        )
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise ClusteringError(
            f"decoder_vectors: shape {arr.shape}; expected ({n}, d) with d >= 1 "
            "(one row per feature)"
        )
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    out = np.array(arr, dtype=dtype, order="C", copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise ClusteringError(
            f"decoder_vectors: entry [{r}, {c}] is {float(out[r, c])!r}; every value must be finite"
        )
    out.flags.writeable = False
    return out


def check_traces(activation_traces: object, n: int) -> np.ndarray:
    """Firing matrix ``A > 0`` of a finite real or bool ``(T, n)`` trace, ``T >= 1``."""
    try:
        arr = np.asarray(activation_traces)
    except (TypeError, ValueError) as e:
        raise ClusteringError(f"activation_traces: not a numeric array ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise ClusteringError(
            f"activation_traces: dtype {arr.dtype}; expected real numbers or bools"
        )
    if arr.ndim != 2 or arr.shape[1] != n or arr.shape[0] < 1:
        raise ClusteringError(
            f"activation_traces: shape {arr.shape}; expected (T, {n}) with T >= 1 "
            "(one column per feature, selection order)"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        r, c = (int(v) for v in np.argwhere(~np.isfinite(arr))[0])
        raise ClusteringError(
            f"activation_traces: entry [{r}, {c}] is {float(arr[r, c])!r}; "
            "every value must be finite"
        )
    return np.ascontiguousarray(arr > 0, dtype=np.uint8)


def _declared_blocks(
    hierarchy: object, catalog: FeatureCatalog, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR blocks of a user hierarchy: each cluster's list cut into chunks of ``cap``."""
    if not isinstance(hierarchy, Mapping):
        raise ClusteringError(
            f"hierarchy: got {type(hierarchy).__name__}; strategy 'user_declared' needs a "
            "mapping cluster → list of feature names"
        )
    index = catalog.index_of()
    members: list[int] = []
    offsets = [0]
    owner: dict[str, Any] = {}
    for cluster, names in hierarchy.items():
        if isinstance(names, str | bytes):
            raise ClusteringError(
                f"hierarchy[{cluster!r}]: got {names!r}; expected a list of feature names"
            )
        try:
            listed = list(names)
        except TypeError:
            raise ClusteringError(
                f"hierarchy[{cluster!r}]: got {names!r}; expected a list of feature names"
            ) from None
        for nm in listed:
            if nm in owner:
                where = (
                    "twice in the same cluster"
                    if owner[nm] == cluster
                    else (f"under both {owner[nm]!r} and {cluster!r}")
                )
                raise ClusteringError(
                    f"hierarchy: feature {nm!r} is listed {where}; each feature exactly once"
                )
            if not isinstance(nm, str) or nm not in index:
                raise ClusteringError(
                    f"hierarchy[{cluster!r}]: {nm!r} is not a feature name of this selection"
                )
            owner[nm] = cluster
        for k in range(0, len(listed), cap):
            members.extend(index[nm] for nm in listed[k : k + cap])
            offsets.append(len(members))
    if len(owner) != len(catalog):
        missing = [nm for nm in catalog.names if nm not in owner]
        shown = ", ".join(repr(m) for m in missing[:5])
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ClusteringError(
            f"hierarchy: {len(missing)} feature(s) not mentioned: {shown}{more}; "
            "'user_declared' needs every feature in exactly one cluster"
        )
    return np.array(members, dtype=np.int64), np.array(offsets, dtype=np.int64)


def degenerate_warning(
    formation: BlockFormation, n: int, cd: ClusteredDictionary, max_c32: float | None
) -> str | None:
    """The degenerate-partition text (spec 17 §17.3.7), or None."""
    if formation.strategy != "cosine" or n < 2 or cd.n_blocks != n:
        return None
    m = max(0.0, max_c32 if max_c32 is not None else 0.0)
    r = min(max(0.8 * m, 0.05), 0.5)
    t = repr(float(formation.cosine_threshold))
    return (
        f"Degenerate cosine partition: n_multi_feature_blocks=0 at cosine_threshold={t}. "
        f"Max observed off-diagonal cosine: {m:.4f}. Recommended fallback: {r:.3f}"
    )


@dataclass(frozen=True)
class Built:
    """A build's dictionary and the by-products an importer reports."""

    dictionary: ClusteredDictionary
    warning: str | None
    #: ``(n_pairs, pearson or None)`` of the streamed tier statistics, when asked
    tier: tuple[int, float | None] | None
    n_edges: int


def build(
    name: str,
    catalog: FeatureCatalog,
    decoder: np.ndarray,
    formation: BlockFormation,
    *,
    hierarchy: object = None,
    fires: np.ndarray | None = None,
    tier_stats: bool = False,
) -> Built:
    """The pipeline over validated inputs (shared with ``from_sae_lens``)."""
    enc = catalog.encoding
    n = len(catalog)
    cap = formation.cap(enc.max_features)
    budget = formation.resolved_max_edges()
    kwargs: dict[str, Any] = {"co_firing_threshold": formation.co_firing_threshold}
    if formation.strategy == "user_declared":
        kwargs["members"], kwargs["offsets"] = _declared_blocks(hierarchy, catalog, cap)
    if formation.strategy == "co_firing":
        kwargs["fires"] = fires
    if tier_stats:
        check_result_bytes(
            n * enc.encoder.dim * 16,
            f"the states of {n} features (tier_preservation)",
            remedy="select fewer features",
        )
        kwargs["encoder"], kwargs["table"] = enc.encoder, catalog.table
    out = _core.cluster_blocks(
        decoder, formation.cosine_threshold, budget, cap, formation.strategy, **kwargs
    )
    if "over_budget" in out:
        graph, reached = out["over_budget"]
        t = formation.cosine_threshold if graph == "decoder" else formation.co_firing_threshold
        knob = "cosine_threshold" if graph == "decoder" else "co_firing_threshold"
        raise GraphTooLargeError(
            f"max_edges: the {graph} pair graph reached {reached:,} edges at {knob}={t!r}, "
            f"over the edge budget of {budget:,}; raise {knob}, or raise the budget "
            f"(BlockFormation.max_edges or ${MAX_EDGES_ENV})"
        )
    cd = ClusteredDictionary._assemble(name, catalog, decoder, formation, out)
    tier = None if out["tier"] is None else (int(out["tier"][0]), out["tier"][1])
    return Built(cd, degenerate_warning(formation, n, cd, out["max_c32"]), tier, out["n_edges"])


def build_clustered_dictionary(
    name: str,
    features: Sequence[Feature],
    decoder_vectors: object,
    encoding: AnyEncoding,
    block_formation: BlockFormation,
    *,
    hierarchy: Mapping[str, Sequence[str]] | None = None,
    activation_traces: object = None,
) -> ClusteredDictionary:
    """Partition ``features`` (rows of ``decoder_vectors``) into blocks of at
    most the encoding's capacity (or ``block_formation.block_size_max``).

    Raises ``ClusteringError`` for bad arguments, ``CapacityError`` for a
    ``block_size_max`` above the encoding's capacity, ``DictionaryError`` for
    names that break the dictionary rules and ``GraphTooLargeError`` when the
    pair graph passes the edge budget.  Warns (``UserWarning``) when the
    cosine partition has no multi-feature block."""
    check_name("build_clustered_dictionary", name)
    if isinstance(features, str | bytes | Mapping) or not isinstance(features, Sequence):
        raise ClusteringError(
            f"features: got {type(features).__name__}; expected a non-empty sequence of Feature"
        )
    if not features:
        raise ClusteringError("features: empty; give at least one Feature")
    for k, f in enumerate(features):
        if not isinstance(f, Feature):
            raise ClusteringError(f"features[{k}]: got {type(f).__name__}; expected Feature")
    decoder = check_decoder(decoder_vectors, len(features))
    enc = check_encoding(encoding)
    if not isinstance(block_formation, BlockFormation):
        raise ClusteringError(
            f"block_formation: got {type(block_formation).__name__}; expected BlockFormation"
        )
    cap = block_formation.cap(enc.max_features)
    if cap > enc.max_features:
        raise CapacityError(
            f"block_formation.block_size_max={cap} exceeds {type(enc).__name__}.max_features="
            f"{enc.max_features}; blocks are Dictionaries of at most the encoding's capacity"
        )
    strategy = block_formation.strategy
    if strategy == "user_declared" and not isinstance(hierarchy, Mapping):
        raise ClusteringError(
            f"hierarchy: got {type(hierarchy).__name__}; strategy 'user_declared' needs a "
            "mapping cluster → list of feature names"
        )
    fires = None
    if strategy == "co_firing":
        if activation_traces is None:
            raise ClusteringError(
                "activation_traces: strategy 'co_firing' needs a (T, n_features) trace"
            )
        fires = check_traces(activation_traces, len(features))
    elif activation_traces is not None:
        raise ClusteringError(
            f"activation_traces: given with strategy {strategy!r}; only 'co_firing' reads them"
        )
    catalog = FeatureCatalog.from_features(features, enc)
    built = build(name, catalog, decoder, block_formation, hierarchy=hierarchy, fires=fires)
    if built.warning is not None:
        warnings.warn(built.warning, UserWarning, stacklevel=2)
    return built.dictionary
