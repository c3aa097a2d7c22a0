"""Union-find components (Rust) against a pure-Python BFS oracle."""

from __future__ import annotations

import random
from collections import defaultdict, deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polygram import _core
from polygram.compression.clusters import connected_components
from polygram.errors import CompressionError


def bfs_components(edges: list[tuple[int, int]]) -> tuple[tuple[int, ...], ...]:
    adj: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen: set[int] = set()
    out = []
    for start in sorted(adj):
        if start in seen:
            continue
        comp = []
        queue = deque([start])
        seen.add(start)
        while queue:
            v = queue.popleft()
            comp.append(v)
            for w in adj[v]:
                if w not in seen:
                    seen.add(w)
                    queue.append(w)
        out.append(tuple(sorted(comp)))
    return tuple(sorted(out))


edge_lists = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=60) | st.lists(
    st.tuples(st.integers(0, 2**62), st.integers(0, 2**62)), max_size=10
)


@settings(max_examples=300, deadline=None)
@given(edge_lists, st.randoms(use_true_random=False))
def test_matches_bfs_and_is_order_independent(
    edges: list[tuple[int, int]], rnd: random.Random
) -> None:
    want = bfs_components(edges)
    assert connected_components(edges) == want
    shuffled = [(b, a) if rnd.random() < 0.5 else (a, b) for a, b in edges]
    rnd.shuffle(shuffled)
    assert connected_components(shuffled) == want
    assert connected_components(np.array(edges, dtype=np.int64).reshape(-1, 2)) == want


def test_examples() -> None:
    assert connected_components([]) == ()
    assert connected_components([(5, 5)]) == ((5,),)
    assert connected_components([(9, 1), (3, 4), (4, 9)]) == ((1, 3, 4, 9),)
    assert connected_components([(7, 8), (0, 2)]) == ((0, 2), (7, 8))
    assert connected_components(np.array([[3, 1]], dtype=np.uint8)) == ((1, 3),)


@pytest.mark.parametrize(
    ("edges", "match"),
    [
        ([(1, -2)], r"edges\[0\]: id -2 is not an integer"),
        ([(1, 2), (1,)], r"edges\[1\]: got \(1,\); expected a pair"),
        ([(1.5, 2)], r"edges\[0\]: id 1.5"),
        ([(True, 2)], r"edges\[0\]: id True"),
        (np.zeros((3, 3), dtype=np.int64), r"shape \(3, 3\); expected an integer array"),
        (np.zeros((3, 2), dtype=np.float64), "float64 array"),
    ],
)
def test_bad_edges(edges: object, match: str) -> None:
    with pytest.raises(CompressionError, match=match):
        connected_components(edges)  # type: ignore[arg-type]


def test_kernel_refuses_bad_input_without_panicking() -> None:
    with pytest.raises(_core.KernelError, match=r"id -1 at \[1, 0\] is negative"):
        _core.connected_components(np.array([[0, 1], [-1, 2]], dtype=np.int64))
    with pytest.raises(_core.KernelError, match=r"shape \(2, 3\); expected \(n_edges, 2\)"):
        _core.connected_components(np.zeros((2, 3), dtype=np.int64))
    m, o = _core.connected_components(np.zeros((0, 2), dtype=np.int64))
    assert m.tolist() == [] and o.tolist() == [0]
