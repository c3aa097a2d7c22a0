"""SAELens-standard SAE evaluations (spec 16 §5): CE loss recovered, KL,
explained variance, MSE, L0/L1, dead and dense features.  See docs/evals.md.

Importing this package needs no torch: the metric primitives
(:mod:`~polygram.evals.positions`, :mod:`~polygram.evals.lm_metrics`,
:mod:`~polygram.evals.sae_metrics`) import it when called."""

from __future__ import annotations

from polygram.evals.options import DTYPES, PACKINGS, UNSET, EvalOptions, Unset
from polygram.evals.result import EVAL_METRICS, EVAL_SCHEMA_VERSION, EvalResult
from polygram.evals.sae_metrics import SAEMetrics, SAEStatistics
from polygram.evals.scores import DENOMINATOR_FLOOR, ce_loss_score, kl_div_score, ratio

__all__ = [
    "DENOMINATOR_FLOOR",
    "DTYPES",
    "EVAL_METRICS",
    "EVAL_SCHEMA_VERSION",
    "PACKINGS",
    "UNSET",
    "EvalOptions",
    "EvalResult",
    "SAEMetrics",
    "SAEStatistics",
    "Unset",
    "ce_loss_score",
    "kl_div_score",
    "ratio",
]
