"""Polygram: a Rust-accelerated quantum-interference laboratory for
polysemantic SAE feature dictionaries."""

from __future__ import annotations

from polygram._core import __version__  # the crate version is the package version
from polygram.batch import BatchExperiment, BatchResults, BatchRun
from polygram.behavioural import (
    BehaviouralValidator,
    BucketStats,
    CandidatePair,
    ClusterConfirmer,
    Confirmer,
    DecoderGeometryConfirmer,
    ValidationReport,
    ValidationSummary,
)
from polygram.cancellation import Cancellation, CancellationResult
from polygram.compression import (
    ClusterPlan,
    CompressionPlan,
    CompressionReport,
    CompressionResult,
    Compressor,
    EpochCompressor,
    EpochReport,
    EpochResult,
    Regrower,
    RegrowReport,
    RegrowResult,
    RegrowStrategy,
)
from polygram.dictionary import Dictionary, Feature
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3, Rung3State
from polygram.errors import PolygramError
from polygram.experiment import Experiment, ExperimentResult, InterferenceSweep
from polygram.qorca import QorcaVerification, verify_qorca, write_qorca
from polygram.sae import (
    SAEFeatureRecord,
    SelectionReport,
    from_sae_lens,
    load_sae_lens_folder,
    load_sae_safetensors,
    load_toy_sae,
)

__all__ = [
    "BatchExperiment",
    "BatchResults",
    "BatchRun",
    "BehaviouralValidator",
    "BucketStats",
    "Cancellation",
    "CancellationResult",
    "CandidatePair",
    "ClusterConfirmer",
    "ClusterPlan",
    "CompressionPlan",
    "CompressionReport",
    "CompressionResult",
    "Compressor",
    "Confirmer",
    "DecoderGeometryConfirmer",
    "Dictionary",
    "EpochCompressor",
    "EpochReport",
    "EpochResult",
    "Experiment",
    "ExperimentResult",
    "Feature",
    "HEA_Rung2",
    "InterferenceSweep",
    "MPSRung1",
    "PolygramError",
    "QorcaVerification",
    "RegrowReport",
    "RegrowResult",
    "RegrowStrategy",
    "Regrower",
    "Rung3",
    "Rung3State",
    "SAEFeatureRecord",
    "SelectionReport",
    "ValidationReport",
    "ValidationSummary",
    "__version__",
    "from_sae_lens",
    "load_sae_lens_folder",
    "load_sae_safetensors",
    "load_toy_sae",
    "verify_qorca",
    "write_qorca",
]
