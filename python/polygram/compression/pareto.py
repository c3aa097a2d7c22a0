"""Compression to a budget: the target-K walk and the compression-vs-K
curve (spec 15 §3).

One sort and one pass serve every target.  Pairs are ranked by a score
field (all report pairs, confirmed or not), and a union-find joins them in
that order while counting the clusters of two or more features.  That count
rises and falls by one at a time; a target K is met the first time it falls
back to K after having exceeded it.  The walk records, per K, how many of
the ranked pairs the plan uses (a prefix); the plan itself is the connected
components of that prefix, computed by the Rust union-find.

The peak of the count needs a rule (where 0.15 over-merges): K equal to the
peak stops just before the first pair that lowers the count after the peak
was first reached, K above the peak uses the state at the first peak.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from polygram._report_json import dumps_report, load_report_source, require_keys
from polygram.behavioural.report import CandidatePair
from polygram.compression.choices import SCORE_FIELDS
from polygram.compression.clusters import connected_components
from polygram.compression.report import CompressionPlan, cluster_from_dict, cluster_to_dict
from polygram.errors import CompressionError

__all__ = [
    "PARETO_SCHEMA_VERSION",
    "ParetoOutcome",
    "ParetoReport",
    "TargetWalk",
    "check_target",
    "check_targets",
    "walk_targets",
]

PARETO_SCHEMA_VERSION = 1


def check_target(value: object, name: str = "target_n_features_kept") -> int:
    """An int ≥ 1 (numpy integers too, bools not), else ``CompressionError``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral) or int(value) < 1:
        raise CompressionError(f"{name}: got {value!r}; allowed: an integer >= 1")
    return int(value)


def check_targets(targets: object) -> tuple[int, ...]:
    """A non-empty iterable of ints ≥ 1 → deduplicated, descending."""
    if isinstance(targets, str | bytes) or not isinstance(targets, Iterable):
        raise CompressionError(
            f"targets: got {targets!r}; allowed: a non-empty sequence of integers >= 1"
        )
    items = list(targets)
    if not items:
        raise CompressionError("targets: empty; allowed: a non-empty sequence of integers >= 1")
    checked = {check_target(t, f"targets[{k}]") for k, t in enumerate(items)}
    return tuple(sorted(checked, reverse=True))


@dataclass(frozen=True)
class TargetWalk:
    """The outcome of one walk: the ranked pairs as an ``(E, 2)`` id array
    and, per target, how many leading pairs its plan uses and whether the
    target was reached."""

    edges: np.ndarray
    peak: int
    prefix: dict[int, int]
    reached: dict[int, bool]

    def components(self, k: int) -> tuple[tuple[int, ...], ...]:
        """K's clusters: the connected components of its prefix (sorted by
        minimum member, members ascending; singletons never appear)."""
        return connected_components(self.edges[: self.prefix[k]])


def ranked_edges(pairs: Sequence[CandidatePair], score_field: str) -> np.ndarray:
    """The pairs with a finite ``score_field``, as ``(i, j)`` rows sorted by
    (−score, min(i, j), max(i, j))."""
    if score_field not in SCORE_FIELDS:
        raise CompressionError(f"score_field: got {score_field!r}; allowed: {list(SCORE_FIELDS)}")
    n = len(pairs)
    i = np.fromiter((p.i for p in pairs), dtype=np.int64, count=n)
    j = np.fromiter((p.j for p in pairs), dtype=np.int64, count=n)
    score = np.fromiter((getattr(p, score_field) for p in pairs), dtype=np.float64, count=n)
    selfs = np.flatnonzero(i == j)
    if selfs.size:
        k = int(selfs[0])
        raise CompressionError(
            f"validation_report.pairs[{k}] = ({int(i[k])}, {int(j[k])}): a feature paired with "
            "itself; pairs must join two different features"
        )
    keep = ~np.isnan(score)
    if not keep.any():
        raise CompressionError(
            f"score_field={score_field!r}: no pair of the report has a finite value; "
            "for a geometry-only report use score_field='decoder_overlap'"
        )
    lo, hi = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    order = np.lexsort((hi, lo, -score[keep]))
    return np.ascontiguousarray(np.stack([lo[order], hi[order]], axis=1))


def walk_targets(
    pairs: Sequence[CandidatePair], score_field: str, targets: Sequence[int]
) -> TargetWalk:
    """The walk of spec 15 §3.2 for ``targets`` (each an int ≥ 1)."""
    edges = ranked_edges(pairs, score_field)
    ids = np.unique(edges)
    # positions 0..m-1 stand for the ids, so parent is a plain list
    pos = np.searchsorted(ids, edges).tolist()
    parent = list(range(len(ids)))
    seen = [False] * len(ids)

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = parent[a]
        return a

    open_targets = set(targets)
    prefix: dict[int, int] = {}
    n_c = peak = 0
    peak_end = plateau_end = 0
    plateau_frozen = False
    for t, (a, b) in enumerate(pos):
        new_a, new_b = not seen[a], not seen[b]
        seen[a] = seen[b] = True
        ra, rb = root(a), root(b)
        if ra != rb:
            if new_a and new_b:
                n_c += 1
            elif not (new_a or new_b):
                n_c -= 1
                # the count only falls one at a time, so the one target it can
                # reach now is n_c itself — met if it was exceeded (n_c < peak)
                if n_c in open_targets:
                    open_targets.discard(n_c)
                    prefix[n_c] = t + 1
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
        if n_c > peak:
            peak, peak_end, plateau_end, plateau_frozen = n_c, t + 1, t + 1, False
        elif not plateau_frozen:
            if n_c < peak:
                plateau_frozen = True
            else:
                plateau_end = t + 1
        if not open_targets:
            break
    reached = dict.fromkeys(prefix, True)
    for k in open_targets:
        if k == peak:
            prefix[k], reached[k] = plateau_end, True
        elif k > peak:
            prefix[k], reached[k] = peak_end, False
        else:  # exceeded, never dropped back
            prefix[k], reached[k] = len(edges), False
    return TargetWalk(edges=edges, peak=peak, prefix=prefix, reached=reached)


