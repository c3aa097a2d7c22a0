"""Reports of an epoch compression (spec 13 §5): the panels of each
iteration, what each iteration confirmed and zeroed, and how the run ended.

JSON follows the other compression-loop reports (``_report_json``): compact,
keys sorted, floats to 6 significant figures, non-finite → ``null``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polygram._report_json import dumps_report, load_report_source, require_keys, round6

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary

__all__ = [
    "CONVERGENCE_REASONS",
    "EPOCH_SCHEMA_VERSION",
    "EpochIteration",
    "EpochReport",
    "EpochResult",
    "Panel",
]

#: The version written; readers accept every older one (spec 18 §1).
EPOCH_SCHEMA_VERSION = 4

#: How a run can end; iterations additionally use ``"continuing"``.
CONVERGENCE_REASONS = (
    "stable_clusters",
    "max_iterations",
    "quality_bound_breached",
    "no_more_priority_candidates",
)


def _same(a: Any, b: Any) -> bool:
    """Equality in which NaN equals NaN (recursing into tuples)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _fields_same(a: Any, b: Any) -> bool:
    return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))


def _cosine(v: Any) -> float:
    return 0.0 if v is None else float(v)


def _nan_if_null(v: Any) -> float:
    return math.nan if v is None else float(v)


def _opt_round6(v: float | None) -> float | None:
    return None if v is None else round6(v)


#: The per-iteration readings of the quality bound (schema 4).
_QUALITY_FLOATS = ("quality_value", "quality_reference", "quality_change")


@dataclass(frozen=True, eq=False)
class Panel:
    """One ≤8-feature panel: its anchor, members (ascending) and each
    non-anchor member's decoder cosine to the anchor (in member order)."""

    panel_id: int
    anchor: int
    feature_ids: tuple[int, ...]
    cosines_to_anchor: tuple[float, ...]

    def __eq__(self, other: object) -> bool:
        return _fields_same(self, other) if isinstance(other, Panel) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {
            "panel_id": self.panel_id,
            "anchor": self.anchor,
            "feature_ids": list(self.feature_ids),
            "cosines_to_anchor": [round6(c) for c in self.cosines_to_anchor],
        }

    @classmethod
    def from_dict(cls, d: Any) -> Panel:
        return cls(
            panel_id=int(d["panel_id"]),
            anchor=int(d["anchor"]),
            feature_ids=tuple(int(f) for f in d["feature_ids"]),
            cosines_to_anchor=tuple(_cosine(c) for c in d["cosines_to_anchor"]),
        )


@dataclass(frozen=True, eq=False)
class EpochIteration:
    """One validate→compress round.  ``features_zeroed_this_iteration`` still
    lists the ids of an iteration that was reverted for breaching the
    quality bound (``convergence_state == "quality_bound_breached"``).

    ``cross_entropy_delta`` is always the upstream proxy; the quality fields
    (schema 4) are the bound's reading of this iteration's candidate:
    ``quality_value`` (``m_k``; proxy: the delta), ``quality_reference``
    (the source's ``m_src``; proxy: the first delta), ``quality_change``
    (``m_k − m_src``; proxy: None) and ``quality_breached``.  Iterations that
    compressed nothing have them None / False."""

    iteration: int
    panels: tuple[Panel, ...]
    validation_report_paths: tuple[str, ...]
    confirmed_pair_count: int
    clusters_compressed: int
    features_zeroed_this_iteration: tuple[int, ...]
    cross_entropy_delta: float
    convergence_state: str
    quality_metric: str | None = None
    quality_value: float | None = None
    quality_reference: float | None = None
    quality_change: float | None = None
    quality_breached: bool = False

    def __eq__(self, other: object) -> bool:
        return _fields_same(self, other) if isinstance(other, EpochIteration) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "panels": [p.to_dict() for p in self.panels],
            "validation_report_paths": list(self.validation_report_paths),
            "confirmed_pair_count": self.confirmed_pair_count,
            "clusters_compressed": self.clusters_compressed,
            "features_zeroed_this_iteration": list(self.features_zeroed_this_iteration),
            "cross_entropy_delta": round6(self.cross_entropy_delta),
            "convergence_state": self.convergence_state,
            "quality_metric": self.quality_metric,
            **{k: _opt_round6(getattr(self, k)) for k in _QUALITY_FLOATS},
            "quality_breached": bool(self.quality_breached),
        }

    @classmethod
    def from_dict(cls, d: Any) -> EpochIteration:
        return cls(
            iteration=int(d["iteration"]),
            panels=tuple(Panel.from_dict(p) for p in d["panels"]),
            validation_report_paths=tuple(str(p) for p in d["validation_report_paths"]),
            confirmed_pair_count=int(d["confirmed_pair_count"]),
            clusters_compressed=int(d["clusters_compressed"]),
            features_zeroed_this_iteration=tuple(
                int(f) for f in d["features_zeroed_this_iteration"]
            ),
            cross_entropy_delta=_nan_if_null(d["cross_entropy_delta"]),
            convergence_state=str(d["convergence_state"]),
            quality_metric=None if d.get("quality_metric") is None else str(d["quality_metric"]),
            **{k: None if d.get(k) is None else float(d[k]) for k in _QUALITY_FLOATS},
            quality_breached=bool(d.get("quality_breached", False)),
        )


