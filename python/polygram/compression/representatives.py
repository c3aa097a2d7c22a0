"""Who represents a cluster: the ``rep_selection`` rules (spec 11 §3.2,
spec 15 §4), shared by threshold, target-K and Pareto plans.

Every rule reads only the *within-cluster* pairs of the report (both ends in
the cluster) and attributes each pair's per-feature values by the pair's own
``i``/``j`` (``n_fires_i`` and ``kl_ablate_i`` → ``p.i``).  Polygram 0.0.1 and
0.15 attributed them by ``min(i, j)``/``max(i, j)``, which swaps them
whenever a stored pair has ``i > j``.

* ``n_fires``: the most firing tokens; ties → the lowest id.
* ``scale_aware``: 0.4·decoder-norm proximity to the cluster median +
  0.4·min-max summed ablation KL + 0.2·min-max log fires; argmax, ties → the
  lowest id.
* ``kl_attribution``: the largest mean ablation KL; members without a finite
  KL are scored on the same [0, 1] scale from norm proximity and log fires.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from polygram.behavioural.report import CandidatePair
from polygram.errors import CompressionError

__all__ = ["PairTable", "choose_representatives"]

_EPS = 1e-8


@dataclass(frozen=True)
class PairTable:
    """A report's pairs as columns, built once and reused by every plan.
    ``ids`` are the distinct feature ids (ascending) and ``pos_i``/``pos_j``
    each pair's ends as positions into them."""

    i: np.ndarray
    j: np.ndarray
    fires_i: np.ndarray
    fires_j: np.ndarray
    kl_i: np.ndarray
    kl_j: np.ndarray
    ids: np.ndarray
    pos_i: np.ndarray
    pos_j: np.ndarray

    @classmethod
    def of(cls, pairs: Sequence[CandidatePair]) -> PairTable:
        n = len(pairs)

        def col(attr: str, dtype: type) -> np.ndarray:
            return np.fromiter((getattr(p, attr) for p in pairs), dtype=dtype, count=n)

        i, j = col("i", np.int64), col("j", np.int64)
        ids, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
        return cls(
            i=i,
            j=j,
            fires_i=col("n_fires_i", np.int64),
            fires_j=col("n_fires_j", np.int64),
            kl_i=col("kl_ablate_i", np.float64),
            kl_j=col("kl_ablate_j", np.float64),
            ids=ids,
            pos_i=inverse[:n],
            pos_j=inverse[n:],
        )


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < _EPS:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


class _Within:
    """The within-cluster pairs of a partition and the per-member fire totals
    over them (vectorised: a Pareto curve asks this once per target)."""

    def __init__(self, table: PairTable, components: Sequence[tuple[int, ...]]) -> None:
        self.members = np.fromiter((m for c in components for m in c), dtype=np.int64)
        self.cids = np.repeat(np.arange(len(components)), [len(c) for c in components])
        # each id's cluster, by position into table.ids (−1: in no cluster);
        # a member outside the table's ids takes part in no pair
        n = len(table.ids)
        pos = np.searchsorted(table.ids, self.members)
        known = pos < n
        known[known] = table.ids[pos[known]] == self.members[known]
        slot = np.where(known, pos, n)  # slot n: the sentinel of unknown members
        label = np.full(n + 1, -1, dtype=np.int64)
        label[slot] = np.where(known, self.cids, -1)
        label[n] = -1
        ci, cj = label[table.pos_i], label[table.pos_j]
        self.mask = (ci >= 0) & (ci == cj)
        self.table = table
        totals = np.zeros(n + 1, dtype=np.int64)
        np.add.at(totals, table.pos_i[self.mask], table.fires_i[self.mask])
        np.add.at(totals, table.pos_j[self.mask], table.fires_j[self.mask])
        self.totals = totals[slot]

    def fires(self) -> dict[int, int]:
        return dict(zip(self.members.tolist(), self.totals.tolist(), strict=True))

    def most_fired(self) -> list[int]:
        """Per cluster the member with the largest total; ties → the lowest id."""
        order = np.lexsort((self.members, -self.totals, self.cids))
        first = np.ones(len(order), dtype=bool)
        first[1:] = self.cids[order][1:] != self.cids[order][:-1]
        return self.members[order][first].tolist()  # type: ignore[no-any-return]

    def kl_values(self) -> dict[int, list[float]]:
        """Finite ablation KL values per feature."""
        t, m = self.table, self.mask
        out: dict[int, list[float]] = {}
        for ids, kl in ((t.i[m], t.kl_i[m]), (t.j[m], t.kl_j[m])):
            for f, v in zip(ids.tolist(), kl.tolist(), strict=True):
                if math.isfinite(v):
                    out.setdefault(f, []).append(v)
        return out


