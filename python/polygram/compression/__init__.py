"""The compression action: confirmed redundant pairs → one live feature per
cluster in a new SAE checkpoint (spec 11), and the regrow of the silenced
slots from the residual stream (spec 12), and the whole-SAE epoch loop
(spec 13).  See docs/compression.md, docs/regrow.md and docs/epoch.md."""

from __future__ import annotations

from polygram.compression.clusters import connected_components
from polygram.compression.compressor import Compressor
from polygram.compression.epoch import EpochCompressor
from polygram.compression.epoch_report import EpochIteration, EpochReport, EpochResult, Panel
from polygram.compression.pareto import ParetoOutcome, ParetoReport
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

#: 0.0.1 / 0.15 name of ``RegrowSlot`` (spec 15 §10).
SlotPopulation = RegrowSlot

__all__ = [
    "ClusterPlan",
    "CompressionPlan",
    "CompressionReport",
    "CompressionResult",
    "Compressor",
    "EpochCompressor",
    "EpochIteration",
    "EpochReport",
    "EpochResult",
    "Panel",
    "ParetoOutcome",
    "ParetoReport",
    "RegrowPlan",
    "RegrowReport",
    "RegrowResult",
    "RegrowSlot",
    "RegrowStrategy",
    "Regrower",
    "SlotPopulation",
    "connected_components",
]