_REPORT_KEYS = (
    "schema_version",
    "source_checkpoint",
    "source_checkpoint_sha256",
    "output_checkpoint",
    "output_checkpoint_sha256",
    "convergence_reason",
    "n_features_zeroed_total",
    "n_panels_total",
    "coverage_achieved",
    "wall_seconds",
    "iterations",
)


_ITERATION_KEYS = (
    "iteration",
    "panels",
    "validation_report_paths",
    "confirmed_pair_count",
    "clusters_compressed",
    "features_zeroed_this_iteration",
    "cross_entropy_delta",
    "convergence_state",
)
_ITERATION_LISTS = ("panels", "validation_report_paths", "features_zeroed_this_iteration")
_PANEL_KEYS = ("panel_id", "anchor", "feature_ids", "cosines_to_anchor")


def _opt_object(v: Any, where: str) -> Mapping[str, Any] | None:
    if v is None or isinstance(v, dict):
        return v
    raise ValueError(f"{where} is {v!r}; expected a JSON object or null")


def _json_list(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list):
        raise ValueError(f"{where} is {v!r}; expected a JSON array")
    return v


@dataclass(frozen=True, eq=False)
class EpochReport:
    """What an epoch run did (spec 13 §5).  ``source_checkpoint`` is stored as
    given (``<in-memory>`` for arrays), ``output_checkpoint`` resolved.
    Schema 4 (spec 18 §1) adds ``sae_settings``, ``output_layout``
    (``folder|file``) and the quality bound of spec 16 §6.2: the resolved
    ``quality_metric`` and ``quality_tolerance``, the prompt counts of the
    gate and of the bound (``n_gate_prompts``, ``n_eval_prompts``), and
    ``eval_before`` / ``eval_after`` (``EvalResult`` dicts of source and
    output, whenever evaluation prompts exist); older files read with all of
    them None.  Equality is NaN-aware."""

    source_checkpoint: str
    source_checkpoint_sha256: str
    output_checkpoint: str
    output_checkpoint_sha256: str
    convergence_reason: str
    n_features_zeroed_total: int
    n_panels_total: int
    coverage_achieved: float
    wall_seconds: float
    iterations: tuple[EpochIteration, ...]
    schema_version: int = EPOCH_SCHEMA_VERSION
    sae_settings: Mapping[str, Any] | None = None
    output_layout: str | None = None
    quality_metric: str | None = None
    quality_tolerance: float | None = None
    n_gate_prompts: int | None = None
    n_eval_prompts: int | None = None
    eval_before: Mapping[str, Any] | None = None
    eval_after: Mapping[str, Any] | None = None

    def __eq__(self, other: object) -> bool:
        return _fields_same(self, other) if isinstance(other, EpochReport) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "source_checkpoint": self.source_checkpoint,
            "source_checkpoint_sha256": self.source_checkpoint_sha256,
            "output_checkpoint": self.output_checkpoint,
            "output_checkpoint_sha256": self.output_checkpoint_sha256,
            "convergence_reason": self.convergence_reason,
            "n_features_zeroed_total": self.n_features_zeroed_total,
            "n_panels_total": self.n_panels_total,
            "coverage_achieved": round6(self.coverage_achieved),
            "wall_seconds": round6(self.wall_seconds),
            "iterations": [it.to_dict() for it in self.iterations],
            "sae_settings": None if self.sae_settings is None else dict(self.sae_settings),
            "output_layout": self.output_layout,
            "quality_metric": self.quality_metric,
            "quality_tolerance": _opt_round6(self.quality_tolerance),
            "n_gate_prompts": self.n_gate_prompts,
            "n_eval_prompts": self.n_eval_prompts,
            "eval_before": None if self.eval_before is None else dict(self.eval_before),
            "eval_after": None if self.eval_after is None else dict(self.eval_after),
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Compact sorted JSON; also written atomically to ``path`` when given."""
        return dumps_report(self.to_dict(), path)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> EpochReport:
        """Parse JSON text or a file; the 11 top-level keys of schema 1 are
        required (and every key of each iteration and panel); the schema-4 keys
        default to None."""
        owner = "EpochReport.from_json"
        doc = require_keys(load_report_source(source, owner), _REPORT_KEYS, owner)
        iterations = _json_list(doc["iterations"], f"{owner}: iterations")
        for k, it in enumerate(iterations):
            where = f"{owner}: iterations[{k}]"
            require_keys(it, _ITERATION_KEYS, where)
            for name in _ITERATION_LISTS:
                _json_list(it[name], f"{where}.{name}")
            for p, panel in enumerate(it["panels"]):
                require_keys(panel, _PANEL_KEYS, f"{where}.panels[{p}]")
                for name in ("feature_ids", "cosines_to_anchor"):
                    _json_list(panel[name], f"{where}.panels[{p}].{name}")
        try:
            return cls._from_checked(doc)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{owner}: a value has the wrong type: {e}") from None

    @classmethod
    def _from_checked(cls, doc: Any) -> EpochReport:
        return cls(
            schema_version=int(doc["schema_version"]),
            source_checkpoint=str(doc["source_checkpoint"]),
            source_checkpoint_sha256=str(doc["source_checkpoint_sha256"]),
            output_checkpoint=str(doc["output_checkpoint"]),
            output_checkpoint_sha256=str(doc["output_checkpoint_sha256"]),
            convergence_reason=str(doc["convergence_reason"]),
            n_features_zeroed_total=int(doc["n_features_zeroed_total"]),
            n_panels_total=int(doc["n_panels_total"]),
            coverage_achieved=_nan_if_null(doc["coverage_achieved"]),
            wall_seconds=_nan_if_null(doc["wall_seconds"]),
            iterations=tuple(EpochIteration.from_dict(it) for it in doc["iterations"]),
            sae_settings=_opt_object(doc.get("sae_settings"), "sae_settings"),
            output_layout=None if doc.get("output_layout") is None else str(doc["output_layout"]),
            quality_metric=None
            if doc.get("quality_metric") is None
            else str(doc["quality_metric"]),
            quality_tolerance=None
            if doc.get("quality_tolerance") is None
            else float(doc["quality_tolerance"]),
            n_gate_prompts=None
            if doc.get("n_gate_prompts") is None
            else int(doc["n_gate_prompts"]),
            n_eval_prompts=None
            if doc.get("n_eval_prompts") is None
            else int(doc["n_eval_prompts"]),
            eval_before=_opt_object(doc.get("eval_before"), "eval_before"),
            eval_after=_opt_object(doc.get("eval_after"), "eval_after"),
        )


@dataclass(frozen=True)
class EpochResult:
    """The report, the written checkpoint and a debugging Dictionary over
    (up to 8 of) the zeroed features, or features 0..7 if none was zeroed."""

    report: EpochReport
    output_checkpoint: Path
    final_dictionary: Dictionary
