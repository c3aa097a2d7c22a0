"""What the compression action plans and what it did (spec 11 §7).

``ClusterPlan`` / ``CompressionPlan`` come out of ``Compressor.plan()``;
``CompressionReport`` is the JSON record of one ``apply()``;
``CompressionResult`` bundles it with the output path and the debugging
``Dictionary``.  Unlike the validation/regrow reports, floats here are written
unrounded (full ``repr``), so ``from_json(to_json(r)) == r`` exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polygram._report_json import dumps_report, load_report_source, require_keys

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary

__all__ = [
    "COMPRESSION_SCHEMA_VERSION",
    "ClusterPlan",
    "CompressionPlan",
    "CompressionReport",
    "CompressionResult",
    "cluster_from_dict",
    "cluster_to_dict",
]

#: Version 2 (spec 18 §1) adds ``sae_settings``, ``output_layout``,
#: ``decoder_row_kept`` and the evaluation blocks ``eval_before``,
#: ``eval_after``, ``eval_change``; version-1 files read with those as None
#: (``decoder_row_kept`` False).
COMPRESSION_SCHEMA_VERSION = 2

# Every top-level key but scale_compression_ratio (which defaults to 1.0).
_REQUIRED: tuple[str, ...] = (
    "schema_version",
    "source_checkpoint",
    "source_checkpoint_sha256",
    "output_checkpoint",
    "output_checkpoint_sha256",
    "validation_report_dictionary_name",
    "validation_report_schema_version",
    "strategy",
    "feature_ids",
    "clusters",
    "n_features_zeroed",
    "n_features_kept",
    "n_clusters",
)
_CLUSTER_REQUIRED: tuple[str, ...] = ("cluster_id", "members", "representative", "zeroed")
_NORM_KEYS: tuple[str, ...] = ("cluster_norm_mean", "cluster_norm_std", "merged_norm")
#: The evaluation blocks of spec 16 §6.1 (None when no evaluation was asked for).
_EVAL_KEYS: tuple[str, ...] = ("eval_before", "eval_after", "eval_change")


@dataclass(frozen=True)
class ClusterPlan:
    """One redundancy cluster: members ascending, the kept representative and
    the members to silence (``zeroed``, ascending).  The three norm fields are
    ``None`` until ``apply()`` fills them (``merged_norm`` only for merge)."""

    cluster_id: int
    members: tuple[int, ...]
    representative: int
    zeroed: tuple[int, ...]
    cluster_norm_mean: float | None = None
    cluster_norm_std: float | None = None
    merged_norm: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(int(m) for m in self.members))
        object.__setattr__(self, "zeroed", tuple(int(m) for m in self.zeroed))


@dataclass(frozen=True)
class CompressionPlan:
    """The clusters (in ``cluster_id`` order) and the report's feature ids."""

    clusters: tuple[ClusterPlan, ...]
    feature_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "clusters", tuple(self.clusters))
        object.__setattr__(self, "feature_ids", tuple(int(f) for f in self.feature_ids))

    @property
    def n_features_zeroed(self) -> int:
        return sum(len(c.zeroed) for c in self.clusters)

    @property
    def n_features_kept(self) -> int:
        """The number of representatives (= clusters) — not the surviving SAE
        width, which is the input width minus ``n_features_zeroed``."""
        return len(self.clusters)


