"""Encodings: how a feature's knobs become a quantum state.

Each encoding is an immutable value object that knows its knob-table layout
(the row of real numbers the Rust core turns into a state), its capacity and
which knob paths it can write.  The math lives in ``polygram._core``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral, Real
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from polygram import _core
from polygram.errors import DictionaryError, KnobError

if TYPE_CHECKING:
    from polygram.feature import Feature

__all__ = [
    "RUNG3_DEFAULT_PSI_AUX",
    "RUNG3_DEFAULT_THETA_AMP",
    "HEA_Rung2",
    "MPSRung1",
    "Rung3",
    "Rung3State",
    "rung3_amp_overlap",
    "rung3_amp_overlap_squared",
]

#: Rung3 amp-branch defaults: at these knobs every amp overlap is exactly 1.
RUNG3_DEFAULT_THETA_AMP = math.pi / 4
RUNG3_DEFAULT_PSI_AUX = 0.0


@dataclass(frozen=True)
class _MpsFamily:
    """Shared knob handling of the encodings built on the rung-1 MPS."""

    bond_dim: int = 2

    max_features: ClassVar[int]
    kind: ClassVar[str]
    columns: ClassVar[dict[str, int]]

    def __post_init__(self) -> None:
        if self.bond_dim != 2:
            raise DictionaryError(
                f"{type(self).__name__}.bond_dim must be 2 (only χ = 2 exists); "
                f"got {self.bond_dim!r}"
            )

    @cached_property
    def encoder(self) -> _core.Encoder:
        return _core.Encoder(self.kind)

    @property
    def width(self) -> int:
        return len(self.row_names)

    row_names: ClassVar[tuple[str, ...]]

    def row(self, f: Feature) -> list[float]:
        return [getattr(f, k) for k in self.row_names]

    def column(self, f: Feature, knob: str) -> int:
        """Column of ``knob`` in ``f``'s row; refuses knobs with no effect."""
        if knob in self.columns:
            return self.columns[knob]
        raise KnobError(
            f"knob '.{knob}' has no effect on {type(self).__name__} features "
            f"(writable: {', '.join('.' + k for k in self.columns)})"
        )


@dataclass(frozen=True)
class MPSRung1(_MpsFamily):
    """The production encoding: a 3-qubit rung-1 MPS per feature, knobs (α, β, γ, φ).

    ``phase_knobs`` is echoed for API compatibility; φ is always a knob.
    """

    phase_knobs: bool = True

    max_features: ClassVar[int] = 8
    kind: ClassVar[str] = "mps"
    columns: ClassVar[dict[str, int]] = {"phi": 3}
    row_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "phi")


@dataclass(frozen=True)
class Rung3(_MpsFamily):
    """Experimental 5-qubit encoding: the rung-1 MPS on qubits 0–2 times the
    amplitude branch ``cos θ|00⟩ + e^{iψ} sin θ|11⟩`` on qubits 3–4."""

    max_features: ClassVar[int] = 16
    kind: ClassVar[str] = "rung3"
    columns: ClassVar[dict[str, int]] = {"phi": 3, "theta_amp": 4, "psi_aux": 5}
    row_names: ClassVar[tuple[str, ...]] = (
        "alpha",
        "beta",
        "gamma",
        "phi",
        "theta_amp",
        "psi_aux",
    )


_ROTATIONS = ("Rx", "Ry", "Rz")
_ENTANGLERS = ("ring", "chain")


def _integer(field: str, value: object, lo: int, hi: int | None) -> int:
    """An integer field (numpy integers accepted, bools and floats refused)."""
    bound = f"an int >= {lo}, i.e. {field} >= {lo}" if hi is None else f"an int in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise DictionaryError(f"HEA_Rung2.{field}: got {value!r}; must be {bound}")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        raise DictionaryError(f"HEA_Rung2.{field}: got {v!r}; must be {bound}")
    return v


