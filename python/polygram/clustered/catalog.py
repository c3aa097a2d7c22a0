"""The N features of a clustered dictionary as columns, in selection order:
names, clusters and the encoding's knob table, with ``Feature`` objects made
only when a block or a caller asks for them.

The dictionary rules of spec 02 (duplicate names, a name that is also a
cluster, emitted-name collisions, HEA θ shape) are checked here once over the
whole selection, in O(N) (spec 17 §17.3 step 4).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

from polygram.dictionary import Dictionary, Feature, slug
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3
from polygram.errors import DictionaryError

__all__ = ["KNOB_COLUMNS", "FeatureCatalog", "FeatureView"]

AnyEncoding = MPSRung1 | HEA_Rung2 | Rung3
#: Knob columns of :meth:`FeatureCatalog.from_knobs`, in ``Feature`` field order.
KNOB_COLUMNS = ("beta", "alpha", "gamma", "phi", "theta_amp", "psi_aux")


def _check_rules(names: Sequence[str], clusters: Sequence[str]) -> None:
    seen: set[str] = set()
    dups: list[str] = []
    for n in names:
        if n in seen:
            dups.append(n)
        seen.add(n)
    if dups:
        shown = sorted(set(dups))
        raise DictionaryError(
            f"features: duplicate feature names {shown[:5]}"
            + (f" (+{len(shown) - 5} more)" if len(shown) > 5 else "")
        )
    both = sorted(seen & set(clusters))
    if both:
        raise DictionaryError(
            f"features: {both[:5]} used both as feature and cluster names; "
            "knob paths '<id>.phi' need them distinct"
        )
    slugs: dict[str, str] = {}
    for n, s in zip(names, _slugs(names)):
        if s and s in slugs:
            raise DictionaryError(f"features: {slugs[s]!r} and {n!r} share the emitted name {s!r}")
        slugs[s] = n


_SEP = "\x00"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9\x00]+")


def _slugs(names: Sequence[str]) -> list[str]:
    """``slug`` of every name with one regex pass over the joined names (a
    name holding the separator falls back to one call per name)."""
    joined = _SEP.join(names)
    if joined.count(_SEP) != len(names) - 1:
        return [slug(n) for n in names]
    return [p.strip("_") for p in _NOT_ALNUM.sub("_", joined).lower().split(_SEP)]


class FeatureCatalog:
    """Columns of N features: ``names``, ``clusters`` and the knob ``table``
    (``N × encoding.width``, read-only)."""

    __slots__ = ("_features", "_index", "_knobs", "clusters", "encoding", "names", "table")

    names: tuple[str, ...]
    clusters: tuple[str, ...]
    table: np.ndarray
    encoding: AnyEncoding

    def __init__(
        self,
        names: tuple[str, ...],
        clusters: tuple[str, ...],
        table: np.ndarray,
        encoding: AnyEncoding,
        features: tuple[Feature, ...] | None,
        knobs: np.ndarray | None,
    ) -> None:
        self.names, self.clusters, self.encoding = names, clusters, encoding
        table.flags.writeable = False
        self.table = table
        self._features = features
        self._knobs = knobs
        self._index: dict[str, int] | None = None

    @classmethod
    def from_features(
        cls, features: Sequence[Feature], encoding: AnyEncoding, *, check: bool = True
    ) -> FeatureCatalog:
        """From ``Feature`` objects (kept as given; blocks hold these objects).
        ``check=False`` skips the whole-selection rules (blocks checked their own)."""
        feats = tuple(features)
        names = tuple(f.name for f in feats)
        clusters = tuple(f.cluster for f in feats)
        if check:
            _check_rules(names, clusters)
        if isinstance(encoding, HEA_Rung2):
            for f in feats:
                if f.theta is not None and f.theta.shape != encoding.theta_shape:
                    raise DictionaryError(
                        f"Feature {f.name!r}: theta shape {f.theta.shape} != encoding "
                        f"theta_shape {encoding.theta_shape}"
                    )
        table = np.array([encoding.row(f) for f in feats], dtype=np.float64)
        table = table.reshape(len(feats), encoding.width)
        return cls(names, clusters, table, encoding, feats, None)

    @classmethod
    def from_knobs(
        cls,
        names: Sequence[str],
        clusters: Sequence[str],
        knobs: np.ndarray,
        encoding: AnyEncoding,
    ) -> FeatureCatalog:
        """From knob columns (``N × 6`` in :data:`KNOB_COLUMNS` order); ``Feature``
        objects are made on access."""
        names, clusters = tuple(names), tuple(clusters)
        _check_rules(names, clusters)
        knobs = np.array(knobs, dtype=np.float64)
        if knobs.shape != (len(names), len(KNOB_COLUMNS)) or not np.isfinite(knobs).all():
            raise DictionaryError(
                f"knobs: shape {knobs.shape}; expected finite ({len(names)}, {len(KNOB_COLUMNS)})"
            )
        knobs.flags.writeable = False
        beta, alpha, gamma, phi, theta_amp, psi_aux = knobs.T
        if isinstance(encoding, MPSRung1):
            table = np.stack([alpha, beta, gamma, phi], axis=1)
        elif isinstance(encoding, Rung3):
            table = np.stack([alpha, beta, gamma, phi, theta_amp, psi_aux], axis=1)
        else:
            cat = cls(names, clusters, np.zeros((len(names), 0)), encoding, None, knobs)
            table = np.array([encoding.row(cat.feature(i)) for i in range(len(names))])
            table = table.reshape(len(names), encoding.width)
        return cls(names, clusters, np.ascontiguousarray(table), encoding, None, knobs)

    def __len__(self) -> int:
        return len(self.names)

    def feature(self, i: int) -> Feature:
        if self._features is not None:
            return self._features[i]
        assert self._knobs is not None
        beta, alpha, gamma, phi, theta_amp, psi_aux = (float(v) for v in self._knobs[i])
        return Feature(
            self.names[i],
            self.clusters[i],
            beta,
            alpha=alpha,
            gamma=gamma,
            phi=phi,
            theta_amp=theta_amp,
            psi_aux=psi_aux,
        )

    def index_of(self) -> dict[str, int]:
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.names)}
        return self._index

    def dictionary(self, name: str, indices: Sequence[int]) -> Dictionary:
        """The ``Dictionary`` of ``indices`` (block order); its hierarchy keys
        are the members' clusters in order of first appearance (spec 17 §17.3.5)."""
        feats = [self.feature(int(i)) for i in indices]
        hierarchy: dict[str, list[str]] = {}
        for f in feats:
            hierarchy.setdefault(f.cluster, []).append(f.name)
        return Dictionary(name, feats, hierarchy, self.encoding)


class FeatureView(Sequence[Feature]):
    """Read-only sequence of a catalogue's ``Feature`` objects (selection order)."""

    __slots__ = ("_cat",)

    def __init__(self, catalog: FeatureCatalog) -> None:
        self._cat = catalog

    def __len__(self) -> int:
        return len(self._cat)

    @overload
    def __getitem__(self, i: int) -> Feature: ...
    @overload
    def __getitem__(self, i: slice) -> list[Feature]: ...
    def __getitem__(self, i: int | slice) -> Feature | list[Feature]:
        n = len(self._cat)
        if isinstance(i, slice):
            return [self._cat.feature(k) for k in range(*i.indices(n))]
        k = i + n if i < 0 else i
        if not 0 <= k < n:
            raise IndexError(f"feature index {i} out of range for {n} features")
        return self._cat.feature(k)

    def __iter__(self) -> Iterator[Feature]:
        return (self._cat.feature(k) for k in range(len(self._cat)))

    def __repr__(self) -> str:
        return f"<{len(self)} features>"
