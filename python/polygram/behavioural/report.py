"""The validator's output: ``CandidatePair``, ``BucketStats``,
``ValidationSummary`` and ``ValidationReport`` (spec 10 §6), with JSON and
CSV serialisation.

All four are frozen dataclasses whose ``==`` treats NaN as equal to NaN:
behavioural fields are NaN until measured, and a report read back from JSON
must compare equal to the one written.  JSON rounds every float to 6
significant figures (non-finite → ``null``), so ``from_json(to_json(r)) == r``
holds once a report has made one trip (a freshly computed report keeps full
precision in memory).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from polygram._io import atomic_write_text
from polygram._report_json import dumps_report, load_report_source, require_keys, round6

__all__ = [
    "CSV_COLUMNS",
    "SCHEMA_VERSION",
    "BucketStats",
    "CandidatePair",
    "ValidationReport",
    "ValidationSummary",
]

#: 2 adds ``n_clusters`` and ``sae_settings`` (spec 18 §1); version-1 reports are
#: still read and written as they were (neither key).
SCHEMA_VERSION = 2

#: The pairs CSV header.  The two ``*_on_both_fire`` columns keep 0.0.1's names
#: for compatibility but hold ``kl_ablate_i``/``kl_ablate_j``: means over the
#: tokens where *that* feature fires (self-fire), not where both fire.
CSV_COLUMNS: tuple[str, ...] = (
    "i",
    "j",
    "polygram_overlap",
    "decoder_overlap",
    "jaccard",
    "pearson_activation",
    "n_fires_i",
    "n_fires_j",
    "n_both_fire",
    "n_either_fire",
    "kl_ablate_i_on_both_fire",
    "kl_ablate_j_on_both_fire",
    "kl_ratio_i_over_j",
    "kl_log_ratio_abs",
    "gate_pass",
)

_TOP_KEYS: tuple[str, ...] = (
    "schema_version",
    "dictionary_name",
    "model_name",
    "layer",
    "n_prompts",
    "n_tokens",
    "polygram_overlap_threshold",
    "jaccard_threshold",
    "min_firing_rate",
    "min_both_fire",
    "feature_ids",
    "pairs",
    "summary",
    "confirmed",
)


# --- NaN-aware comparison ----------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """``a == b``, except that two float NaNs are equal (recursing into
    tuples, lists, dicts and the report dataclasses)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _fields_same(a: Any, b: Any) -> bool:
    return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))


def _hashable(v: Any) -> Any:
    # NaN → None so that equal (NaN-aware) objects hash alike
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, tuple):
        return tuple(_hashable(x) for x in v)
    return v


# --- the dataclasses -----------------------------------------------------------


@dataclass(frozen=True)
class CandidatePair:
    """One feature pair.  ``i``/``j`` are SAE feature ids in panel order, so
    ``i > j`` happens when the panel's ``feature_ids`` are not ascending.
    Behavioural floats are NaN and counters 0 until ``validate()`` fills them."""

    i: int
    j: int
    polygram_overlap: float
    decoder_overlap: float
    jaccard: float
    pearson_activation: float
    kl_ablate_i: float
    kl_ablate_j: float
    kl_ratio_paired: float
    kl_log_ratio_abs: float
    n_fires_i: int
    n_fires_j: int
    n_both_fire: int
    n_either_fire: int
    gate_pass: bool

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CandidatePair):
            return NotImplemented
        return _fields_same(self, other)

    def __hash__(self) -> int:
        return hash(tuple(_hashable(getattr(self, f.name)) for f in fields(self)))


@dataclass(frozen=True)
class BucketStats:
    """Jaccard statistics of the pairs whose polygram overlap falls in one bucket."""

    polygram_range: str
    n_pairs: int
    jaccard_mean: float
    jaccard_ci_95: tuple[float, float]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BucketStats):
            return NotImplemented
        return _fields_same(self, other)

    def __hash__(self) -> int:
        return hash(tuple(_hashable(getattr(self, f.name)) for f in fields(self)))


@dataclass(frozen=True)
class ValidationSummary:
    """Rank/linear correlations over all pairs, the three overlap buckets and
    the verdict string (``outcome``)."""

    spearman_polygram_jaccard: float
    spearman_decoder_jaccard: float
    spearman_polygram_log_kl_abs: float
    pearson_polygram_jaccard: float
    pearson_decoder_jaccard: float
    buckets: dict[str, BucketStats]
    outcome: str

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidationSummary):
            return NotImplemented
        return _fields_same(self, other)

    __hash__ = None  # type: ignore[assignment]  # holds a dict

    @classmethod
    def unmeasured(cls, outcome: str) -> ValidationSummary:
        """No statistics (every correlation NaN, no buckets): the summary of
        reports that measure no behaviour (geometry confirmers, epoch panels)."""
        nan = math.nan
        return cls(nan, nan, nan, nan, nan, {}, outcome)


def _pair_key(p: CandidatePair) -> tuple[int, int]:
    return (p.i, p.j)


