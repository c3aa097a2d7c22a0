"""Import-compatible home of polygram 0.15's clustered-dictionary names;
everything lives in :mod:`polygram.clustered`."""

from __future__ import annotations

from polygram.clustered import (
    BlockFormation,
    BlockSparseGram,
    BlockView,
    ClusteredDictionary,
    CrossBlockRedundancyPair,
    CrossBlockRedundancyReport,
    build_clustered_dictionary,
    compute_cosine_pair_graph,
)

__all__ = [
    "BlockFormation",
    "BlockSparseGram",
    "BlockView",
    "ClusteredDictionary",
    "CrossBlockRedundancyPair",
    "CrossBlockRedundancyReport",
    "build_clustered_dictionary",
    "compute_cosine_pair_graph",
]