# ----------------------------------------------------------------- reports
@dataclass(frozen=True)
class ParetoOutcome:
    """One point of the curve: the target, whether the walk met it, the plan."""

    target_k: int
    reached_target: bool
    plan: CompressionPlan


@dataclass(frozen=True, kw_only=True)
class ParetoReport:
    """The compression-vs-K curve of one validation report (spec 15 §3.3).

    ``targets`` are descending and ``outcomes`` follow them.
    ``n_features_input`` (the source's width) is a port addition: with it,
    each outcome's surviving width is ``n_features_input − n_features_zeroed``.
    """

    schema_version: int = PARETO_SCHEMA_VERSION
    sae_checkpoint: str
    sae_checkpoint_sha256: str
    score_field: str
    targets: tuple[int, ...]
    outcomes: tuple[ParetoOutcome, ...]
    n_features_input: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(int(t) for t in self.targets))
        object.__setattr__(self, "outcomes", tuple(self.outcomes))
        if self.targets != tuple(o.target_k for o in self.outcomes):
            raise ValueError(
                f"ParetoReport: targets {list(self.targets)} do not match the outcomes' "
                f"target_k {[o.target_k for o in self.outcomes]}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": int(self.schema_version),
            "sae_checkpoint": str(self.sae_checkpoint),
            "sae_checkpoint_sha256": self.sae_checkpoint_sha256,
            "score_field": self.score_field,
            "targets": list(self.targets),
            "n_features_input": self.n_features_input,
            "outcomes": [
                {
                    "target_k": o.target_k,
                    "reached_target": bool(o.reached_target),
                    "feature_ids": list(o.plan.feature_ids),
                    "clusters": [cluster_to_dict(c) for c in o.plan.clusters],
                    "n_features_kept": o.plan.n_features_kept,
                    "n_features_zeroed": o.plan.n_features_zeroed,
                }
                for o in self.outcomes
            ],
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Compact JSON with sorted keys; also written atomically to ``path``
        (parent directories created)."""
        return dumps_report(self.to_dict(), path)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> ParetoReport:
        """Read JSON text or a file.  The six keys of 0.15's format are
        required; ``n_features_input`` and the per-outcome counts are optional
        (0.15 files lack them) and, when present, must agree with the plans."""
        owner = "ParetoReport.from_json"
        d = require_keys(
            load_report_source(source, owner),
            (
                "schema_version",
                "sae_checkpoint",
                "sae_checkpoint_sha256",
                "score_field",
                "targets",
                "outcomes",
            ),
            owner,
        )
        for key in ("targets", "outcomes"):
            if not isinstance(d[key], list):
                raise ValueError(f"{owner}: {key} is {d[key]!r}; expected a JSON array")
        outcomes = []
        for k, o in enumerate(d["outcomes"]):
            where = f"{owner}: outcomes[{k}]"
            od = require_keys(o, ("target_k", "reached_target", "feature_ids", "clusters"), where)
            if not isinstance(od["reached_target"], bool):
                raise ValueError(
                    f"{where}.reached_target is {od['reached_target']!r}; expected true or false"
                )
            if not isinstance(od["clusters"], list) or not isinstance(od["feature_ids"], list):
                raise ValueError(f"{where}: clusters and feature_ids must be JSON arrays")
            plan = CompressionPlan(
                clusters=tuple(
                    cluster_from_dict(c, f"{where}.clusters[{m}]")
                    for m, c in enumerate(od["clusters"])
                ),
                feature_ids=tuple(_int(f, f"{where}.feature_ids") for f in od["feature_ids"]),
            )
            for key, value in (
                ("n_features_kept", plan.n_features_kept),
                ("n_features_zeroed", plan.n_features_zeroed),
            ):
                if key in od and od[key] != value:
                    raise ValueError(f"{where}.{key} is {od[key]!r} but the clusters give {value}")
            outcomes.append(
                ParetoOutcome(_int(od["target_k"], f"{where}.target_k"), od["reached_target"], plan)
            )
        n_in = d.get("n_features_input")
        return cls(
            schema_version=_int(d["schema_version"], f"{owner}: schema_version"),
            sae_checkpoint=_str(d["sae_checkpoint"], f"{owner}: sae_checkpoint"),
            sae_checkpoint_sha256=_str(
                d["sae_checkpoint_sha256"], f"{owner}: sae_checkpoint_sha256"
            ),
            score_field=_str(d["score_field"], f"{owner}: score_field"),
            targets=tuple(_int(t, f"{owner}: targets") for t in d["targets"]),
            outcomes=tuple(outcomes),
            n_features_input=None if n_in is None else _int(n_in, f"{owner}: n_features_input"),
        )


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise ValueError(f"{where} is {v!r}; expected an integer")
    return int(v)


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{where} is {v!r}; expected a string")
    return v
