"""``ClusteredDictionary`` and ``BlockView`` (spec 17 §17.4–§17.5): a whole
SAE selection held as columns — feature catalogue, decoder rows, block
membership and canonical cross-block edges — with each block a
``Dictionary`` of at most the encoding's capacity, built on access."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from polygram import _core
from polygram._budget import check_result_bytes
from polygram.clustered._checks import check_name
from polygram.clustered.catalog import AnyEncoding, FeatureCatalog, FeatureView
from polygram.clustered.edges import EdgeKey, EdgeMap, Layout, finite_real, frozen
from polygram.clustered.emit import emit_qorca
from polygram.clustered.formation import BlockFormation
from polygram.clustered.gram import BlockSparseGram
from polygram.clustered.redundancy import CrossBlockRedundancyReport, rank_pairs
from polygram.dictionary import Dictionary, Feature
from polygram.errors import ClusteringError, UnknownFeatureError

__all__ = ["BlockView", "ClusteredDictionary"]


@dataclass(frozen=True)
class BlockView:
    """One block as plain data: selection ``indices`` (block order), the
    block's decoder rows (read-only copy, or None), names and clusters.
    Equality and hashing ignore ``decoder_slice``."""

    indices: tuple[int, ...]
    decoder_slice: np.ndarray | None = field(compare=False, hash=False, repr=False)
    encoding: AnyEncoding
    feature_names: tuple[str, ...]
    feature_clusters: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return len(self.indices)


def _index(b: object, n: int, what: str) -> int:
    if isinstance(b, bool) or not isinstance(b, int | np.integer):
        raise TypeError(f"{what} index must be an int, got {type(b).__name__}")
    k = int(b)
    k = k + n if k < 0 else k
    if not 0 <= k < n:
        raise IndexError(f"{what} {b} out of range for {n} {what}s")
    return k


def _keys(layout: Layout, p: np.ndarray, q: np.ndarray) -> list[EdgeKey]:
    bi, fi, bj, fj = layout.keys(p, q)
    return list(zip(bi.tolist(), fi.tolist(), bj.tolist(), fj.tolist()))


class _Blocks(Sequence[Dictionary]):
    """Read-only sequence of the blocks, each made when accessed."""

    __slots__ = ("_cd",)

    def __init__(self, cd: ClusteredDictionary) -> None:
        self._cd = cd

    def __len__(self) -> int:
        return self._cd.n_blocks

    @overload
    def __getitem__(self, b: int) -> Dictionary: ...
    @overload
    def __getitem__(self, b: slice) -> list[Dictionary]: ...
    def __getitem__(self, b: int | slice) -> Dictionary | list[Dictionary]:
        if isinstance(b, slice):
            return [self._cd._block(k) for k in range(*b.indices(len(self)))]
        return self._cd._block(_index(b, len(self), "block"))

    def __iter__(self) -> Iterator[Dictionary]:
        return (self._cd._block(k) for k in range(len(self)))

    def __repr__(self) -> str:
        return f"<{len(self)} blocks of {self._cd.name!r}>"


class ClusteredDictionary:
    """A selection of N features partitioned into blocks of at most ``cap``.

    Build with :func:`polygram.build_clustered_dictionary` or
    ``from_sae_lens(..., clustered=True)``; direct construction from block
    ``Dictionary`` objects keeps 0.15's checks.  Equality is identity."""

    __slots__ = (
        "_block_of",
        "_catalog",
        "_cos",
        "_decoder",
        "_edges_tuple",
        "_formation",
        "_given",
        "_gram",
        "_layout",
        "_local",
        "_members",
        "_name",
        "_p",
        "_q",
        "_topology",
    )

    _name: str
    _catalog: FeatureCatalog
    _decoder: np.ndarray | None
    _formation: BlockFormation
    _topology: Any
    _members: np.ndarray
    _layout: Layout
    _block_of: np.ndarray
    _local: np.ndarray
    _p: np.ndarray
    _q: np.ndarray
    _cos: np.ndarray
    _given: tuple[Dictionary, ...] | None
    _gram: BlockSparseGram | None
    _edges_tuple: tuple[tuple[EdgeKey, float], ...] | None

    def __init__(
        self,
        name: str,
        blocks: Sequence[Dictionary],
        cross_block_pairs: Mapping[EdgeKey, float] | None = None,
        block_topology: Any = None,
        block_formation: BlockFormation | None = None,
    ) -> None:
        check_name("ClusteredDictionary", name)
        if isinstance(blocks, Dictionary | str | bytes | Mapping):
            raise ClusteringError(
                f"ClusteredDictionary.blocks: got {type(blocks).__name__}; expected a "
                "non-empty sequence of Dictionary"
            )
        try:
            given = tuple(blocks)
        except TypeError:
            raise ClusteringError(
                f"ClusteredDictionary.blocks: got {type(blocks).__name__}; expected a "
                "non-empty sequence of Dictionary"
            ) from None
        if not given:
            raise ClusteringError("ClusteredDictionary.blocks: empty; give at least one block")
        for b, d in enumerate(given):
            if not isinstance(d, Dictionary):
                raise ClusteringError(
                    f"ClusteredDictionary.blocks[{b}]: got {type(d).__name__}; expected Dictionary"
                )
        enc = given[0].encoding
        for b, d in enumerate(given):
            if type(d.encoding) is not type(enc) or d.encoding != enc:
                raise ClusteringError(
                    f"ClusteredDictionary.blocks[{b}]: encoding {d.encoding!r} differs from "
                    f"block 0's {enc!r}; all blocks share one encoding"
                )
        feats: list[Feature] = [f for d in given for f in d.features]
        seen: set[str] = set()
        for f in feats:
            if f.name in seen:
                raise ClusteringError(
                    f"ClusteredDictionary.blocks: feature name {f.name!r} appears in more than "
                    "one place; names must be unique across blocks"
                )
            seen.add(f.name)
        if block_formation is None:
            block_formation = BlockFormation("user_declared")
        elif not isinstance(block_formation, BlockFormation):
            raise ClusteringError(
                f"ClusteredDictionary.block_formation: got {type(block_formation).__name__}; "
                "expected BlockFormation or None"
            )
        layout = Layout(np.array([len(d.features) for d in given], dtype=np.int64))
        owner = "ClusteredDictionary.cross_block_pairs"
        pairs = {} if cross_block_pairs is None else cross_block_pairs
        p, q, _ = layout.parse(pairs, owner)
        checked = {k: finite_real(owner, k, v) for k, v in pairs.items()}
        cos = np.array([checked[k] for k in _keys(layout, p, q)], dtype=np.float64)
        n = len(feats)
        members = np.arange(n, dtype=np.int64)
        block_of = np.repeat(np.arange(layout.n_blocks, dtype=np.int64), layout.sizes)
        self._init(
            name,
            FeatureCatalog.from_features(feats, enc, check=False),
            None,
            block_formation,
            block_topology,
            members,
            layout,
            block_of,
            members - layout.starts[block_of],
            p,
            q,
            cos,
            given,
        )

    def _init(
        self,
        name: str,
        catalog: FeatureCatalog,
        decoder: np.ndarray | None,
        formation: BlockFormation,
        topology: Any,
        members: np.ndarray,
        layout: Layout,
        block_of: np.ndarray,
        local: np.ndarray,
        p: np.ndarray,
        q: np.ndarray,
        cos: np.ndarray,
        given: tuple[Dictionary, ...] | None,
    ) -> None:
        put = object.__setattr__
        put(self, "_name", name)
        put(self, "_catalog", catalog)
        put(self, "_decoder", None if decoder is None else frozen(decoder))
        put(self, "_formation", formation)
        put(self, "_topology", topology)
        put(self, "_members", frozen(members))
        put(self, "_layout", layout)
        put(self, "_block_of", frozen(block_of))
        put(self, "_local", frozen(local))
        put(self, "_p", frozen(p))
        put(self, "_q", frozen(q))
        put(self, "_cos", frozen(cos))
        put(self, "_given", given)
        put(self, "_gram", None)
        put(self, "_edges_tuple", None)

    @classmethod
    def _assemble(
        cls,
        name: str,
        catalog: FeatureCatalog,
        decoder: np.ndarray | None,
        formation: BlockFormation,
        built: Mapping[str, Any],
    ) -> ClusteredDictionary:
        """From the arrays of ``_core.cluster_blocks`` (trusted)."""
        self = cls.__new__(cls)
        offsets = built["offsets"]
        self._init(
            name,
            catalog,
            decoder,
            formation,
            None,
            built["members"],
            Layout(np.diff(offsets)),
            built["block_of"],
            built["local"],
            built["cross_p"],
            built["cross_q"],
            built["cosine"],
            None,
        )
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ClusteredDictionary is immutable (cannot set {name!r})")

    def __reduce__(self) -> Any:
        raise TypeError("ClusteredDictionary does not pickle; emit it with emit_qorca()")

    # ------------------------------------------------------------ plain data
    @property
    def name(self) -> str:
        return self._name

    @property
    def block_formation(self) -> BlockFormation:
        return self._formation

    @property
    def block_topology(self) -> Any:
        return self._topology

    @property
    def encoding(self) -> AnyEncoding:
        return self._catalog.encoding

    @property
    def n_features(self) -> int:
        return len(self._catalog)

    @property
    def n_blocks(self) -> int:
        return self._layout.n_blocks

    @property
    def n_cross_block_edges(self) -> int:
        return len(self._p)

    @property
    def mean_block_size(self) -> float:
        return self.n_features / self.n_blocks

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._catalog.names

    @property
    def feature_clusters(self) -> tuple[str, ...]:
        """Each feature's cluster, selection order."""
        return self._catalog.clusters

    @property
    def features(self) -> Sequence[Feature]:
        return FeatureView(self._catalog)

    @property
    def block_of(self) -> np.ndarray:
        return self._block_of

    @property
    def local_index(self) -> np.ndarray:
        return self._local

    @property
    def block_order(self) -> np.ndarray:
        """Selection index at each global position (the blocks concatenated)."""
        return self._members

    @property
    def decoder(self) -> np.ndarray | None:
        return self._decoder

    def locate(self, name: str) -> tuple[int, int]:
        """``(block, local index)`` of a feature."""
        try:
            i = self._catalog.index_of()[name]
        except (KeyError, TypeError):
            raise UnknownFeatureError(
                f"unknown feature {name!r}; this clustered dictionary has {self.n_features} "
                f"features ({', '.join(self.feature_names[:5])}"
                f"{', …' if self.n_features > 5 else ''})"
            ) from None
        return int(self._block_of[i]), int(self._local[i])

    # ----------------------------------------------------------------- blocks
    def _indices(self, b: int) -> np.ndarray:
        s = self._layout.starts
        return self._members[int(s[b]) : int(s[b + 1])]

    def _block(self, b: int) -> Dictionary:
        if self._given is not None:
            return self._given[b]
        return self._catalog.dictionary(f"{self._name}_b{b}", self._indices(b).tolist())

    @property
    def blocks(self) -> Sequence[Dictionary]:
        return _Blocks(self)

    def block(self, b: int) -> Dictionary:
        return self._block(_index(b, self.n_blocks, "block"))

    def block_view(self, b: int) -> BlockView:
        k = _index(b, self.n_blocks, "block")
        idx = self._indices(k)
        rows = None
        if self._decoder is not None:
            rows = frozen(self._decoder[idx].copy())
        names, clusters = self._catalog.names, self._catalog.clusters
        ids = tuple(idx.tolist())
        return BlockView(
            ids,
            rows,
            self.encoding,
            tuple(names[i] for i in ids),
            tuple(clusters[i] for i in ids),
        )

    @property
    def block_views(self) -> tuple[BlockView, ...]:
        """Every block's view (built on each access: the decoder slices are copies)."""
        return tuple(self.block_view(b) for b in range(self.n_blocks))

    # ------------------------------------------------------------ cross edges
    @property
    def cross_block_pairs(self) -> Mapping[EdgeKey, float]:
        return EdgeMap(self._layout, self._p, self._q, self._cos, float)

    @property
    def cross_block_edges_tuple(self) -> tuple[tuple[EdgeKey, float], ...]:
        if self._edges_tuple is None:
            pairs = self.cross_block_pairs
            object.__setattr__(self, "_edges_tuple", tuple(zip(pairs, self._cos.tolist())))
        assert self._edges_tuple is not None
        return self._edges_tuple

    def cross_block_edge_arrays(self) -> dict[str, np.ndarray]:
        """Read-only canonical columns: ``block_i``, ``feat_i``, ``block_j``,
        ``feat_j``, ``index_i``, ``index_j`` (int64) and ``cosine`` (float64)."""
        bi, fi, bj, fj = self._layout.keys(self._p, self._q)
        cols = {
            "block_i": bi,
            "feat_i": fi,
            "block_j": bj,
            "feat_j": fj,
            "index_i": self._members[self._p],
            "index_j": self._members[self._q],
        }
        out = {k: frozen(np.asarray(v, dtype=np.int64)) for k, v in cols.items()}
        out["cosine"] = self._cos
        return out

    # --------------------------------------------------------------- results
    def gram(self) -> BlockSparseGram:
        """Block Grams (all blocks in one Rust call) and the cross-block cosines."""
        if self._gram is None:
            sizes = self._layout.sizes
            check_result_bytes(
                int((sizes**2).sum()) * 16,
                f"the block Grams of {self._name!r}",
                remedy="use smaller blocks (block_size_max)",
            )
            flat, starts = _core.block_grams(
                self.encoding.encoder,
                self._catalog.table,
                self._members,
                self._layout.starts,
            )
            frozen(flat)
            grams = tuple(
                flat[int(a) : int(b)].reshape(int(k), int(k))
                for a, b, k in zip(starts[:-1], starts[1:], sizes)
            )
            object.__setattr__(
                self,
                "_gram",
                BlockSparseGram._from_columns(grams, self._layout, self._p, self._q, self._cos),
            )
        assert self._gram is not None
        return self._gram

    def cross_block_redundant_pairs(self, threshold: float = 0.7) -> CrossBlockRedundancyReport:
        """Cross-block edges with ``cosine >= threshold``, by descending cosine
        (ties by key).  Edges exist only at or above the build's
        ``cosine_threshold``, so that is the effective floor."""
        a = self.cross_block_edge_arrays()
        return rank_pairs(
            threshold,
            a["block_i"],
            a["block_j"],
            a["index_i"],
            a["index_j"],
            self._cos,
            self._catalog.names,
        )

    def emit_qorca(self, output_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """One ``.q.orca.md`` per block plus ``manifest.json`` (spec 17 §17.8)."""
        return emit_qorca(self, output_dir)

    def __repr__(self) -> str:
        return (
            f"ClusteredDictionary({self._name!r}, {self.n_features} features in "
            f"{self.n_blocks} blocks, {self.n_cross_block_edges} cross-block edges, "
            f"encoding={self.encoding!r})"
        )
