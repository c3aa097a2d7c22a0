"""Feature: one dictionary feature, the value object every encoding reads.

Its own module so that ``encoding`` (which reads features) and ``dictionary``
(which holds an encoding) need not import each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from polygram.errors import DictionaryError

__all__ = ["KNOB_FIELDS", "Feature", "finite_knob"]

#: The scalar knob fields of a Feature.
KNOB_FIELDS = ("beta", "alpha", "gamma", "phi", "theta_amp", "psi_aux")


def finite_knob(owner: str, attr: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise DictionaryError(f"{owner}.{attr}: got {value!r}; expected a finite real number")
    v = float(value)
    if not math.isfinite(v):
        raise DictionaryError(f"{owner}.{attr}: got {v!r}; knob values must be finite")
    return v


@dataclass(frozen=True, eq=False)
class Feature:
    """One dictionary feature.  Equality is identity (spec 02 §2.1)."""

    name: str
    cluster: str
    beta: float
    alpha: float = 0.0
    gamma: float = 0.0
    phi: float = 0.0
    theta: np.ndarray | None = None
    theta_amp: float = math.pi / 4
    psi_aux: float = 0.0

    def __post_init__(self) -> None:
        for attr in ("name", "cluster"):
            v = getattr(self, attr)
            if not isinstance(v, str) or not v:
                raise DictionaryError(f"Feature.{attr}: got {v!r}; expected a non-empty string")
        owner = f"Feature({self.name!r})"
        for attr in KNOB_FIELDS:
            object.__setattr__(self, attr, finite_knob(owner, attr, getattr(self, attr)))
        if self.theta is not None:
            try:
                raw = np.asarray(self.theta)
            except (TypeError, ValueError) as e:
                raise DictionaryError(f"{owner}.theta: not a numeric array ({e})") from None
            # Complex θ would lose its imaginary part and bools are no angles:
            # only real numbers are allowed.
            if raw.dtype.kind not in "iuf":
                raise DictionaryError(
                    f"{owner}.theta: dtype {raw.dtype} is not allowed; "
                    "not a numeric array of real (integer or floating) angles"
                )
            theta = np.array(raw, dtype=np.float64)
            if theta.ndim != 3:
                raise DictionaryError(
                    f"{owner}.theta: shape {theta.shape}; "
                    "expected (len(rotations), depth, n_qubits)"
                )
            if not np.isfinite(theta).all():
                raise DictionaryError(f"{owner}.theta: holds non-finite values; θ must be finite")
            theta.flags.writeable = False
            object.__setattr__(self, "theta", theta)

    def __repr__(self) -> str:
        extra = "" if self.theta is None else f", theta=<{self.theta.shape}>"
        return (
            f"Feature({self.name!r}, {self.cluster!r}, beta={self.beta!r}, alpha={self.alpha!r}, "
            f"gamma={self.gamma!r}, phi={self.phi!r}{extra})"
        )
