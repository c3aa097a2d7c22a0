"""Argument checks shared by the clustered-dictionary modules: every message
names the field, the value given and what is allowed."""

from __future__ import annotations

import math
import re
from numbers import Integral, Real

from polygram.errors import ClusteringError

__all__ = ["NAME", "check_name", "int_at_least", "real_in"]

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def real_in(field: str, value: object, lo: float, hi: float, *, lo_open: bool = False) -> float:
    """``value`` as a float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``);
    bools and NaN are refused."""
    allowed = f"a real number in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ClusteringError(f"{field}: got {value!r}; expected {allowed}")
    v = float(value)
    if math.isnan(v) or v > hi or v < lo or (lo_open and v == lo):
        raise ClusteringError(f"{field}: got {value!r}; expected {allowed}")
    return v


def int_at_least(field: str, value: object, lo: int) -> int:
    """``value`` as an int ``>= lo`` (numpy integers accepted, bools refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < lo:
        raise ClusteringError(f"{field}: got {value!r}; expected an int >= {lo}")
    return int(value)


def check_name(owner: str, name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ClusteringError(f"{owner}.name: got {name!r}; must match [A-Za-z_][A-Za-z0-9_]*")
    return name
