"""Cross-block redundancy (spec 17 §17.7): the ranked cross-block edges at or
above a cosine threshold, their per-block-pair coverage and a compact JSON
form that round-trips."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any, overload

import numpy as np

from polygram.clustered._checks import real_in
from polygram.errors import ClusteringError

__all__ = ["CrossBlockRedundancyPair", "CrossBlockRedundancyReport", "rank_pairs"]

SCHEMA_VERSION = 1
_KEYS = ("coverage", "n_total_cross_block_edges", "pairs", "schema_version", "threshold")


@dataclass(frozen=True)
class CrossBlockRedundancyPair:
    """One cross-block redundancy candidate: features in two blocks and their
    decoder cosine (float64)."""

    block_i_idx: int
    feat_i_name: str
    block_j_idx: int
    feat_j_name: str
    cosine: float


class _RankedPairs(Sequence[CrossBlockRedundancyPair]):
    """Read-only, lazily materialised pairs over ranked edge columns."""

    __slots__ = ("_bi", "_bj", "_cos", "_ii", "_ij", "_names")

    def __init__(
        self,
        bi: np.ndarray,
        ii: np.ndarray,
        bj: np.ndarray,
        ij: np.ndarray,
        cos: np.ndarray,
        names: Sequence[str],
    ) -> None:
        self._bi, self._ii, self._bj, self._ij, self._cos = bi, ii, bj, ij, cos
        self._names = names

    def __len__(self) -> int:
        return len(self._cos)

    def _pair(self, k: int) -> CrossBlockRedundancyPair:
        return CrossBlockRedundancyPair(
            int(self._bi[k]),
            self._names[int(self._ii[k])],
            int(self._bj[k]),
            self._names[int(self._ij[k])],
            float(self._cos[k]),
        )

    @overload
    def __getitem__(self, k: int) -> CrossBlockRedundancyPair: ...
    @overload
    def __getitem__(self, k: slice) -> list[CrossBlockRedundancyPair]: ...
    def __getitem__(
        self, k: int | slice
    ) -> CrossBlockRedundancyPair | list[CrossBlockRedundancyPair]:
        n = len(self)
        if isinstance(k, slice):
            return [self._pair(i) for i in range(*k.indices(n))]
        i = k + n if k < 0 else k
        if not 0 <= i < n:
            raise IndexError(f"pair index {k} out of range for {n} pairs")
        return self._pair(i)

    def __iter__(self) -> Iterator[CrossBlockRedundancyPair]:
        return (self._pair(i) for i in range(len(self)))

    def __repr__(self) -> str:
        return f"<{len(self)} redundancy pairs>"


def rank_pairs(
    threshold: object,
    bi: np.ndarray,
    bj: np.ndarray,
    ii: np.ndarray,
    ij: np.ndarray,
    cos: np.ndarray,
    names: Sequence[str],
) -> CrossBlockRedundancyReport:
    """Edges given in canonical order (blocks ``bi < bj``, selection indices
    ``ii``, ``ij``) with ``cos >= threshold``, by descending cosine, ties by
    key ascending."""
    t = real_in("threshold", threshold, 0.0, 1.0)
    keep = np.flatnonzero(cos >= t)
    # a stable sort keeps the canonical order among equal cosines
    order = keep[np.argsort(-cos[keep], kind="stable")]
    pbi, pbj = bi[order], bj[order]
    coverage: dict[tuple[int, int], int] = {}
    if len(order):
        nb = int(max(pbi.max(), pbj.max())) + 1
        uniq, counts = np.unique(pbi * nb + pbj, return_counts=True)
        coverage = {
            (int(u // nb), int(u % nb)): int(c) for u, c in zip(uniq.tolist(), counts.tolist())
        }
    pairs = _RankedPairs(pbi, ii[order], pbj, ij[order], cos[order], names)
    return CrossBlockRedundancyReport(t, pairs, coverage, len(cos))


@dataclass(frozen=True, eq=False)
class CrossBlockRedundancyReport:
    """Cross-block redundancy candidates at ``threshold``.

    ``pairs`` is ranked by descending cosine (ties by key); ``coverage`` counts
    the listed pairs per block pair ``(bi, bj)``, keys ascending;
    ``n_total_cross_block_edges`` counts all cross edges before filtering."""

    threshold: float
    pairs: Sequence[CrossBlockRedundancyPair]
    coverage: Mapping[tuple[int, int], int]
    n_total_cross_block_edges: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CrossBlockRedundancyReport):
            return NotImplemented
        return (
            self.threshold == other.threshold
            and list(self.pairs) == list(other.pairs)
            and dict(self.coverage) == dict(other.coverage)
            and self.n_total_cross_block_edges == other.n_total_cross_block_edges
        )

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> str:
        """One compact object, keys sorted, floats in shortest round-trip form."""
        obj = {
            "coverage": [[bi, bj, c] for (bi, bj), c in sorted(self.coverage.items())],
            "n_total_cross_block_edges": self.n_total_cross_block_edges,
            "pairs": [
                {
                    "block_i_idx": p.block_i_idx,
                    "block_j_idx": p.block_j_idx,
                    "cosine": p.cosine,
                    "feat_i_name": p.feat_i_name,
                    "feat_j_name": p.feat_j_name,
                }
                for p in self.pairs
            ],
            "schema_version": SCHEMA_VERSION,
            "threshold": self.threshold,
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any]) -> CrossBlockRedundancyReport:
        """Read :meth:`to_json` output (text or the parsed dict)."""
        if isinstance(data, str | bytes):
            try:
                obj = json.loads(data)
            except json.JSONDecodeError as e:
                raise ClusteringError(f"redundancy JSON: not valid JSON ({e})") from None
        else:
            obj = data
        if not isinstance(obj, Mapping):
            raise ClusteringError(
                f"redundancy JSON: got {type(obj).__name__}; expected an object with keys "
                f"{list(_KEYS)}"
            )
        missing = [k for k in _KEYS if k not in obj]
        if missing:
            raise ClusteringError(f"redundancy JSON: missing key(s) {missing}; needs {list(_KEYS)}")
        if obj["schema_version"] != SCHEMA_VERSION:
            raise ClusteringError(
                f"redundancy JSON: schema_version {obj['schema_version']!r}; "
                f"supported {SCHEMA_VERSION}"
            )
        try:
            pairs = [
                CrossBlockRedundancyPair(
                    _int(p["block_i_idx"]),
                    str(p["feat_i_name"]),
                    _int(p["block_j_idx"]),
                    str(p["feat_j_name"]),
                    float(p["cosine"]),
                )
                for p in obj["pairs"]
            ]
            coverage = {(_int(bi), _int(bj)): _int(c) for bi, bj, c in obj["coverage"]}
            total = _int(obj["n_total_cross_block_edges"])
        except (KeyError, TypeError, ValueError) as e:
            raise ClusteringError(f"redundancy JSON: malformed entry ({e!r})") from None
        return cls(real_in("threshold", obj["threshold"], 0.0, 1.0), tuple(pairs), coverage, total)


def _int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise ValueError(f"{v!r} is not an integer")
    return int(v)
