"""The clustered half of ``from_sae_lens`` (spec 17 §17.9): after the knobs
of the whole selection are assigned, build the blocks exactly as
``build_clustered_dictionary`` would, with the tier statistics streamed in
the same pair pass, and compute the fidelity fields of ``SelectionReport``.

``polygram.sae.importer`` owns the selection checks and the report; this
module holds no report type, so the two never import each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from polygram.clustered.build import build, check_encoding, check_traces
from polygram.clustered.catalog import KNOB_COLUMNS, AnyEncoding, FeatureCatalog
from polygram.clustered.dictionary import ClusteredDictionary
from polygram.clustered.fidelity import block_rank_recall, block_tier_preservation
from polygram.clustered.formation import BlockFormation
from polygram.errors import CapacityError, FeatureSelectionError

__all__ = [
    "ClusteredImport",
    "choose_clustered",
    "import_clustered",
    "promotion_warning",
    "stack_projections",
]


def choose_clustered(
    clustered: object,
    n: int,
    encoding: AnyEncoding,
    block_formation: object,
    activation_traces: object,
) -> bool:
    """Whether an import of ``n`` features builds a ``ClusteredDictionary``
    (spec 17 §17.9.1); refuses what cannot be honoured."""
    if clustered is not None and clustered is not True and clustered is not False:
        raise FeatureSelectionError(f"clustered: got {clustered!r}; expected None, True or False")
    if block_formation is not None and not isinstance(block_formation, BlockFormation):
        raise FeatureSelectionError(
            f"block_formation: got {type(block_formation).__name__}; expected a BlockFormation "
            "or None"
        )
    cap = encoding.max_features
    if clustered is False:
        for field, value in (
            ("block_formation", block_formation),
            ("activation_traces", activation_traces),
        ):
            if value is not None:
                raise FeatureSelectionError(
                    f"{field}: given with clustered=False, which builds a flat Dictionary; "
                    "pass clustered=None or True to use it"
                )
        if n > cap:
            raise CapacityError(
                f"feature_ids: {n} selected but {type(encoding).__name__} holds at most {cap} "
                "features in one Dictionary (clustered=False); clustered=None or True builds a "
                "ClusteredDictionary of blocks of at most that size"
            )
        return False
    return clustered is True or n > cap


def promotion_warning(n: int, encoding: AnyEncoding) -> str:
    return (
        f"auto-promoted to clustered: N={n} exceeds {type(encoding).__name__}.max_features="
        f"{encoding.max_features}. Pass clustered=False for the strict ValueError."
    )


def stack_projections(projections: Sequence[np.ndarray]) -> np.ndarray:
    """The selected projections as one ``(N, d)`` array: float32 when every
    one is float32 (loader views), else float64 (spec 17 §17.9.4)."""
    dtype = np.float32 if all(p.dtype == np.float32 for p in projections) else np.float64
    return np.stack(projections).astype(dtype, copy=False)


@dataclass(frozen=True)
class ClusteredImport:
    dictionary: ClusteredDictionary
    #: 05's tier_preservation over all N(N−1)/2 pairs, streamed (None unless asked)
    tier_preservation: float | None
    block_tier_preservation: float | None
    #: the profile's fidelity in its clustered form (None when it has none)
    geometric_fidelity: float | None
    warnings: tuple[str, ...]


def import_clustered(
    name: str,
    names: Sequence[str],
    clusters: Sequence[str],
    knobs: Mapping[str, np.ndarray],
    stacked: np.ndarray,
    encoding: AnyEncoding,
    block_formation: BlockFormation | None,
    activation_traces: object,
    fidelity: str,
) -> ClusteredImport:
    """Blocks, Grams and fidelity of an import whose knobs are assigned.

    ``fidelity`` names the profile's fidelity: ``"tier_preservation"`` is
    streamed in the pair pass, ``"rank_recall"`` pooled over the intra-block
    pairs; any other name (a third-party class) has no clustered form
    (``None``, with a note)."""
    enc = check_encoding(encoding)
    formation = BlockFormation("cosine") if block_formation is None else block_formation
    cap = formation.cap(enc.max_features)
    if cap > enc.max_features:
        raise CapacityError(
            f"block_formation.block_size_max={cap} exceeds {type(enc).__name__}.max_features="
            f"{enc.max_features}; blocks are Dictionaries of at most the encoding's capacity"
        )
    n = len(names)
    fires = None
    if activation_traces is not None:
        if formation.strategy != "co_firing":
            raise FeatureSelectionError(
                f"activation_traces: given with strategy {formation.strategy!r}; only "
                "BlockFormation(strategy='co_firing') reads them"
            )
        fires = check_traces(activation_traces, n)
    elif formation.strategy == "co_firing":
        raise FeatureSelectionError(
            "activation_traces: strategy 'co_firing' needs a (T, n_selected) trace whose "
            "columns follow feature_ids"
        )
    table = np.stack([np.asarray(knobs[k], dtype=np.float64) for k in KNOB_COLUMNS], axis=1)
    catalog = FeatureCatalog.from_knobs(names, clusters, table, enc)
    hierarchy: dict[str, list[str]] | None = None
    if formation.strategy == "user_declared":
        hierarchy = {}
        for nm, cl in zip(names, clusters):
            hierarchy.setdefault(cl, []).append(nm)
    streamed = fidelity == "tier_preservation"
    built = build(
        name,
        catalog,
        np.ascontiguousarray(stacked),
        formation,
        hierarchy=hierarchy,
        fires=fires,
        tier_stats=streamed,
    )
    cd = built.dictionary
    notes: list[str] = []
    tier = None if built.tier is None else built.tier[1]
    if streamed:
        geometric = tier
    elif fidelity == "rank_recall":
        geometric = block_rank_recall(cd)
    else:
        geometric = None
        notes.append(
            f"geometric_fidelity: {fidelity} has no clustered form (it would need all N² "
            "pairs); not computed"
        )
    if built.warning is not None:
        notes.append(built.warning)
    return ClusteredImport(
        cd,
        tier if streamed else None,
        block_tier_preservation(cd),
        geometric,
        tuple(notes),
    )
