"""Polygram 0.0.1's module path for Q-Orca emission; the canonical home is
:mod:`polygram.qorca`."""

from __future__ import annotations

from polygram.qorca import write_qorca

__all__ = ["write_qorca"]
