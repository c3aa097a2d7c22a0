"""The compression action: confirmed redundant pairs → one live feature per
cluster in a new SAE checkpoint (spec 11).  See docs/compression.md."""

from __future__ import annotations

from polygram.compression.clusters import connected_components
from polygram.compression.compressor import Compressor
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
    "connected_components",
]
