"""Cross-block edges as columns: the global positions ``p < q`` of both
endpoints in canonical key order (spec 17 §17.1), plus a read-only mapping
view ``(block_i, feat_i, block_j, feat_j) → value`` over them.

A key ``(bi, fi, bj, fj)`` with ``bi < bj`` is the position pair
``(starts[bi] + fi, starts[bj] + fj)``; positions grow with (block, local),
so the canonical (lexicographic key) order is the order of ``(p, q)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from numbers import Integral
from typing import Any

import numpy as np

from polygram.errors import ClusteringError

__all__ = ["EdgeKey", "EdgeMap", "Layout", "frozen"]

EdgeKey = tuple[int, int, int, int]


def frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class Layout:
    """Block sizes and the global position where each block starts."""

    __slots__ = ("sizes", "starts")

    def __init__(self, sizes: np.ndarray) -> None:
        self.sizes = frozen(np.asarray(sizes, dtype=np.int64))
        self.starts = frozen(np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64))

    @property
    def n_blocks(self) -> int:
        return len(self.sizes)

    @property
    def n(self) -> int:
        return int(self.starts[-1])

    def block_of_position(self, p: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, p, side="right") - 1

    def keys(self, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(block_i, feat_i, block_j, feat_j)`` columns of position pairs."""
        bi, bj = self.block_of_position(p), self.block_of_position(q)
        return bi, p - self.starts[bi], bj, q - self.starts[bj]

    def positions_of(self, key: object) -> tuple[int, int] | None:
        """``(p, q)`` of a valid key, else None."""
        if not isinstance(key, tuple) or len(key) != 4:
            return None
        if not all(isinstance(v, Integral) and not isinstance(v, bool) for v in key):
            return None
        bi, fi, bj, fj = (int(v) for v in key)
        nb = self.n_blocks
        if not (0 <= bi < bj < nb and 0 <= fi < self.sizes[bi] and 0 <= fj < self.sizes[bj]):
            return None
        return int(self.starts[bi]) + fi, int(self.starts[bj]) + fj

    def parse(self, edges: Mapping[Any, Any], owner: str) -> tuple[np.ndarray, np.ndarray, list]:
        """Validated ``(p, q, values)`` of a user mapping, in canonical order."""
        if not isinstance(edges, Mapping):
            raise ClusteringError(
                f"{owner}: got {type(edges).__name__}; expected a mapping "
                "(block_i, feat_i, block_j, feat_j) → value"
            )
        rows = []
        for key, value in edges.items():
            pos = self.positions_of(key)
            if pos is None:
                raise ClusteringError(
                    f"{owner}: key {key!r} is not a 4-tuple of ints (bi, fi, bj, fj) with "
                    f"0 <= bi < bj < {self.n_blocks} and local indices inside the blocks "
                    f"(sizes {self.sizes.tolist()[:8]}{' …' if self.n_blocks > 8 else ''})"
                )
            rows.append((pos[0], pos[1], value))
        rows.sort(key=lambda r: (r[0], r[1]))
        p = np.array([r[0] for r in rows], dtype=np.int64)
        q = np.array([r[1] for r in rows], dtype=np.int64)
        return p, q, [r[2] for r in rows]


def finite_real(owner: str, key: object, value: object) -> float:
    if isinstance(value, bool):
        raise ClusteringError(f"{owner}[{key!r}]: got {value!r}; expected a finite real number")
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ClusteringError(
            f"{owner}[{key!r}]: got {value!r}; expected a finite real number"
        ) from None
    if not math.isfinite(v):
        raise ClusteringError(f"{owner}[{key!r}]: got {v!r}; expected a finite real number")
    return v


class EdgeMap(Mapping[EdgeKey, Any]):
    """Read-only ``key → value`` view of edge columns, iterated canonically."""

    __slots__ = ("_layout", "_p", "_packed", "_q", "_values", "_wrap")

    def __init__(
        self, layout: Layout, p: np.ndarray, q: np.ndarray, values: np.ndarray, wrap: type
    ) -> None:
        self._layout, self._p, self._q, self._values, self._wrap = layout, p, q, values, wrap
        self._packed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._p)

    def _find(self, key: object) -> int | None:
        pos = self._layout.positions_of(key)
        if pos is None or not len(self._p):
            return None
        if self._packed is None:
            self._packed = self._p * max(self._layout.n, 1) + self._q
        target = pos[0] * max(self._layout.n, 1) + pos[1]
        k = int(np.searchsorted(self._packed, target))
        return k if k < len(self._packed) and self._packed[k] == target else None

    def __getitem__(self, key: EdgeKey) -> Any:
        k = self._find(key)
        if k is None:
            raise KeyError(key)
        return self._wrap(self._values[k])

    def __contains__(self, key: object) -> bool:
        return self._find(key) is not None

    def __iter__(self) -> Iterator[EdgeKey]:
        bi, fi, bj, fj = self._layout.keys(self._p, self._q)
        return zip(bi.tolist(), fi.tolist(), bj.tolist(), fj.tolist())  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<{len(self)} cross-block edges>"
