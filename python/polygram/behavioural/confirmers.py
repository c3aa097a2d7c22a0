"""Geometry-only confirmers (spec 10 §9): ``ValidationReport``s built from
the SAE's decoder geometry or from a clustering, without a model or torch.
``Compressor`` accepts them like a behavioural report; their summary is all
NaN with no buckets and ``outcome="geometry_only"``."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol, runtime_checkable

from polygram.behavioural.aggregate import decoder_cos2, decoder_rows
from polygram.behavioural.report import (
    SCHEMA_VERSION,
    CandidatePair,
    ValidationReport,
    ValidationSummary,
    confirmed_pairs,
    unmeasured_pair,
)
from polygram.behavioural.validator import existing_checkpoint, unit_interval
from polygram.sae.importer import SelectionReport
from polygram.sae.records import SAEFeatureRecord, selected_ids

__all__ = ["ClusterConfirmer", "Confirmer", "DecoderGeometryConfirmer"]

_NAN = math.nan
GEOMETRY_DICTIONARY_NAME = "imported_sae"


@runtime_checkable
class Confirmer(Protocol):
    """Anything that produces a ``ValidationReport`` (``BehaviouralValidator``
    and the geometry confirmers)."""

    def run(self) -> ValidationReport: ...


def _records(owner: str, records: object) -> Mapping[int, SAEFeatureRecord]:
    if not isinstance(records, Mapping):
        raise TypeError(
            f"{owner}.records: got {type(records).__name__}; expected a mapping feature id → "
            "SAEFeatureRecord (as load_sae_safetensors returns)"
        )
    return records


def _report(
    model_name: str,
    feature_ids: Iterable[int],
    pairs: list[CandidatePair],
    threshold: float,
) -> ValidationReport:
    return ValidationReport(
        schema_version=SCHEMA_VERSION,
        dictionary_name=GEOMETRY_DICTIONARY_NAME,
        model_name=model_name,
        layer=0,
        n_prompts=0,
        n_tokens=0,
        polygram_overlap_threshold=threshold,
        jaccard_threshold=0.0,
        min_firing_rate=0.0,
        min_both_fire=0,
        feature_ids=tuple(feature_ids),
        pairs=tuple(pairs),
        summary=ValidationSummary.unmeasured("geometry_only"),
        confirmed=confirmed_pairs(pairs),
    )


@dataclass
class DecoderGeometryConfirmer:
    """Confirm every panel pair whose decoder cos² is ``>= threshold``.

    ``records`` maps feature id → record (decoder row as ``projection``);
    ``sae_checkpoint`` is the checkpoint they came from (must exist).  Pairs
    are all panel positions ``a < b`` in ``feature_ids`` order.
    """

    records: Mapping[int, SAEFeatureRecord]
    sae_checkpoint: str | os.PathLike[str]
    feature_ids: Iterable[int]
    threshold: float = 0.8

    def __post_init__(self) -> None:
        owner = "DecoderGeometryConfirmer"
        self.records = _records(owner, self.records)
        self.feature_ids = selected_ids(self.feature_ids)
        missing = [f for f in self.feature_ids if f not in self.records]
        if missing:
            raise ValueError(f"{owner}.feature_ids: {missing} have no record in records")
        self.threshold = unit_interval(f"{owner}.threshold", self.threshold)
        self.sae_checkpoint = existing_checkpoint(f"{owner}.sae_checkpoint", self.sae_checkpoint)

    def run(self) -> ValidationReport:
        ids = list(self.feature_ids)
        dims = {len(self.records[f].projection) for f in ids}
        if len(dims) != 1:
            raise ValueError(
                f"DecoderGeometryConfirmer.records: decoder rows of different lengths "
                f"{sorted(dims)}; they must come from one SAE"
            )
        cos2 = decoder_cos2(decoder_rows(self.records, ids))
        pairs = [
            unmeasured_pair(ids[a], ids[b], _NAN, cos2[a, b], cos2[a, b] >= self.threshold)
            for a in range(len(ids))
            for b in range(a + 1, len(ids))
        ]
        return _report("geometry:decoder_cosine2", ids, pairs, self.threshold)


@dataclass
class ClusterConfirmer:
    """Confirm every within-cluster pair of a ``SelectionReport``.

    Feature names in ``selection_report.cluster_assignments`` are mapped back
    to ids through ``records`` (names must be unique there).  As in 0.0.1,
    clusters come in order of first appearance, each cluster's ids ascending,
    so every pair has ``i < j``; ``feature_ids`` are the mapped ids ascending.
    All floats are NaN and ``gate_pass`` is True; singletons give no pair.
    """

    selection_report: SelectionReport
    sae_checkpoint: str | os.PathLike[str]
    records: Mapping[int, SAEFeatureRecord]

    def __post_init__(self) -> None:
        owner = "ClusterConfirmer"
        if not isinstance(self.selection_report, SelectionReport):
            raise TypeError(
                f"{owner}.selection_report: got {type(self.selection_report).__name__}; "
                "expected a SelectionReport (from from_sae_lens)"
            )
        self.records = _records(owner, self.records)
        self.sae_checkpoint = existing_checkpoint(f"{owner}.sae_checkpoint", self.sae_checkpoint)

    def _ids_by_name(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for fid, rec in self.records.items():
            if rec.name in out:
                raise ValueError(
                    f"ClusterConfirmer.records: name {rec.name!r} belongs to features "
                    f"{out[rec.name]} and {fid}; names must be unique to map clusters to ids"
                )
            out[rec.name] = int(fid)
        return out

    def run(self) -> ValidationReport:
        by_name = self._ids_by_name()
        members = list(self.selection_report.cluster_assignments.items())
        unknown = [name for name, _ in members if name not in by_name]
        if unknown:
            raise ValueError(
                f"ClusterConfirmer: selection_report names {unknown} have no record in records"
            )
        groups: dict[object, list[int]] = {}
        for name, cluster in members:
            groups.setdefault(cluster, []).append(by_name[name])
        pairs = [
            unmeasured_pair(i, j, _NAN, _NAN, True)
            for group in groups.values()
            for i, j in combinations(sorted(group), 2)
        ]
        ids = sorted(by_name[name] for name, _ in members)
        return _report("geometry:cluster", ids, pairs, 0.0)
