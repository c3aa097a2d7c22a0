"""``compute_cosine_pair_graph`` (spec 17 §17.11): 0.15's pair-graph helper,
run by the Rust pair pass.  A Python set costs ~100 B per pair; at scale use
``ClusteredDictionary.cross_block_edge_arrays()`` or
``polygram.compression.panels.cosine_pair_graph`` (int64 arrays)."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from polygram import _core
from polygram.errors import ClusteringError

__all__ = ["compute_cosine_pair_graph"]


def _rows(decoder_vectors: object) -> np.ndarray:
    try:
        arr = np.asarray(decoder_vectors)
    except (TypeError, ValueError) as e:
        raise ClusteringError(f"decoder_vectors: not a numeric array ({e})") from None
    if arr.ndim != 2 or arr.dtype.kind not in "iuf":
        raise ClusteringError(
            f"decoder_vectors: got a {arr.dtype} array of shape {arr.shape}; expected a real "
            "(n_rows, d) matrix"
        )
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return np.ascontiguousarray(arr, dtype=dtype)


def _indices(indices: object, n: int) -> np.ndarray:
    arr = np.asarray(indices)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ClusteringError(
            f"indices: got a {arr.dtype} array of shape {arr.shape}; expected a 1-D sequence "
            "of ints"
        )
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ClusteringError(f"indices: {int(bad[0])} is out of range; allowed 0..{n - 1}")
    if len(np.unique(arr)) != len(arr):
        raise ClusteringError("indices: repeated entries; indices must be distinct")
    return arr


def compute_cosine_pair_graph(
    decoder_vectors: object, *, threshold: float, indices: object = None
) -> set[tuple[int, int]]:
    """Every position pair ``p < q`` whose float32 cosine is ``>= threshold``.

    With ``indices`` the rows are ``decoder_vectors[indices]`` and a pair is
    reported as ``(indices[p], indices[q])`` (so the first element may be the
    larger one).  Fewer than two rows give an empty set."""
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise ClusteringError(f"threshold: got {threshold!r}; expected a finite real number")
    t = float(threshold)
    if not math.isfinite(t):
        raise ClusteringError(f"threshold: got {threshold!r}; expected a finite real number")
    rows = _rows(decoder_vectors)
    idx = None
    if indices is not None:
        idx = _indices(indices, rows.shape[0])
        rows = np.ascontiguousarray(rows[idx])
    if rows.shape[0] < 2:
        return set()
    if not np.isfinite(rows).all():
        raise ClusteringError(
            "decoder_vectors: holds non-finite values; every value must be finite"
        )
    edges, _, _ = _core.pair_graph(rows, t)
    if idx is not None:
        edges = idx[edges]
    return set(zip(edges[:, 0].tolist(), edges[:, 1].tolist()))
