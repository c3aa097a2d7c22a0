"""Dictionary: the immutable value object every experiment reads (``Feature``,
re-exported here, lives in ``polygram.feature``).

A Dictionary packs its features once into a knob table (``n_features ×
encoding.width``) so every Gram, sweep or grid scan is one call into the Rust
core.  Derived dictionaries (``with_knob``) are new objects, validated again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from polygram import _core
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3
from polygram.errors import CapacityError, DictionaryError, KnobError, UnknownFeatureError
from polygram.feature import Feature, finite_knob
from polygram.knobs import KnobPath, parse_knob

__all__ = ["Dictionary", "Feature", "FrozenList", "slug"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


class FrozenList(list):  # type: ignore[type-arg]
    """A read-only list: ``Dictionary.features`` and the hierarchy member lists.

    It compares equal to a plain list (spec 02 §2.2 types them as lists) and
    ``+`` gives a plain list, but in-place changes are refused: the knob table
    is packed once at construction, so the data must not drift from it."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError(
            "Dictionary.features and hierarchy lists are read-only; "
            "derive a new Dictionary (with_knob, dataclasses.replace) instead"
        )

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = _refuse
    __iadd__ = __imul__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[list[object]]]:
        return (FrozenList, (list(self),))


def slug(name: str) -> str:
    """Name as it appears in emitted files: non-alphanumeric runs → ``_``, lower case."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


@dataclass(frozen=True, eq=False)
class Dictionary:
    """An ordered set of features, a one-level hierarchy (cluster → member
    names) and an encoding.  Feature order is the Gram's row order."""

    name: str
    features: Sequence[Feature]
    hierarchy: Mapping[str, Sequence[str]]
    encoding: MPSRung1 | HEA_Rung2 | Rung3 = MPSRung1()
    # Derived once in __post_init__ (never passed by callers).
    _table: np.ndarray = field(init=False, repr=False)
    _index: dict[str, int] = field(init=False, repr=False)
    _cluster_ids: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.features, str | bytes | Mapping) or not isinstance(
            self.features, Iterable
        ):
            raise DictionaryError(
                f"Dictionary.features: got {type(self.features).__name__}; "
                "expected a list of Feature objects"
            )
        features = tuple(self.features)
        if not isinstance(self.hierarchy, Mapping):
            raise DictionaryError(
                f"Dictionary.hierarchy: got {type(self.hierarchy).__name__}; "
                "expected a mapping cluster → list of feature names"
            )
        hierarchy: dict[str, tuple[str, ...]] = {}
        for k, v in self.hierarchy.items():
            if isinstance(v, str | bytes) or not isinstance(v, Iterable):
                raise DictionaryError(
                    f"Dictionary.hierarchy[{k!r}]: got {v!r}; expected a list of feature names"
                )
            hierarchy[str(k)] = tuple(v)
        object.__setattr__(self, "features", FrozenList(features))
        object.__setattr__(self, "hierarchy", {k: FrozenList(v) for k, v in hierarchy.items()})
        self._validate(features, hierarchy)
        enc = self.encoding
        table = np.array([enc.row(f) for f in features], dtype=np.float64)
        table.flags.writeable = False
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_index", {f.name: i for i, f in enumerate(features)})
        clusters = list(hierarchy)
        object.__setattr__(self, "_cluster_ids", [clusters.index(f.cluster) for f in features])

    def _validate(
        self, features: tuple[Feature, ...], hierarchy: dict[str, tuple[str, ...]]
    ) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise DictionaryError(
                f"Dictionary.name: got {self.name!r}; must match [A-Za-z_][A-Za-z0-9_]*"
            )
        if not isinstance(self.encoding, MPSRung1 | HEA_Rung2 | Rung3):
            raise DictionaryError(
                f"Dictionary.encoding: got {self.encoding!r}; expected MPSRung1, HEA_Rung2 or Rung3"
            )
        if not features:
            raise DictionaryError(f"Dictionary {self.name!r}: has no features; give at least one")
        for f in features:
            if not isinstance(f, Feature):
                raise DictionaryError(f"Dictionary.features: got {f!r}; expected Feature objects")
        names = [f.name for f in features]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise DictionaryError(f"Dictionary.features: duplicate feature names {dups}")
        both = sorted(set(names) & set(hierarchy))
        if both:
            raise DictionaryError(
                f"Dictionary: {both} used both as feature and cluster names; "
                "knob paths '<id>.phi' need them distinct"
            )
        owner: dict[str, str] = {}
        for cluster, members in hierarchy.items():
            for m in members:
                if m in owner and owner[m] != cluster:
                    raise DictionaryError(
                        f"Dictionary.hierarchy: feature {m!r} listed under both "
                        f"{owner[m]!r} and {cluster!r}"
                    )
                owner[m] = cluster
        for f in features:
            if f.cluster not in hierarchy:
                raise DictionaryError(
                    f"Feature {f.name!r}: cluster {f.cluster!r} is not a hierarchy key "
                    f"(keys: {list(hierarchy)})"
                )
            if f.name not in hierarchy[f.cluster]:
                raise DictionaryError(
                    f"Feature {f.name!r}: not listed under its cluster {f.cluster!r} "
                    "in the hierarchy"
                )
        known = set(names)
        for cluster, members in hierarchy.items():
            unknown = [m for m in members if m not in known]
            if unknown:
                raise DictionaryError(
                    f"Dictionary.hierarchy[{cluster!r}]: unknown feature(s) {unknown}"
                )
        enc = self.encoding
        if isinstance(enc, HEA_Rung2):
            for f in features:
                if f.theta is not None and f.theta.shape != enc.theta_shape:
                    raise DictionaryError(
                        f"Feature {f.name!r}: theta shape {f.theta.shape} != encoding "
                        f"theta_shape {enc.theta_shape}"
                    )
        if len(features) > enc.max_features:
            raise CapacityError(
                f"Dictionary {self.name!r}: {len(features)} features exceed the capacity of "
                f"{type(enc).__name__} ({enc.max_features} linearly independent states); "
                "select fewer features or use a larger encoding (Rung3 holds 16, "
                "HEA_Rung2 2**n_qubits)"
            )
        slugs: dict[str, str] = {}
        for n in names:
            s = slug(n)
            if s and s in slugs:
                raise DictionaryError(
                    f"Dictionary.features: {slugs[s]!r} and {n!r} share the emitted name {s!r}"
                )
            slugs[s] = n

    # ----------------------------------------------------------------- lookup
    def __len__(self) -> int:
        return len(self.features)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature_index(self, name: str) -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise UnknownFeatureError(
                f"unknown feature {name!r}; features: {self.feature_names}"
            ) from None

    def feature(self, name: str) -> Feature:
        return self.features[self.feature_index(name)]

    @property
    def knob_table(self) -> np.ndarray:
        """Read-only ``n_features × encoding.width`` table the Rust core reads."""
        return self._table

    @property
    def cluster_ids(self) -> list[int]:
        """Cluster index (hierarchy key order) of every feature."""
        return list(self._cluster_ids)

    # ------------------------------------------------------------------ knobs
    def _targets(self, kp: KnobPath) -> list[int]:
        if kp.ident in self._index:
            return [self.feature_index(kp.ident)]
        if kp.ident in self.hierarchy:
            if not self.hierarchy[kp.ident]:
                raise KnobError(
                    f"knob path '{kp}': cluster {kp.ident!r} has no members, so the write "
                    "cannot change any state"
                )
            return [self.feature_index(m) for m in self.hierarchy[kp.ident]]
        raise KnobError(
            f"knob path '{kp}': {kp.ident!r} is neither a feature nor a cluster; "
            f"features: {self.feature_names}; clusters: {list(self.hierarchy)}"
        )

    def _theta_column(self, kp: KnobPath) -> int:
        enc = self.encoding
        if not isinstance(enc, HEA_Rung2):
            raise KnobError(
                f"knob path '{kp}': '.theta[r,d,q]' needs an HEA_Rung2 dictionary; "
                f"this one uses {type(enc).__name__}"
            )
        assert kp.slot is not None
        for i, (x, lim, what) in enumerate(zip(kp.slot, enc.theta_shape, ("r", "d", "q"))):
            if x >= lim:
                raise KnobError(
                    f"knob path '{kp}': index {what}={kp.slot[i]} out of range; "
                    f"theta_shape is {enc.theta_shape}"
                )
        return enc.flat(*kp.slot)

    def knob_slots(self, path: str) -> list[int]:
        """Flat knob-table cells (``feature · width + column``) a path writes.
        Refuses writes that cannot change the state."""
        kp = parse_knob(path)
        w = self.encoding.width
        targets = self._targets(kp)
        if kp.knob == "theta":
            col = self._theta_column(kp)
            return [i * w + col for i in targets]
        try:
            return [i * w + self.encoding.column(self.features[i], kp.knob) for i in targets]
        except KnobError as e:
            if kp.ident in self._index:
                raise
            # A cluster path: say which path the user wrote, then which member refused.
            raise KnobError(f"knob '{path}' (cluster {kp.ident!r}): {e}") from None

    def with_knob(self, path: str, value: float) -> Dictionary:
        """A copy with one knob set (absolute write) on a feature or on every
        member of a cluster."""
        return self.with_knobs({path: value})

    def with_knobs(self, values: Mapping[str, float]) -> Dictionary:
        """A copy with several knobs written in order."""
        feats = list(self.features)
        enc = self.encoding
        for path, value in values.items():
            kp = parse_knob(path)
            v = finite_knob(f"knob '{path}'", "value", value)
            self.knob_slots(path)  # validates the write
            for i in self._targets(kp):
                f = feats[i]
                if kp.knob == "theta":
                    assert isinstance(enc, HEA_Rung2) and kp.slot is not None
                    theta = np.array(enc.theta_of(f), dtype=np.float64)
                    theta[kp.slot] = v
                    feats[i] = replace(f, theta=theta)
                elif kp.knob == "phi" and isinstance(enc, HEA_Rung2) and f.theta is not None:
                    # An earlier θ write in this call materialised θ; φ then goes
                    # into its slot, the cell a sweep or grid writes (validated
                    # against the original feature above).
                    slot = enc.phi_slot(self.features[i])
                    assert slot is not None
                    theta = np.array(f.theta, dtype=np.float64)
                    theta[slot] = v
                    feats[i] = replace(f, theta=theta, phi=v)
                else:
                    change: dict[str, Any] = {kp.knob: v}
                    feats[i] = replace(f, **change)
        return replace(self, features=feats)

    def with_phi(self, name: str, value: float) -> Dictionary:
        self.feature_index(name)
        return self.with_knob(f"{name}.phi", value)

    def renamed(self, name: str) -> Dictionary:
        return replace(self, name=name)

    # --------------------------------------------------------------- measures
    def gram(self) -> np.ndarray:
        """Complex Gram ``G_ij = ⟨ψ_i|ψ_j⟩`` (not squared)."""
        return self.encoding.encoder.gram(self._table)

    def overlaps(self) -> np.ndarray:
        """``|G_ij|²``."""
        return np.abs(self.gram()) ** 2

    def states(self) -> np.ndarray:
        """State vectors, one row per feature (MPS 8, Rung3 16 = MPS ⊗ amp
        branch in span{|00⟩,|11⟩}, HEA 2**n_qubits)."""
        return self.encoding.encoder.states(self._table)

    def schmidt_ranks(self) -> np.ndarray:
        """Schmidt rank of each state across the cut qubit 0 | the rest."""
        return self.encoding.encoder.schmidt_ranks(self._table).astype(np.int64)

    def branch_law(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(M, V, floor)``: per pair ``|G_ij|² = M + V·cos(φ_i − φ_j)`` and
        the phase-only minimum ``M − |V|`` (MPSRung1 and Rung3 only)."""
        if isinstance(self.encoding, HEA_Rung2):
            raise NotImplementedError(
                "HEA_Rung2 has no closed-form M + V·cos δ law, hence no structural floor"
            )
        return self.encoding.encoder.branch_law(self._table)  # type: ignore[no-any-return]

    def _stats(self, target: tuple[int, int] = (0, 0)) -> np.ndarray:
        scan = _core.Scan(
            self.encoding.encoder, self._table, [], [], self.cluster_ids, len(self.hierarchy)
        )
        return scan.sweep(target)[2][0]

    def tier_stats(self) -> dict[str, float]:
        """Mean ``|G_ij|²`` per tier: self (1.0), sibling, cross_cluster (NaN if none)."""
        s = self._stats()
        return {"self": 1.0, "sibling": float(s[1]), "cross_cluster": float(s[2])}

    def tier_separation(self) -> float | None:
        """min over clusters (≥ 2 members) of the mean intra overlap minus the
        largest cross-cluster overlap; None when every cluster is a singleton."""
        v = float(self._stats()[3])
        return None if math.isnan(v) else v

    def hierarchical_ordering_preserved(self, a: str, b: str) -> bool:
        return bool(self._stats((self.feature_index(a), self.feature_index(b)))[4] > 0.5)

    @classmethod
    def with_default_angles(
        cls,
        name: str,
        hierarchy: Mapping[str, Iterable[str]],
        encoding: MPSRung1 | HEA_Rung2 | Rung3 | None = None,
    ) -> Dictionary:
        """One feature per member, α = γ = φ = 0, β spread over [−0.5, 0.5] by cluster."""
        if not isinstance(hierarchy, Mapping):
            raise DictionaryError(
                f"Dictionary.with_default_angles: hierarchy got {type(hierarchy).__name__}; "
                "expected a mapping cluster → list of feature names"
            )
        members: dict[str, list[str]] = {}
        for c, m in hierarchy.items():
            if isinstance(m, str | bytes) or not isinstance(m, Iterable):
                raise DictionaryError(
                    f"Dictionary.hierarchy[{c!r}]: got {m!r}; expected a list of feature names"
                )
            members[c] = list(m)  # once: a generator must not be consumed twice
        k = len(members)
        feats = []
        for i, (cluster, names) in enumerate(members.items()):
            beta = 0.0 if k == 1 else -0.5 + i / (k - 1)
            feats += [Feature(m, cluster, beta) for m in names]
        return cls(name, feats, members, MPSRung1() if encoding is None else encoding)

    def __repr__(self) -> str:
        return (
            f"Dictionary({self.name!r}, {len(self.features)} features, "
            f"clusters={list(self.hierarchy)}, encoding={self.encoding!r})"
        )
