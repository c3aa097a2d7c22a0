"""Hypothesis properties of the clustered build against brute-force oracles:
the dense N×N cosine matrix (small N), a plain Python BFS, the dense Gram of
each block, a Python Jaccard graph; and bit-identical results across thread
counts."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from polygram import Feature, MPSRung1, Rung3, _core
from polygram.clustered import (
    BlockFormation,
    build_clustered_dictionary,
    compute_cosine_pair_graph,
)


def unit64(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1)
    return x / np.where(n < 1e-12, 1.0, n)[:, None]


def dense_cos(x: np.ndarray) -> np.ndarray:
    u = unit64(np.asarray(x, dtype=np.float64))
    return u @ u.T


def oracle_pairs(c: np.ndarray, t: float) -> list[tuple[int, int]]:
    n = c.shape[0]
    return [(i, j) for i in range(n) for j in range(i + 1, n) if c[i, j] >= t]


def oracle_bfs(n: int, pairs: list[tuple[int, int]], cap: int) -> list[list[int]]:
    adj: list[list[int]] = [[] for _ in range(n)]
    for i, j in pairs:
        adj[i].append(j)
        adj[j].append(i)
    seen = [False] * n
    blocks = []
    for s in range(n):
        if seen[s]:
            continue
        seen[s] = True
        block, q = [s], deque([s])
        full = False
        while q and not full:
            u = q.popleft()
            for v in sorted(adj[u]):
                if len(block) >= cap:
                    full = True
                    break
                if not seen[v]:
                    seen[v] = True
                    block.append(v)
                    q.append(v)
        blocks.append(block)
    return blocks


@contextmanager
def only_degenerate_warnings() -> Iterator[None]:
    """Only the degenerate-partition warning may appear."""
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        yield
    for w in log:
        assert str(w.message).startswith("Degenerate cosine partition"), w.message


def features(n: int, rng: np.random.Generator) -> list[Feature]:
    return [
        Feature(
            f"f{i}",
            f"c{int(rng.integers(0, 3))}",
            float(rng.uniform(-1, 1)),
            gamma=float(rng.uniform(-0.3, 0.3)),
            phi=float(rng.uniform(0, 6)),
        )
        for i in range(n)
    ]


def rows(n: int, d: int, seed: int, groups: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, d))
    return centres[rng.integers(0, groups, n)] + 0.6 * rng.standard_normal((n, d))


cases = st.tuples(
    st.integers(2, 40),  # n
    st.integers(1, 8),  # d
    st.integers(0, 10_000),  # seed
    st.floats(0.0, 1.0),  # threshold
    st.integers(1, 8),  # cap
)


@given(cases)
def test_pair_graph_and_blocks_match_brute_force(case: tuple[int, int, int, float, int]) -> None:
    n, d, seed, t, cap = case
    x = rows(n, d, seed, groups=3)
    c = dense_cos(x)
    off = c[np.triu_indices(n, 1)]
    assume(np.abs(off - t).min() > 1e-5)  # float32 tiles decide pairs this close either way
    pairs = oracle_pairs(c, t)
    assert compute_cosine_pair_graph(x, threshold=t) == set(pairs)
    feats = features(n, np.random.default_rng(seed))
    bf = BlockFormation("cosine", cosine_threshold=t, block_size_max=cap)
    with only_degenerate_warnings():
        cd = build_clustered_dictionary("P", feats, x, MPSRung1(), bf)
    blocks = oracle_bfs(n, pairs, cap)
    assert [list(cd.block_view(b).indices) for b in range(cd.n_blocks)] == blocks
    # cross edges: oracle pairs across blocks, canonical keys, float64 cosines
    where = {v: (b, k) for b, blk in enumerate(blocks) for k, v in enumerate(blk)}
    want = []
    for i, j in pairs:
        (bi, fi), (bj, fj) = where[i], where[j]
        if bi != bj:
            key = (bi, fi, bj, fj) if bi < bj else (bj, fj, bi, fi)
            want.append((key, c[i, j]))
    want.sort()
    got = cd.cross_block_edges_tuple
    assert [k for k, _ in got] == [k for k, _ in want]
    assert np.allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=1e-12)
    # block Grams are the blocks' own Grams; the dense view assembles them
    g = cd.gram()
    for b, blk in enumerate(cd.blocks):
        assert np.array_equal(g.block_grams[b], blk.gram())
    dense = g.to_dense()
    sizes = [len(b) for b in blocks]
    assert g.shape == (n, n)
    assert sum(1 for _ in g.entries()) == sum(k * k for k in sizes) + len(got)
    assert np.allclose(dense, dense.conj().T)
    denom = n * n - sum(k * k for k in sizes)
    assert g.density == (0.0 if denom == 0 else 2 * len(got) / denom)
    # redundancy: every listed pair passes, in descending order, coverage counts them
    rep = cd.cross_block_redundant_pairs(0.5)
    cos = [p.cosine for p in rep.pairs]
    assert cos == sorted(cos, reverse=True) and all(v >= 0.5 for v in cos)
    assert sum(rep.coverage.values()) == len(rep.pairs)
    assert rep.n_total_cross_block_edges == len(got)


@given(st.integers(2, 30), st.integers(1, 70), st.integers(0, 10_000), st.floats(0.05, 1.0))
def test_co_firing_graph_matches_python_jaccard(n: int, t_len: int, seed: int, thr: float) -> None:
    rng = np.random.default_rng(seed)
    fires = rng.random((t_len, n)) < rng.uniform(0.05, 0.6, size=n)
    both = fires.T.astype(int) @ fires.astype(int)
    cnt = fires.sum(axis=0)
    jac = {}
    for i in range(n):
        for j in range(i + 1, n):
            e = cnt[i] + cnt[j] - both[i, j]
            if e > 0:
                jac[(i, j)] = both[i, j] / e
    assume(all(abs(v - thr) > 1e-12 for v in jac.values()))
    pairs = [p for p, v in jac.items() if v >= thr]
    x = np.eye(n)  # orthogonal rows: no decoder edge at threshold 0.5
    feats = [Feature(f"f{i}", "c", 0.0) for i in range(n)]
    bf = BlockFormation(
        "co_firing", cosine_threshold=0.5, co_firing_threshold=thr, block_size_max=4
    )
    cd = build_clustered_dictionary("C", feats, x, MPSRung1(), bf, activation_traces=fires)
    assert [list(cd.block_view(b).indices) for b in range(cd.n_blocks)] == oracle_bfs(n, pairs, 4)
    assert cd.n_cross_block_edges == 0


def _snapshot(cd: Any) -> list[bytes]:
    a = cd.cross_block_edge_arrays()
    g = cd.gram()
    return [
        cd.block_order.tobytes(),
        cd.block_of.tobytes(),
        *(v.tobytes() for v in a.values()),
        *(m.tobytes() for m in g.block_grams),
    ]


def test_results_are_identical_across_thread_counts() -> None:
    # > 64 row blocks and > 1 column tile, with many edges
    rng = np.random.default_rng(5)
    n, d = 2600, 24
    centres = rng.standard_normal((n // 8, d))
    x = (np.repeat(centres, 8, axis=0) + 0.4 * rng.standard_normal((n, d))).astype(np.float32)
    feats = [Feature(f"g{i}", f"c{i % 5}", 0.1 * (i % 7), phi=0.2 * (i % 3)) for i in range(n)]
    bf = BlockFormation("cosine", cosine_threshold=0.3)
    table = np.array([MPSRung1().row(f) for f in feats])
    before = _core.num_threads()
    snaps, tiers = [], []
    try:
        for threads in (1, 2, 3):
            _core.set_num_threads(threads)
            cd = build_clustered_dictionary("T", feats, x, MPSRung1(), bf)
            snaps.append(_snapshot(cd))
            out = _core.cluster_blocks(
                x, 0.3, 10**8, 8, "cosine", encoder=MPSRung1().encoder, table=table
            )
            tiers.append((out["tier"], out["max_c32"], out["n_edges"]))
    finally:
        _core.set_num_threads(before)
    assert snaps[0] == snaps[1] == snaps[2]
    assert tiers[0] == tiers[1] == tiers[2]
    assert cd.n_cross_block_edges > 1000


def test_streamed_tier_statistics_match_numpy() -> None:
    rng = np.random.default_rng(9)
    n = 300
    x = rng.standard_normal((n, 12))
    feats = features(n, rng)
    enc = Rung3()
    table = np.array([enc.row(f) for f in feats])
    out = _core.cluster_blocks(x, 0.3, 10**8, 16, "cosine", encoder=enc.encoder, table=table)
    states = enc.encoder.states(table)
    g2 = np.abs(states.conj() @ states.T) ** 2
    c2 = dense_cos(x.astype(np.float32).astype(np.float64)) ** 2
    iu = np.triu_indices(n, 1)
    want = np.corrcoef(c2[iu], g2[iu])[0, 1]
    n_pairs, pearson = out["tier"]
    assert n_pairs == n * (n - 1) // 2
    assert abs(pearson - want) < 1e-6
    assert abs(out["max_c32"] - dense_cos(x)[iu].max()) < 1e-6


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=12))
def test_joined_slugs_equal_one_slug_per_name(names: list[str]) -> None:
    from polygram.clustered.catalog import _slugs
    from polygram.dictionary import slug

    assert _slugs(names) == [slug(n) for n in names]