@dataclass(frozen=True, kw_only=True)
class CompressionReport:
    """The record of one compression (spec 11 §7.1).

    ``source_checkpoint`` is kept as given (possibly relative;
    ``<in-memory>`` for arrays); ``output_checkpoint`` is the resolved
    absolute path (a folder or a ``.safetensors`` file, ``output_layout``).
    ``n_features_kept`` counts representatives (= clusters), not every live
    feature.  ``sae_settings`` are the source's resolved settings with their
    sources; ``decoder_row_kept`` is true for rescaled TopK, whose zeroed
    features keep their decoder rows (spec 16 §1.6).  ``eval_before`` /
    ``eval_after`` are ``EvalResult`` dicts of source and output and
    ``eval_change`` their difference (spec 16 §6.1), or None when no
    evaluation was requested.
    """

    schema_version: int = COMPRESSION_SCHEMA_VERSION
    source_checkpoint: str
    source_checkpoint_sha256: str
    output_checkpoint: str
    output_checkpoint_sha256: str
    validation_report_dictionary_name: str
    validation_report_schema_version: int
    strategy: str
    plan: CompressionPlan
    n_features_zeroed: int
    n_features_kept: int
    n_clusters: int
    scale_compression_ratio: float = 1.0
    sae_settings: Mapping[str, Any] | None = None
    output_layout: str | None = None
    decoder_row_kept: bool = False
    eval_before: Mapping[str, Any] | None = None
    eval_after: Mapping[str, Any] | None = None
    eval_change: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload: the plan flattened to ``feature_ids`` + ``clusters``."""
        return {
            "schema_version": int(self.schema_version),
            "source_checkpoint": self.source_checkpoint,
            "source_checkpoint_sha256": self.source_checkpoint_sha256,
            "output_checkpoint": self.output_checkpoint,
            "output_checkpoint_sha256": self.output_checkpoint_sha256,
            "validation_report_dictionary_name": self.validation_report_dictionary_name,
            "validation_report_schema_version": int(self.validation_report_schema_version),
            "strategy": self.strategy,
            "feature_ids": list(self.plan.feature_ids),
            "clusters": [cluster_to_dict(c) for c in self.plan.clusters],
            "n_features_zeroed": int(self.n_features_zeroed),
            "n_features_kept": int(self.n_features_kept),
            "n_clusters": int(self.n_clusters),
            "scale_compression_ratio": float(self.scale_compression_ratio),
            "sae_settings": None if self.sae_settings is None else dict(self.sae_settings),
            "output_layout": self.output_layout,
            "decoder_row_kept": bool(self.decoder_row_kept),
            **{k: _opt_dict(getattr(self, k)) for k in _EVAL_KEYS},
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Compact JSON, sorted keys, floats unrounded; also written atomically
        to ``path`` (parents created) when given."""
        return dumps_report(self.to_dict(), path)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> CompressionReport:
        """Read a report from JSON text or a file path (a ``str`` starting with
        ``{`` is text; another ``str`` is a path if the file exists)."""
        return cls.from_dict(load_report_source(source, "CompressionReport.from_json"))

    @classmethod
    def from_dict(cls, doc: Any) -> CompressionReport:
        """Inverse of :meth:`to_dict` for schema versions 1 and 2;
        ``scale_compression_ratio`` defaults to 1.0, the per-cluster norm keys
        and the version-2 keys to ``None`` (``decoder_row_kept`` to False)."""
        owner = "CompressionReport"
        d = require_keys(doc, _REQUIRED, owner)
        if not isinstance(d["clusters"], list) or not isinstance(d["feature_ids"], list):
            raise ValueError(f"{owner}: 'clusters' and 'feature_ids' must be JSON arrays")
        clusters = [
            cluster_from_dict(c, f"{owner}.clusters[{k}]") for k, c in enumerate(d["clusters"])
        ]
        ratio = d.get("scale_compression_ratio", 1.0)
        return cls(
            schema_version=_int(d["schema_version"], "schema_version"),
            source_checkpoint=_str(d["source_checkpoint"], "source_checkpoint"),
            source_checkpoint_sha256=_str(
                d["source_checkpoint_sha256"], "source_checkpoint_sha256"
            ),
            output_checkpoint=_str(d["output_checkpoint"], "output_checkpoint"),
            output_checkpoint_sha256=_str(
                d["output_checkpoint_sha256"], "output_checkpoint_sha256"
            ),
            validation_report_dictionary_name=_str(
                d["validation_report_dictionary_name"], "validation_report_dictionary_name"
            ),
            validation_report_schema_version=_int(
                d["validation_report_schema_version"], "validation_report_schema_version"
            ),
            strategy=_str(d["strategy"], "strategy"),
            plan=CompressionPlan(
                clusters=tuple(clusters),
                feature_ids=tuple(_int(f, "feature_ids") for f in d["feature_ids"]),
            ),
            n_features_zeroed=_int(d["n_features_zeroed"], "n_features_zeroed"),
            n_features_kept=_int(d["n_features_kept"], "n_features_kept"),
            n_clusters=_int(d["n_clusters"], "n_clusters"),
            scale_compression_ratio=_float(ratio, "scale_compression_ratio"),
            sae_settings=_opt_mapping(d.get("sae_settings"), "sae_settings"),
            output_layout=_opt_str(d.get("output_layout"), "output_layout"),
            decoder_row_kept=_bool(d.get("decoder_row_kept", False), "decoder_row_kept"),
            **{k: _opt_mapping(d.get(k), k) for k in _EVAL_KEYS},
        )