def _scale_aware(
    components: Sequence[tuple[int, ...]],
    fires: dict[int, int],
    kl: dict[int, list[float]],
    norms: Callable[[tuple[int, ...]], np.ndarray],
) -> list[int]:
    reps = []
    for cid, members in enumerate(components):
        n = norms(members)
        med = float(np.median(n))
        prox = np.clip(1.0 - np.abs(n - med) / (med + _EPS), 0.0, 1.0)
        if not any(kl.get(m) for m in members):
            warnings.warn(
                f"scale_aware: cluster {cid} (members {list(members)}) has no finite "
                "kl_ablate value; falling back to n_fires-only scoring for its ablation term",
                UserWarning,
                stacklevel=5,
            )
            abl = np.zeros(len(members))
        else:
            abl = _minmax(np.array([math.fsum(kl.get(m, [])) for m in members]))
        lf = _minmax(np.log(np.array([float(fires.get(m, 0)) for m in members]) + _EPS))
        score = (0.4 * prox + 0.4 * abl + 0.2 * lf).tolist()
        reps.append(members[min(range(len(members)), key=lambda k: (-score[k], members[k]))])
    return reps


def _kl_attribution(
    components: Sequence[tuple[int, ...]],
    fires: dict[int, int],
    kl: dict[int, list[float]],
    norms: Callable[[tuple[int, ...]], np.ndarray],
) -> list[int]:
    reps = []
    for cid, members in enumerate(components):
        mean = np.array([math.fsum(kl[m]) / len(kl[m]) if kl.get(m) else math.nan for m in members])
        finite = ~np.isnan(mean)
        if not finite.any():
            raise CompressionError(
                f"rep_selection='kl_attribution': cluster {cid} (members {list(members)}) has no "
                "finite kl_ablate value (a geometry-only or epoch report?); use "
                "rep_selection='scale_aware' or 'n_fires'"
            )
        score = np.zeros(len(members))
        score[finite] = _minmax(mean[finite])
        if not finite.all():
            lacking = tuple(m for m, ok in zip(members, finite, strict=True) if not ok)
            n = norms(lacking)
            med = float(np.median(n))
            prox = np.clip(1.0 - np.abs(n - med) / (med + _EPS), 0.0, 1.0)
            lf = _minmax(np.log(np.array([float(fires.get(m, 0)) for m in lacking]) + _EPS))
            score[~finite] = _minmax(0.5 * prox + 0.5 * lf)
        key = [(-score[k], -fires.get(m, 0), m) for k, m in enumerate(members)]
        reps.append(members[min(range(len(members)), key=key.__getitem__)])
    return reps


def choose_representatives(
    rule: str,
    components: Sequence[tuple[int, ...]],
    table: PairTable,
    norms: Callable[[tuple[int, ...]], np.ndarray],
) -> list[int]:
    """One representative per component (members ascending) by ``rule``;
    ``norms(members)`` gives their decoder-row norms (read only by
    ``scale_aware`` and ``kl_attribution``)."""
    within = _Within(table, components)
    if rule == "n_fires":
        return within.most_fired()
    if rule == "scale_aware":
        return _scale_aware(components, within.fires(), within.kl_values(), norms)
    if rule == "kl_attribution":
        return _kl_attribution(components, within.fires(), within.kl_values(), norms)
    raise CompressionError(
        f"rep_selection: got {rule!r}; allowed: n_fires, scale_aware, kl_attribution"
    )
