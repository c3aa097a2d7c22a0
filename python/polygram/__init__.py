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
    EpochIteration,
    EpochReport,
    EpochResult,
    Panel,
    ParetoOutcome,
    ParetoReport,
    Regrower,
    RegrowPlan,
    RegrowReport,
    RegrowResult,
    RegrowStrategy,
    SlotPopulation,
)
from polygram.config import (
    CancellationConfig,
    CompressionConfig,
    EpochCompressionConfig,
    RegrowConfig,
    SAEImportConfig,
    ValidationConfig,
)
from polygram.dictionary import Dictionary, Feature
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3, Rung3State
from polygram.errors import PolygramError
from polygram.experiment import Experiment, ExperimentResult, InterferenceSweep
from polygram.geometry import (
    GeometricProfile,
    available_profiles,
    clustered,
    get_profile,
    register_profile,
    uniform_sphere,
)
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
    "CancellationConfig",
    "CancellationResult",
    "CandidatePair",
    "ClusterConfirmer",
    "ClusterPlan",
    "CompressionConfig",
    "CompressionPlan",
    "CompressionReport",
    "CompressionResult",
    "Compressor",
    "Confirmer",
    "DecoderGeometryConfirmer",
    "Dictionary",
    "EpochCompressionConfig",
    "EpochCompressor",
    "EpochIteration",
    "EpochReport",
    "EpochResult",
    "Experiment",
    "ExperimentResult",
    "Feature",
    "GeometricProfile",
    "HEA_Rung2",
    "InterferenceSweep",
    "MPSRung1",
    "Panel",
    "ParetoOutcome",
    "ParetoReport",
    "PolygramError",
    "QorcaVerification",
    "RegrowConfig",
    "RegrowPlan",
    "RegrowReport",
    "RegrowResult",
    "RegrowStrategy",
    "Regrower",
    "Rung3",
    "Rung3State",
    "SAEFeatureRecord",
    "SAEImportConfig",
    "SelectionReport",
    "SlotPopulation",
    "ValidationConfig",
    "ValidationReport",
    "ValidationSummary",
    "__version__",
    "available_profiles",
    "clustered",
    "from_sae_lens",
    "get_profile",
    "load_sae_lens_folder",
    "load_sae_safetensors",
    "load_toy_sae",
    "register_profile",
    "uniform_sphere",
    "verify_qorca",
    "write_qorca",
]
