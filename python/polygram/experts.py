"""Experts (spec 17 §17.10): the blocks of a clustered build used as a
mixture of small dictionaries, with activation routing in O(N) per vector.

``cluster_experts`` partitions a source's features by decoder cosine
(``method="cosine"``) or by co-firing on activation traces
(``"coactivation"``); ``ExpertDictionary.route`` ranks experts by the summed
activations of their members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np

from polygram import _core
from polygram.clustered import BlockFormation, ClusteredDictionary, build_clustered_dictionary
from polygram.clustered._checks import real_in
from polygram.dictionary import Dictionary, Feature
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3
from polygram.errors import ClusteringError

__all__ = ["METHODS", "ExpertDictionary", "cluster_experts"]

METHODS = ("cosine", "coactivation")
Source = Dictionary | ClusteredDictionary | Sequence[Feature]


def _source_names(source: Source) -> tuple[str, ...]:
    if isinstance(source, Dictionary | ClusteredDictionary):
        return tuple(source.feature_names)
    return tuple(f.name for f in source)


@dataclass(frozen=True, eq=False)
class ExpertDictionary:
    """Experts (``Dictionary`` objects) over a source's features.

    ``feature_to_expert[i]`` is the expert of the source's feature ``i``
    (selection order); ``clustered`` is the build behind it, if any."""

    experts: Sequence[Dictionary]
    source: Any
    feature_to_expert: np.ndarray
    _clustered: ClusteredDictionary | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        experts = self.experts
        if not isinstance(experts, Sequence) or isinstance(experts, str | bytes):
            raise ClusteringError(
                f"ExpertDictionary.experts: got {type(experts).__name__}; expected a sequence "
                "of Dictionary"
            )
        experts = tuple(experts)
        if not experts:
            raise ClusteringError("ExpertDictionary.experts: empty; give at least one expert")
        names = _source_names(self.source)
        f2e = np.array(self.feature_to_expert, dtype=np.int64)
        if f2e.ndim != 1 or len(f2e) != len(names):
            raise ClusteringError(
                f"ExpertDictionary.feature_to_expert: shape {f2e.shape}; expected "
                f"({len(names)},), one expert per source feature"
            )
        self._check_partition(experts, names, f2e)
        f2e.flags.writeable = False
        object.__setattr__(self, "experts", experts)
        object.__setattr__(self, "feature_to_expert", f2e)

    @classmethod
    def _of(cls, cd: ClusteredDictionary, source: Any) -> ExpertDictionary:
        """The blocks of a build as experts (trusted: a partition by construction;
        the blocks are made on access)."""
        self = cls.__new__(cls)
        for k, v in (
            ("experts", cd.blocks),
            ("source", source),
            ("feature_to_expert", cd.block_of),
            ("_clustered", cd),
        ):
            object.__setattr__(self, k, v)
        return self

    @staticmethod
    def _check_partition(
        experts: Sequence[Dictionary], names: tuple[str, ...], f2e: np.ndarray
    ) -> None:
        where: dict[str, int] = {}
        for e, d in enumerate(experts):
            if not isinstance(d, Dictionary):
                raise ClusteringError(
                    f"ExpertDictionary.experts[{e}]: got {type(d).__name__}; expected Dictionary"
                )
            if not len(d.features):
                raise ClusteringError(f"ExpertDictionary.experts[{e}]: has no features")
            for n in d.feature_names:
                if n in where:
                    raise ClusteringError(
                        f"ExpertDictionary.experts: feature {n!r} is in experts {where[n]} and {e}"
                    )
                where[n] = e
        if set(where) != set(names):
            missing = sorted(set(names) - set(where))[:5]
            extra = sorted(set(where) - set(names))[:5]
            raise ClusteringError(
                "ExpertDictionary.experts: not a partition of the source's features "
                f"(missing {missing}, unknown {extra})"
            )
        want = np.array([where[n] for n in names], dtype=np.int64)
        if not np.array_equal(want, f2e):
            k = int(np.flatnonzero(want != f2e)[0])
            raise ClusteringError(
                f"ExpertDictionary.feature_to_expert[{k}]: got {int(f2e[k])}; feature "
                f"{names[k]!r} is in expert {int(want[k])}"
            )

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    @property
    def n_features(self) -> int:
        return len(self.feature_to_expert)

    @property
    def clustered(self) -> ClusteredDictionary | None:
        return self._clustered

    def _top_k(self, top_k: object) -> int:
        n = self.n_experts
        if isinstance(top_k, bool) or not isinstance(top_k, Integral) or not 1 <= int(top_k) <= n:
            raise ClusteringError(f"top_k: got {top_k!r}; expected an int in [1, {n}]")
        return int(top_k)

    def _activations(self, activations: object, ndim: int) -> np.ndarray:
        shape = "(n_features,)" if ndim == 1 else "(T, n_features)"
        arr = np.asarray(activations)
        if arr.dtype.kind not in "iuf" or arr.ndim != ndim or arr.shape[-1] != self.n_features:
            raise ClusteringError(
                f"activations: got a {arr.dtype} array of shape {arr.shape}; expected a real "
                f"{shape} array with n_features = {self.n_features}"
            )
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ClusteringError(
                "activations: holds non-finite values; every value must be finite"
            )
        return arr

    def route(self, activations: object, top_k: int) -> list[int]:
        """The ``top_k`` experts by descending summed member activation (ties:
        lower index)."""
        k = self._top_k(top_k)
        a = self._activations(activations, 1)
        out = _core.route_batch(self.feature_to_expert, self.n_experts, a[None, :], k)
        return [int(v) for v in out[0]]

    def route_batch(self, activations: object, top_k: int) -> np.ndarray:
        """``route`` for every row of a ``(T, n_features)`` array: int64 ``(T, top_k)``."""
        k = self._top_k(top_k)
        a = self._activations(activations, 2)
        return _core.route_batch(self.feature_to_expert, self.n_experts, a, k)  # type: ignore[no-any-return]


def cluster_experts(
    source: Source,
    decoder_vectors: object = None,
    *,
    method: str = "cosine",
    coherence_threshold: float = 0.3,
    max_features_per_expert: int | None = None,
    activations: object = None,
    encoding: MPSRung1 | HEA_Rung2 | Rung3 | None = None,
    name: str | None = None,
) -> ExpertDictionary:
    """Group ``source``'s features into experts (blocks of a clustered build).

    ``source`` is a ``Dictionary``, a ``ClusteredDictionary`` (its decoder is
    used unless ``decoder_vectors`` is given) or a sequence of ``Feature``
    (``encoding`` defaults to ``MPSRung1()``)."""
    if isinstance(source, Dictionary | ClusteredDictionary):
        if encoding is not None:
            raise ClusteringError(
                f"encoding: given with a {type(source).__name__} source, which has its own "
                "encoding; pass encoding only with a sequence of Feature"
            )
        feats = list(source.features)
        enc = source.encoding
        base = source.name
    elif isinstance(source, Sequence) and not isinstance(source, str | bytes):
        feats = list(source)
        enc = MPSRung1() if encoding is None else encoding
        base = None
    else:
        raise ClusteringError(
            f"source: got {type(source).__name__}; expected a Dictionary, a ClusteredDictionary "
            "or a sequence of Feature"
        )
    if decoder_vectors is None:
        held = source.decoder if isinstance(source, ClusteredDictionary) else None
        if held is None:
            raise ClusteringError(
                "decoder_vectors: required (shape (n_features, d)) unless the source is a "
                "ClusteredDictionary that holds its decoder"
            )
        decoder_vectors = held
    if method not in METHODS:
        raise ClusteringError(f"method: got {method!r}; allowed {', '.join(METHODS)}")
    if method == "cosine":
        if activations is not None:
            raise ClusteringError(
                "activations: given with method 'cosine'; only 'coactivation' reads them"
            )
        t = real_in("coherence_threshold", coherence_threshold, 0.0, 1.0)
        bf = BlockFormation("cosine", cosine_threshold=t, block_size_max=max_features_per_expert)
    else:
        if activations is None:
            raise ClusteringError(
                "activations: method 'coactivation' needs a (T, n_features) activation trace"
            )
        t = real_in("coherence_threshold", coherence_threshold, 0.0, 1.0, lo_open=True)
        bf = BlockFormation(
            "co_firing", co_firing_threshold=t, block_size_max=max_features_per_expert
        )
    label = name if name is not None else (f"{base}_experts" if base else "Experts")
    cd = build_clustered_dictionary(
        label, feats, decoder_vectors, enc, bf, activation_traces=activations
    )
    return ExpertDictionary._of(cd, source)