@dataclass(frozen=True)
class CompressionResult:
    """``apply()``'s outcome: the patched plan, the report, the written file
    and a debugging ``Dictionary`` over the first ≤ 8 report features
    (``None`` when the report has no feature ids)."""

    plan: CompressionPlan
    report: CompressionReport
    output_checkpoint: Path
    dictionary: Dictionary | None


def cluster_to_dict(c: ClusterPlan) -> dict[str, Any]:
    """A cluster as spec 11 §7.2 writes it (norms ``null`` until ``apply()``)."""
    return {
        "cluster_id": int(c.cluster_id),
        "members": list(c.members),
        "representative": int(c.representative),
        "zeroed": list(c.zeroed),
        "cluster_norm_mean": _opt_float(c.cluster_norm_mean),
        "cluster_norm_std": _opt_float(c.cluster_norm_std),
        "merged_norm": _opt_float(c.merged_norm),
    }


def cluster_from_dict(doc: Any, where: str) -> ClusterPlan:
    """Inverse of :func:`cluster_to_dict`; the norm keys are optional."""
    cd = require_keys(doc, _CLUSTER_REQUIRED, where)
    for key in ("members", "zeroed"):
        if not isinstance(cd[key], list):
            raise ValueError(f"{where}.{key} is {cd[key]!r}; expected a JSON array")
    return ClusterPlan(
        cluster_id=_int(cd["cluster_id"], f"{where}.cluster_id"),
        members=tuple(_int(m, f"{where}.members") for m in cd["members"]),
        representative=_int(cd["representative"], f"{where}.representative"),
        zeroed=tuple(_int(m, f"{where}.zeroed") for m in cd["zeroed"]),
        **{n: _read_opt_float(cd.get(n), f"{where}.{n}") for n in _NORM_KEYS},
    )


def _opt_dict(v: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if v is None else dict(v)


def _opt_float(v: float | None) -> float | None:
    return None if v is None else float(v)


def _bad(field: str, v: Any, want: str) -> ValueError:
    return ValueError(f"CompressionReport: {field} is {v!r}; expected {want}")


def _int(v: Any, field: str) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise _bad(field, v, "an integer")
    return int(v)


def _str(v: Any, field: str) -> str:
    if not isinstance(v, str):
        raise _bad(field, v, "a string")
    return v


def _float(v: Any, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, Real):
        raise _bad(field, v, "a number")
    x = float(v)
    if math.isnan(x):  # NaN never appears in a written report
        raise _bad(field, v, "a number")
    return x


def _opt_mapping(v: Any, field: str) -> Mapping[str, Any] | None:
    if v is None or isinstance(v, dict):
        return v
    raise _bad(field, v, "a JSON object or null")


def _opt_str(v: Any, field: str) -> str | None:
    return None if v is None else _str(v, field)


def _bool(v: Any, field: str) -> bool:
    if not isinstance(v, bool):
        raise _bad(field, v, "true or false")
    return v


def _read_opt_float(v: Any, field: str) -> float | None:
    return None if v is None else _float(v, field)
