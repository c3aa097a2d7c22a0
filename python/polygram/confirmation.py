"""Polygram 0.0.1's module path for the confirmers; the canonical home is
:mod:`polygram.behavioural`."""

from __future__ import annotations

from polygram.behavioural import BehaviouralValidator, ClusterConfirmer, DecoderGeometryConfirmer

__all__ = ["BehaviouralValidator", "ClusterConfirmer", "DecoderGeometryConfirmer"]