@dataclass(frozen=True)
class ValidationReport:
    """Everything one validation run produced (spec 10 §6).

    ``pairs`` keeps the order it was built in (panel order for the
    validator); JSON and CSV write it sorted by ``(i, j)``.  ``confirmed`` is
    the gate-passing ``(i, j)`` list in pair order and is never re-sorted.
    ``sae_settings`` (schema 2) are the SAE's resolved settings with their
    sources (spec 16 §2.3); ``layer`` stays the layer number, the hook kind is
    in ``sae_settings``.
    """

    schema_version: int
    dictionary_name: str
    model_name: str
    layer: int
    n_prompts: int
    n_tokens: int
    polygram_overlap_threshold: float
    jaccard_threshold: float
    min_firing_rate: float
    min_both_fire: int
    feature_ids: tuple[int, ...]
    pairs: tuple[CandidatePair, ...]
    summary: ValidationSummary
    confirmed: tuple[tuple[int, int], ...]
    #: clusters of the validated dictionary (None: not recorded, version 1)
    n_clusters: int | None = None
    sae_settings: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # accept lists from callers; store immutable tuples
        object.__setattr__(self, "feature_ids", tuple(int(f) for f in self.feature_ids))
        object.__setattr__(self, "pairs", tuple(self.pairs))
        object.__setattr__(self, "confirmed", tuple((int(i), int(j)) for i, j in self.confirmed))
        for k, p in enumerate(self.pairs):
            if not isinstance(p, CandidatePair):
                raise TypeError(
                    f"ValidationReport.pairs[{k}]: got {type(p).__name__}; expected CandidatePair"
                )
        if not isinstance(self.summary, ValidationSummary):
            raise TypeError(
                f"ValidationReport.summary: got {type(self.summary).__name__}; "
                "expected ValidationSummary"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidationReport):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "pairs":
                a, b = sorted(a, key=_pair_key), sorted(b, key=_pair_key)
            if not _same(a, b):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # holds a dict

    # --- JSON -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload (floats rounded to 6 s.f., non-finite → None)."""
        s = self.summary
        extra: dict[str, Any] = {}
        if self.schema_version >= 2:
            extra["n_clusters"] = None if self.n_clusters is None else int(self.n_clusters)
            extra["sae_settings"] = None if self.sae_settings is None else dict(self.sae_settings)
        return extra | {
            "schema_version": int(self.schema_version),
            "dictionary_name": self.dictionary_name,
            "model_name": self.model_name,
            "layer": int(self.layer),
            "n_prompts": int(self.n_prompts),
            "n_tokens": int(self.n_tokens),
            "polygram_overlap_threshold": round6(self.polygram_overlap_threshold),
            "jaccard_threshold": round6(self.jaccard_threshold),
            "min_firing_rate": round6(self.min_firing_rate),
            "min_both_fire": int(self.min_both_fire),
            "feature_ids": list(self.feature_ids),
            "pairs": [_pair_dict(p) for p in sorted(self.pairs, key=_pair_key)],
            "summary": {
                "spearman_polygram_jaccard": round6(s.spearman_polygram_jaccard),
                "spearman_decoder_jaccard": round6(s.spearman_decoder_jaccard),
                "spearman_polygram_log_kl_abs": round6(s.spearman_polygram_log_kl_abs),
                "pearson_polygram_jaccard": round6(s.pearson_polygram_jaccard),
                "pearson_decoder_jaccard": round6(s.pearson_decoder_jaccard),
                "buckets": {
                    name: {
                        "polygram_range": b.polygram_range,
                        "n_pairs": int(b.n_pairs),
                        "jaccard_mean": round6(b.jaccard_mean),
                        "jaccard_ci_95": [round6(b.jaccard_ci_95[0]), round6(b.jaccard_ci_95[1])],
                    }
                    for name, b in s.buckets.items()
                },
                "outcome": s.outcome,
            },
            "confirmed": [[i, j] for i, j in self.confirmed],
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Compact JSON with sorted keys (ASCII-escaped); also written
        atomically to ``path`` (parents created) when given."""
        return dumps_report(self.to_dict(), path)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> ValidationReport:
        """Read a report from JSON text or a file path.

        A ``str`` starting (after whitespace) with ``{`` is JSON text; any
        other ``str`` is read as a path if such a file exists and parsed as
        text otherwise.  The 14 top-level keys of schema 1 are required
        (``sae_settings`` defaults to None); ``null`` floats read back as NaN.
        """
        return cls.from_dict(load_report_source(source, "ValidationReport.from_json"))

    @classmethod
    def from_dict(cls, doc: Any) -> ValidationReport:
        """Inverse of :meth:`to_dict`."""
        doc = require_keys(doc, _TOP_KEYS, "ValidationReport")
        s = doc["summary"]
        summary = ValidationSummary(
            spearman_polygram_jaccard=_float(s["spearman_polygram_jaccard"]),
            spearman_decoder_jaccard=_float(s["spearman_decoder_jaccard"]),
            spearman_polygram_log_kl_abs=_float(s["spearman_polygram_log_kl_abs"]),
            pearson_polygram_jaccard=_float(s["pearson_polygram_jaccard"]),
            pearson_decoder_jaccard=_float(s["pearson_decoder_jaccard"]),
            buckets={
                str(name): BucketStats(
                    polygram_range=str(b["polygram_range"]),
                    n_pairs=int(b["n_pairs"]),
                    jaccard_mean=_float(b["jaccard_mean"]),
                    jaccard_ci_95=(_float(b["jaccard_ci_95"][0]), _float(b["jaccard_ci_95"][1])),
                )
                for name, b in s["buckets"].items()
            },
            outcome=str(s["outcome"]),
        )
        return cls(
            schema_version=int(doc["schema_version"]),
            dictionary_name=str(doc["dictionary_name"]),
            model_name=str(doc["model_name"]),
            layer=int(doc["layer"]),
            n_prompts=int(doc["n_prompts"]),
            n_tokens=int(doc["n_tokens"]),
            polygram_overlap_threshold=_float(doc["polygram_overlap_threshold"]),
            jaccard_threshold=_float(doc["jaccard_threshold"]),
            min_firing_rate=_float(doc["min_firing_rate"]),
            min_both_fire=int(doc["min_both_fire"]),
            feature_ids=tuple(int(f) for f in doc["feature_ids"]),
            pairs=tuple(_pair_from(p) for p in doc["pairs"]),
            summary=summary,
            confirmed=tuple((int(i), int(j)) for i, j in doc["confirmed"]),
            n_clusters=None if doc.get("n_clusters") is None else int(doc["n_clusters"]),
            sae_settings=_settings(doc.get("sae_settings")),
        )

    # --- CSV ----------------------------------------------------------------------

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per pair, sorted by ``(i, j)``; written atomically (CRLF
        line ends, Python's default csv dialect).  See :data:`CSV_COLUMNS`."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for p in sorted(self.pairs, key=_pair_key):
            w.writerow(
                [
                    p.i,
                    p.j,
                    _cell(p.polygram_overlap),
                    _cell(p.decoder_overlap),
                    _cell(p.jaccard),
                    _cell(p.pearson_activation),
                    p.n_fires_i,
                    p.n_fires_j,
                    p.n_both_fire,
                    p.n_either_fire,
                    _cell(p.kl_ablate_i),
                    _cell(p.kl_ablate_j),
                    _cell(p.kl_ratio_paired),
                    _cell(p.kl_log_ratio_abs),
                    "true" if p.gate_pass else "false",
                ]
            )
        return atomic_write_text(path, buf.getvalue())


# --- helpers --------------------------------------------------------------------


def _settings(v: Any) -> Mapping[str, Any] | None:
    if v is None or isinstance(v, dict):
        return v
    raise ValueError(f"ValidationReport: sae_settings is {v!r}; expected a JSON object or null")


def _cell(v: float) -> str:
    x = float(v)
    return format(x, ".6g") if math.isfinite(x) else ""


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


_PAIR_FLOATS: tuple[str, ...] = (
    "polygram_overlap",
    "decoder_overlap",
    "jaccard",
    "pearson_activation",
    "kl_ablate_i",
    "kl_ablate_j",
    "kl_ratio_paired",
    "kl_log_ratio_abs",
)
_PAIR_INTS: tuple[str, ...] = ("n_fires_i", "n_fires_j", "n_both_fire", "n_either_fire")


def _pair_dict(p: CandidatePair) -> dict[str, Any]:
    out: dict[str, Any] = {"i": int(p.i), "j": int(p.j)}
    out.update({k: round6(getattr(p, k)) for k in _PAIR_FLOATS})
    out.update({k: int(getattr(p, k)) for k in _PAIR_INTS})
    out["gate_pass"] = bool(p.gate_pass)
    return out


def _pair_from(d: Mapping[str, Any]) -> CandidatePair:
    kw: dict[str, Any] = {"i": int(d["i"]), "j": int(d["j"])}
    kw.update({k: _float(d[k]) for k in _PAIR_FLOATS})
    kw.update({k: int(d[k]) for k in _PAIR_INTS})
    kw["gate_pass"] = bool(d["gate_pass"])
    return CandidatePair(**kw)


def unmeasured_pair(
    i: int, j: int, polygram_overlap: float, decoder_overlap: float, gate_pass: bool = False
) -> CandidatePair:
    """A pair with no behavioural measurement: Jaccard, Pearson and the KL
    fields NaN, the four counters 0 (``predict()`` and the geometry confirmers)."""
    nan = math.nan
    return CandidatePair(
        i=int(i),
        j=int(j),
        polygram_overlap=float(polygram_overlap),
        decoder_overlap=float(decoder_overlap),
        jaccard=nan,
        pearson_activation=nan,
        kl_ablate_i=nan,
        kl_ablate_j=nan,
        kl_ratio_paired=nan,
        kl_log_ratio_abs=nan,
        n_fires_i=0,
        n_fires_j=0,
        n_both_fire=0,
        n_either_fire=0,
        gate_pass=bool(gate_pass),
    )


def confirmed_pairs(pairs: Iterable[CandidatePair]) -> tuple[tuple[int, int], ...]:
    """The gate-passing ``(i, j)`` in pair order (fids as stored)."""
    return tuple((p.i, p.j) for p in pairs if p.gate_pass)
