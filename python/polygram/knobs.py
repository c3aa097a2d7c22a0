"""Knob paths: the grammar users write (``"bird_hawk.phi"``, ``"dogs.phi"``,
``"x.theta[0,1,2]"``) and their resolution to cells of the knob table.

Grammar (spec 02 §2.2.2): the whole string is ``<id>.phi``, ``<id>.theta_amp``,
``<id>.psi_aux`` or ``<id>.theta[<r>,<d>,<q>]``; ``<id>`` is an identifier,
indices are unsigned ASCII decimals; nothing before or after.  ``<id>`` names
a feature first, otherwise a cluster (every member is written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from polygram.errors import KnobError

__all__ = ["KnobPath", "parse_knob"]

_PATH = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*)\.(phi|theta_amp|psi_aux|theta\[([0-9]+),([0-9]+),([0-9]+)\])",
    re.ASCII,
)
GRAMMAR = "'<id>.phi', '<id>.theta_amp', '<id>.psi_aux' or '<id>.theta[r,d,q]'"


@dataclass(frozen=True)
class KnobPath:
    """A parsed knob path: identifier, knob kind and (θ only) its slot."""

    ident: str
    knob: str  # "phi" | "theta_amp" | "psi_aux" | "theta"
    slot: tuple[int, int, int] | None = None

    def __str__(self) -> str:
        if self.slot is None:
            return f"{self.ident}.{self.knob}"
        return f"{self.ident}.theta[{self.slot[0]},{self.slot[1]},{self.slot[2]}]"


def parse_knob(path: object) -> KnobPath:
    if not isinstance(path, str):
        raise KnobError(f"knob path: got {path!r} ({type(path).__name__}); expected {GRAMMAR}")
    m = _PATH.fullmatch(path)
    if m is None:
        raise KnobError(f"knob path: {path!r} is malformed; expected {GRAMMAR}")
    ident, knob = m.group(1), m.group(2)
    if knob.startswith("theta["):
        return KnobPath(ident, "theta", (int(m.group(3)), int(m.group(4)), int(m.group(5))))
    return KnobPath(ident, knob)
