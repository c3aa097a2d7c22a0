"""Clustered dictionaries at SAE scale (spec 17): a whole selection held as
blocks of at most the encoding's capacity, per-block quantum Grams, sparse
cross-block decoder-cosine edges, the ranked cross-block redundancy list and
per-block Q-Orca emission.  The heavy parts are Rust kernels (``_core``).

``polygram.clustered`` is this module (spec 18 §6) and, called, the built-in
geometric profile factory ``polygram.geometry.clustered()`` that spec 15
exports under the same top-level name: ``polygram.clustered()`` still
returns a fresh ``clustered`` profile.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from polygram.clustered.build import build_clustered_dictionary
from polygram.clustered.dictionary import BlockView, ClusteredDictionary
from polygram.clustered.formation import BlockFormation
from polygram.clustered.gram import BlockSparseGram
from polygram.clustered.pairs import compute_cosine_pair_graph
from polygram.clustered.redundancy import CrossBlockRedundancyPair, CrossBlockRedundancyReport

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


class _ProfileFactoryModule(types.ModuleType):
    """This module, callable as the ``clustered`` geometric-profile factory."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from polygram.geometry import clustered as profile  # geometry imports the importer

        return profile(*args, **kwargs)


sys.modules[__name__].__class__ = _ProfileFactoryModule
