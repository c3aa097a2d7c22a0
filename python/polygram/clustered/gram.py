"""``BlockSparseGram``: the Gram of a clustered dictionary without its N×N
matrix (spec 17 §17.6).  Inside a block the entries are quantum state
overlaps; across blocks they are decoder cosines (different units)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from polygram._budget import check_result_bytes
from polygram.clustered._checks import int_at_least
from polygram.clustered.edges import EdgeKey, EdgeMap, Layout, frozen
from polygram.errors import ClusteringError

__all__ = ["BlockSparseGram"]

Entry = tuple[int, int, complex]


class BlockSparseGram:
    """Block Grams (read-only complex128) plus sparse cross-block edges.

    ``block_grams[b]`` is the Gram of block ``b``; ``cross_block_edges`` maps a
    canonical key ``(bi, fi, bj, fj)`` to ``complex(cosine)``.  Positions are
    global (blocks concatenated)."""

    __slots__ = ("_layout", "_p", "_q", "_values", "block_grams")

    block_grams: tuple[np.ndarray, ...]
    _layout: Layout
    _p: np.ndarray
    _q: np.ndarray
    _values: np.ndarray

    def __init__(
        self,
        block_grams: Sequence[Any],
        cross_block_edges: Mapping[EdgeKey, Any] | None = None,
    ) -> None:
        if isinstance(block_grams, np.ndarray) and block_grams.ndim == 2:
            block_grams = [block_grams]
        try:
            grams = list(block_grams)
        except TypeError:
            raise ClusteringError(
                f"BlockSparseGram.block_grams: got {type(block_grams).__name__}; "
                "expected a non-empty sequence of square matrices"
            ) from None
        if not grams:
            raise ClusteringError("BlockSparseGram.block_grams: empty; give at least one block")
        out = []
        for b, g in enumerate(grams):
            try:
                a = np.array(g, dtype=np.complex128)
            except (TypeError, ValueError) as e:
                raise ClusteringError(
                    f"BlockSparseGram.block_grams[{b}]: not a numeric matrix ({e})"
                ) from None
            if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
                raise ClusteringError(
                    f"BlockSparseGram.block_grams[{b}]: shape {a.shape}; expected a non-empty "
                    "square matrix"
                )
            out.append(frozen(a))
        layout = Layout(np.array([g.shape[0] for g in out], dtype=np.int64))
        edges = {} if cross_block_edges is None else cross_block_edges
        p, q, raw = layout.parse(edges, "BlockSparseGram.cross_block_edges")
        values = np.empty(len(raw), dtype=np.complex128)
        for k, v in enumerate(raw):
            try:
                values[k] = complex(v)
            except (TypeError, ValueError):
                raise ClusteringError(
                    f"BlockSparseGram.cross_block_edges: value {v!r} is not a number"
                ) from None
        self._set(tuple(out), layout, p, q, values)

    def _set(
        self,
        grams: tuple[np.ndarray, ...],
        layout: Layout,
        p: np.ndarray,
        q: np.ndarray,
        values: np.ndarray,
    ) -> None:
        object.__setattr__(self, "block_grams", grams)
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_p", frozen(p))
        object.__setattr__(self, "_q", frozen(q))
        object.__setattr__(self, "_values", frozen(values))

    @classmethod
    def _from_columns(
        cls,
        grams: tuple[np.ndarray, ...],
        layout: Layout,
        p: np.ndarray,
        q: np.ndarray,
        cosines: np.ndarray,
    ) -> BlockSparseGram:
        """Trusted fast path of ``ClusteredDictionary.gram()`` (no per-edge Python)."""
        self = cls.__new__(cls)
        self._set(grams, layout, p, q, cosines.astype(np.complex128))
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"BlockSparseGram is immutable (cannot set {name!r})")

    # ------------------------------------------------------------ structure
    @property
    def n_blocks(self) -> int:
        return self._layout.n_blocks

    @property
    def shape(self) -> tuple[int, int]:
        n = self._layout.n
        return (n, n)

    @property
    def cross_block_edges(self) -> Mapping[EdgeKey, complex]:
        return EdgeMap(self._layout, self._p, self._q, self._values, complex)

    def block_diagonal(self) -> list[np.ndarray]:
        return list(self.block_grams)

    @property
    def density(self) -> float:
        """``2·E / (n² − Σ k_b²)``: the filled share of the off-block cells."""
        n = self._layout.n
        denom = n * n - int((self._layout.sizes**2).sum())
        return 0.0 if denom == 0 else 2 * len(self._p) / denom

    cross_block_density = density

    def cross_block_cosine_histogram(self, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``numpy.histogram(|values|, bins, range=(0, 1))``."""
        k = int_at_least("bins", bins, 1)
        if not len(self._values):
            return np.zeros(k, dtype=np.int64), np.linspace(0.0, 1.0, k + 1)
        counts, edges = np.histogram(np.abs(self._values), bins=k, range=(0.0, 1.0))
        return counts, edges

    # -------------------------------------------------------------- entries
    def cross_block_entries(self) -> Iterator[Entry]:
        """Each cross edge once as ``(p_i, p_j, value)``, ``p_i < p_j``, canonical order."""
        yield from zip(self._p.tolist(), self._q.tolist(), self._values.tolist())

    def entries(self) -> Iterator[Entry]:
        """Every cell of each block (row-major, blocks in order), then the cross edges."""
        for start, g in zip(self._layout.starts.tolist(), self.block_grams):
            k = g.shape[0]
            for r, row in enumerate(g.tolist()):
                for c in range(k):
                    yield start + r, start + c, row[c]
        yield from self.cross_block_entries()

    def to_dense(self) -> np.ndarray:
        """The n×n complex matrix in block order (cross edges and their conjugates);
        refused with ``GridTooLargeError`` above the dense-result budget."""
        n = self._layout.n
        check_result_bytes(
            n * n * 16,
            f"BlockSparseGram.to_dense() of {n} features",
            remedy="read block_grams and cross_block_edges instead",
        )
        out = np.zeros((n, n), dtype=np.complex128)
        for start, g in zip(self._layout.starts.tolist(), self.block_grams):
            k = g.shape[0]
            out[start : start + k, start : start + k] = g
        out[self._p, self._q] = self._values
        out[self._q, self._p] = np.conj(self._values)
        return out

    def __repr__(self) -> str:
        n = self._layout.n
        return (
            f"BlockSparseGram({self.n_blocks} blocks, shape ({n}, {n}), "
            f"{len(self._p)} cross-block edges)"
        )
