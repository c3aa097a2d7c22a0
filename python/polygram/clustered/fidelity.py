"""Fidelity of a clustered dictionary where its quantum Gram is used: pooled
over every intra-block pair (spec 17 §17.9.3, spec 18 §5), never over N².

The pairs are ``x < y`` of each block, blocks in order, row-major inside a
block; ``a`` is the float64 decoder cosine (c64) and ``b = |G_xy|²`` from the
block Gram."""

from __future__ import annotations

import math

import numpy as np

from polygram import _core
from polygram.clustered.dictionary import ClusteredDictionary

__all__ = ["block_rank_recall", "block_tier_preservation", "intra_block_pairs"]


def intra_block_pairs(cd: ClusteredDictionary) -> tuple[np.ndarray, np.ndarray]:
    """``(c64, |G|²)`` of every intra-block pair, in pooled order."""
    if cd.decoder is None:
        raise ValueError("intra-block fidelity needs the decoder rows (a built dictionary)")
    grams = cd.gram().block_grams
    sizes = np.array([g.shape[0] for g in grams], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    order = cd.block_order
    parts_i, parts_j, parts_g, parts_b = [], [], [], []
    for k in np.unique(sizes[sizes >= 2]).tolist():
        blocks = np.flatnonzero(sizes == k)
        u, v = np.triu_indices(k, 1)
        members = order[starts[blocks][:, None] + np.arange(k)]  # (n_blocks_k, k)
        stack = np.stack([grams[b] for b in blocks.tolist()])  # (n_blocks_k, k, k)
        parts_i.append(members[:, u].ravel())
        parts_j.append(members[:, v].ravel())
        parts_g.append(stack[:, u, v].ravel())
        parts_b.append(np.repeat(blocks, len(u)))
    if not parts_i:
        return np.zeros(0), np.zeros(0)
    pooled = np.argsort(np.concatenate(parts_b), kind="stable")  # blocks in order
    i = np.concatenate(parts_i)[pooled]
    j = np.concatenate(parts_j)[pooled]
    g = np.concatenate(parts_g)[pooled]
    cos = _core.edge_cosines(cd.decoder, i, j)
    return cos, (g.real**2 + g.imag**2)


def block_tier_preservation(cd: ClusteredDictionary) -> float | None:
    """Pearson(c64², |G|²) pooled over the intra-block pairs (two-pass float64);
    ``None`` without such a pair, NaN when either side has no spread."""
    cos, g2 = intra_block_pairs(cd)
    if not len(cos):
        return None
    a, b = cos * cos, g2
    if a.std() < 1e-12 or b.std() < 1e-12:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / math.sqrt(float(a @ a) * float(b @ b)))


def block_rank_recall(cd: ClusteredDictionary) -> float | None:
    """Rank-recall@k (spec 15 §2.4) pooled over the intra-block pairs: the
    share of the k most-aligned pairs by |c64| that are also among the k
    largest |G|², k = max(3, ⌊pairs/2⌋); ``None`` for fewer than k + 1 pairs.
    Ties rank the earlier pooled pair first."""
    cos, g2 = intra_block_pairs(cd)
    n_pairs = len(cos)
    k = max(3, n_pairs // 2)
    if n_pairs < k + 1:
        return None
    top_a = np.argsort(-np.abs(cos), kind="stable")[:k]
    top_b = np.argsort(-g2, kind="stable")[:k]
    return len(set(top_a.tolist()) & set(top_b.tolist())) / k
