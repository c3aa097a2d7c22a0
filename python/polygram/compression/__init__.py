"""The compression action: confirmed redundant pairs → one live feature per
cluster in a new SAE checkpoint (spec 11), and the regrow of the silenced
slots from the residual stream (spec 12).  See docs/compression.md and
docs/regrow.md."""

from __future__ import annotations

from polygram.compression.clusters import connected_components
from polygram.compression.compressor import Compressor
from polygram.compression.regrow import (
    Regrower,
    RegrowPlan,
    RegrowReport,
    RegrowResult,
    RegrowSlot,
    RegrowStrategy,
)
from polygram.compression.report import (
    ClusterPlan,
    CompressionPlan,
    CompressionReport,
    CompressionResult,
)

__all__ = [
    "ClusterPlan",
    "CompressionPlan",
    "CompressionReport",
    "CompressionResult",
    "Compressor",
    "RegrowPlan",
    "RegrowReport",
    "RegrowResult",
    "RegrowSlot",
    "RegrowStrategy",
    "Regrower",
    "connected_components",
]
