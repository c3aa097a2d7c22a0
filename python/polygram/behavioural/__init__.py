"""Behavioural validation of Polygram's pair predictions (spec 10).

``BehaviouralValidator.predict()`` is torch-free; ``validate()``/``run()``
import torch and transformers lazily (the ``[behavioural]`` extra).  This
package imports without torch.  See docs/behavioural.md.
"""

from __future__ import annotations

from polygram.behavioural.confirmers import (
    ClusterConfirmer,
    Confirmer,
    DecoderGeometryConfirmer,
)
from polygram.behavioural.prompts import read_prompts
from polygram.behavioural.report import (
    BucketStats,
    CandidatePair,
    ValidationReport,
    ValidationSummary,
)
from polygram.behavioural.validator import BehaviouralValidator

__all__ = [
    "BehaviouralValidator",
    "BucketStats",
    "CandidatePair",
    "ClusterConfirmer",
    "Confirmer",
    "DecoderGeometryConfirmer",
    "ValidationReport",
    "ValidationSummary",
    "read_prompts",
]
