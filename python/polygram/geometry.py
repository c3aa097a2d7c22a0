"""Geometric profiles and knob assignment (spec 15 §2); the home is
:mod:`polygram.sae.geometry`, re-exported here under its public name."""

from __future__ import annotations

from polygram.sae.geometry import (
    ClusteredKnobAssignment,
    GeometricFidelity,
    GeometricProfile,
    KnobAssignment,
    KnobAssignmentResult,
    RankRecallAtKFidelity,
    TierPreservationFidelity,
    UniformSphereKnobAssignment,
    available_profiles,
    clustered,
    get_profile,
    register_profile,
    uniform_sphere,
)

__all__ = [
    "ClusteredKnobAssignment",
    "GeometricFidelity",
    "GeometricProfile",
    "KnobAssignment",
    "KnobAssignmentResult",
    "RankRecallAtKFidelity",
    "TierPreservationFidelity",
    "UniformSphereKnobAssignment",
    "available_profiles",
    "clustered",
    "get_profile",
    "register_profile",
    "uniform_sphere",
]
