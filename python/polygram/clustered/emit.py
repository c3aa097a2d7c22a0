"""Per-block Q-Orca emission of a clustered dictionary (spec 17 §17.8): one
``<name>_b<b>.q.orca.md`` machine per block (04's writer, so each file
verifies with q-orca) and ``manifest.json`` tying blocks back to the
selection and listing the cross-block edges."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from polygram._io import atomic_write_text, ensure_dir
from polygram.clustered.formation import BlockFormation
from polygram.dictionary import Dictionary
from polygram.encoding import HEA_Rung2
from polygram.qorca.emit import _git_rev, write_qorca


class Emittable(Protocol):
    """What emission reads of a ``ClusteredDictionary`` (a protocol, so the
    dictionary module can call this one without an import circle)."""

    @property
    def name(self) -> str: ...
    @property
    def n_features(self) -> int: ...
    @property
    def n_blocks(self) -> int: ...
    @property
    def encoding(self) -> object: ...
    @property
    def block_formation(self) -> BlockFormation: ...
    @property
    def blocks(self) -> Sequence[Dictionary]: ...
    @property
    def feature_names(self) -> tuple[str, ...]: ...
    @property
    def feature_clusters(self) -> tuple[str, ...]: ...
    @property
    def block_of(self) -> np.ndarray: ...
    @property
    def block_order(self) -> np.ndarray: ...
    def cross_block_edge_arrays(self) -> dict[str, np.ndarray]: ...


__all__ = ["MANIFEST_SCHEMA_VERSION", "Emittable", "emit_qorca", "emittable", "manifest"]

MANIFEST_SCHEMA_VERSION = 1


def manifest(cd: Emittable) -> dict[str, Any]:
    """The manifest object (keys in spec order)."""
    ids = [f"{cd.name}_b{b}" for b in range(cd.n_blocks)]
    names, clusters = cd.feature_names, cd.feature_clusters
    sizes = np.bincount(cd.block_of, minlength=cd.n_blocks)
    blocks = []
    for b, idx in enumerate(np.split(cd.block_order, np.cumsum(sizes)[:-1])):
        members = idx.tolist()
        blocks.append(
            {
                "id": ids[b],
                "machine": f"{ids[b]}.q.orca.md",
                "features": [{"name": names[i], "cluster": clusters[i]} for i in members],
                "indices": members,
            }
        )
    arrays = cd.cross_block_edge_arrays()
    edges = [
        {"from": [ids[bi], names[ii]], "to": [ids[bj], names[ij]], "cosine": c}
        for bi, bj, ii, ij, c in zip(
            arrays["block_i"].tolist(),
            arrays["block_j"].tolist(),
            arrays["index_i"].tolist(),
            arrays["index_j"].tolist(),
            arrays["cosine"].tolist(),
        )
    ]
    bf = cd.block_formation
    return {
        "name": cd.name,
        "n_features": cd.n_features,
        "encoding": type(cd.encoding).__name__,
        "blocks": blocks,
        "cross_block_edges": edges,
        "block_formation": {
            "strategy": bf.strategy,
            "cosine_threshold": bf.cosine_threshold,
            "block_size_max": bf.block_size_max,
            "co_firing_threshold": bf.co_firing_threshold,
        },
        "schema_version": MANIFEST_SCHEMA_VERSION,
    }


def emittable(block: Dictionary) -> Dictionary:
    """The block as written: an HEA block whose clusters are all singletons
    has no intra-cluster pair, so its tier invariant is undefined (q-orca
    refuses it as ``HEA_TIER_UNDEFINED``) and is left out of that file."""
    enc = block.encoding
    if (
        isinstance(enc, HEA_Rung2)
        and enc.tier_separation_bound is not None
        and all(len(m) < 2 for m in block.hierarchy.values())
    ):
        return Dictionary(
            block.name,
            block.features,
            block.hierarchy,
            dataclasses.replace(enc, tier_separation_bound=None),
        )
    return block


def emit_qorca(cd: Emittable, output_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every block's machine, then ``manifest.json``; existing files are
    overwritten.  Returns ``{block id: path, …, "manifest": path}``."""
    base = Path(output_dir)
    ensure_dir(base)
    rev = _git_rev(base)  # once for all blocks, not once per file
    out: dict[str, Path] = {}
    for b, block in enumerate(cd.blocks):
        ident = f"{cd.name}_b{b}"
        path = base / f"{ident}.q.orca.md"
        write_qorca(emittable(block), path, git_rev=rev)
        out[ident] = path
    path = base / "manifest.json"
    # json.dumps escapes non-ASCII by default; no trailing newline, as in 0.15
    atomic_write_text(path, json.dumps(manifest(cd), indent=2))
    out["manifest"] = path
    return out
