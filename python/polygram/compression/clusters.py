"""Redundancy clusters: connected components of the confirmed-pair graph,
computed by the Rust union-find (``polygram._core.connected_components``)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from numbers import Integral

import numpy as np

from polygram import _core
from polygram.errors import CompressionError

__all__ = ["connected_components"]


def _edge_array(edges: Iterable[tuple[int, int]] | np.ndarray) -> np.ndarray:
    if isinstance(edges, np.ndarray):
        if edges.dtype.kind not in "iu" or edges.ndim != 2 or edges.shape[1] != 2:
            raise CompressionError(
                f"edges: got a {edges.dtype} array of shape {edges.shape}; expected an "
                "integer array of shape (n_edges, 2)"
            )
        if edges.dtype.kind == "u" and edges.size and int(edges.max()) > np.iinfo(np.int64).max:
            raise CompressionError("edges: ids must be < 2**63")
        return np.ascontiguousarray(edges, dtype=np.int64)
    rows: list[tuple[int, int]] = []
    for k, e in enumerate(edges):
        try:
            a, b = e
        except (TypeError, ValueError):
            raise CompressionError(f"edges[{k}]: got {e!r}; expected a pair (i, j)") from None
        for v in (a, b):
            if isinstance(v, bool) or not isinstance(v, Integral) or not 0 <= int(v) < 2**63:
                raise CompressionError(
                    f"edges[{k}]: id {v!r} is not an integer in [0, 2**63); "
                    "feature ids are non-negative integers"
                )
        rows.append((int(a), int(b)))
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def connected_components(
    edges: Iterable[tuple[int, int]] | np.ndarray,
) -> tuple[tuple[int, ...], ...]:
    """Components of the graph whose nodes are the ids in ``edges``.

    Sorted by minimum member, members ascending; independent of edge order
    and of the orientation of each edge.  A self-loop ``(a, a)`` gives ``(a,)``.
    """
    arr = _edge_array(edges)
    try:
        members, offsets = _core.connected_components(arr)
    except _core.KernelError as e:
        raise CompressionError(str(e)) from None
    flat = members.tolist()
    bounds = offsets.tolist()
    return tuple(tuple(flat[lo:hi]) for lo, hi in pairwise(bounds))