@dataclass(frozen=True)
class HEA_Rung2:
    """Rung-2 hardware-efficient ansatz: per feature a θ tensor of shape
    ``(len(rotations), depth, n_qubits)``."""

    depth: int
    entangler: str = "ring"
    rotations: tuple[str, ...] = ("Ry", "Rz")
    tier_separation_bound: float | None = 0.025
    n_qubits: int = 3
    kind: ClassVar[str] = "hea"

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", _integer("depth", self.depth, 1, _core.HEA_MAX_DEPTH))
        if self.entangler not in _ENTANGLERS:
            raise DictionaryError(
                f"HEA_Rung2.entangler: got {self.entangler!r}; allowed {', '.join(_ENTANGLERS)}"
            )
        # A bare string would iterate into letters; None or a number is not iterable.
        rots = () if isinstance(self.rotations, str | bytes) else self.rotations
        try:
            rots = tuple(rots)
        except TypeError:
            rots = ()
        if (
            not rots
            or len(rots) > _core.HEA_MAX_ROTATIONS
            or any(r not in _ROTATIONS for r in rots)
        ):
            raise DictionaryError(
                f"HEA_Rung2.rotations: got {self.rotations!r}; must be a non-empty sequence "
                f"of at most {_core.HEA_MAX_ROTATIONS} entries in {', '.join(_ROTATIONS)}"
            )
        object.__setattr__(self, "rotations", rots)
        object.__setattr__(
            self, "n_qubits", _integer("n_qubits", self.n_qubits, 1, _core.HEA_MAX_QUBITS)
        )
        b = self.tier_separation_bound
        # bool is an int subclass: True would silently mean a bound of 1.
        if b is not None and (
            isinstance(b, bool) or not isinstance(b, Real) or not 0.0 <= float(b) <= 1.0
        ):
            raise DictionaryError(
                f"HEA_Rung2.tier_separation_bound: got {b!r}; None or a float in [0, 1]"
            )
        if b is not None and type(b) not in (int, float):
            # numpy scalars: a plain float keeps repr (runner script) and
            # the emitted invariant identical to the bound that is checked.
            object.__setattr__(self, "tier_separation_bound", float(b))

    @property
    def max_features(self) -> int:  # type: ignore[override]
        return 2**self.n_qubits

    @property
    def theta_shape(self) -> tuple[int, int, int]:
        return (len(self.rotations), self.depth, self.n_qubits)

    @property
    def width(self) -> int:
        r, d, n = self.theta_shape
        return r * d * n

    @cached_property
    def encoder(self) -> _core.Encoder:
        return _core.Encoder(
            "hea",
            n_qubits=self.n_qubits,
            depth=self.depth,
            rotations=list(self.rotations),
            entangler=self.entangler,
        )

    def phi_slot(self, f: Feature) -> tuple[int, int, int] | None:
        """Where the default θ synthesis puts φ (spec 01 §1.6), or None when
        φ has no slot (explicit θ, no Rz, or Rz not first with one qubit).

        With Rz first the slot is a layer-0 Rz on |0⟩: φ there (and the β it
        overwrites) is a global phase, visible in complex Gram entries but in
        no overlap.  The pinned synthesis keeps β when φ == 0 exactly, whereas
        a sweep or grid writes the angle 0.0 into the slot, so at that one
        value the two differ by a per-feature phase (docs/encodings.md)."""
        if f.theta is not None or "Rz" not in self.rotations:
            return None
        r = self.rotations.index("Rz")
        n = self.n_qubits
        if r == 0:
            return (0, 0, 1 if n >= 2 else 0)
        return (r, 0, 1) if n >= 2 else None

    def default_theta(self, f: Feature) -> np.ndarray:
        """θ synthesised from the MPS knobs: (α, β, γ) on the first declared
        rotation of layer 0, φ on its Rz slot (overwriting when Rz is first)."""
        theta = np.zeros(self.theta_shape)
        for q, v in enumerate((f.alpha, f.beta, f.gamma)[: min(self.n_qubits, 3)]):
            theta[0, 0, q] = v
        slot = self.phi_slot(f)
        if slot is not None and f.phi != 0:
            theta[slot] = f.phi
        return theta

    def theta_of(self, f: Feature) -> np.ndarray:
        return f.theta if f.theta is not None else self.default_theta(f)

    def row(self, f: Feature) -> list[float]:
        return [float(x) for x in self.theta_of(f).ravel()]

    def flat(self, r: int, d: int, q: int) -> int:
        _, depth, n = self.theta_shape
        return (r * depth + d) * n + q

    def column(self, f: Feature, knob: str) -> int:
        if knob == "phi":
            slot = self.phi_slot(f)
            if slot is None:
                raise KnobError(
                    f"knob '{f.name}.phi' cannot change the state: on HEA_Rung2 φ only "
                    "seeds the default θ of a feature without explicit θ and with an "
                    f"Rz slot; write '{f.name}.theta[r,d,q]' instead "
                    f"(theta_shape {self.theta_shape})"
                )
            return self.flat(*slot)
        raise KnobError(
            f"knob '.{knob}' has no effect on HEA_Rung2 features "
            "(writable: .theta[r,d,q], .phi where it has a θ slot)"
        )


def rung3_amp_overlap(theta_a: float, psi_a: float, theta_b: float, psi_b: float) -> complex:
    """``⟨amp_a|amp_b⟩ = cos θ_a cos θ_b + e^{i(ψ_b − ψ_a)} sin θ_a sin θ_b`` for
    ``|amp(θ, ψ)⟩ = cos θ|00⟩ + e^{iψ} sin θ|11⟩`` (full angles, spec 01 §1.7)."""
    d = psi_b - psi_a
    s = math.sin(theta_a) * math.sin(theta_b)
    return complex(math.cos(theta_a) * math.cos(theta_b) + s * math.cos(d), s * math.sin(d))


def rung3_amp_overlap_squared(theta_a: float, psi_a: float, theta_b: float, psi_b: float) -> float:
    """``|⟨amp_a|amp_b⟩|²``."""
    return abs(rung3_amp_overlap(theta_a, psi_a, theta_b, psi_b)) ** 2


@dataclass(frozen=True)
class Rung3State:
    """One feature's Rung3 knobs, for quick amp-branch arithmetic."""

    alpha: float
    beta: float
    gamma: float
    phi: float
    theta_amp: float = RUNG3_DEFAULT_THETA_AMP
    psi_aux: float = RUNG3_DEFAULT_PSI_AUX

    @classmethod
    def from_mps_knobs(
        cls,
        alpha: float,
        beta: float,
        gamma: float,
        phi: float,
        theta_amp: float = RUNG3_DEFAULT_THETA_AMP,
        psi_aux: float = RUNG3_DEFAULT_PSI_AUX,
    ) -> Rung3State:
        return cls(alpha, beta, gamma, phi, theta_amp, psi_aux)

    def amp_overlap(self, other: Rung3State) -> complex:
        """``a = cos θ_i cos θ_j + e^{i(ψ_j − ψ_i)} sin θ_i sin θ_j``."""
        return rung3_amp_overlap(self.theta_amp, self.psi_aux, other.theta_amp, other.psi_aux)

    def amp_overlap_squared(self, other: Rung3State) -> float:
        return abs(self.amp_overlap(other)) ** 2


AnyEncoding = MPSRung1 | HEA_Rung2 | Rung3
ENCODINGS = (MPSRung1, HEA_Rung2, Rung3)
