"""SAELens-standard SAE evaluations (spec 16 §5): CE loss recovered, KL,
explained variance, MSE, L0/L1, dead and dense features.  See docs/evals.md.

Importing this package needs no torch: the forwards and the metric
primitives import it (and transformers) when called."""

from __future__ import annotations

from polygram.evals.evaluate import as_sae, evaluate, evaluate_many, open_session
from polygram.evals.options import UNSET, EvalOptions, Unset
from polygram.evals.request import BeforeAfter, EvalRequest, eval_change, evaluate_before_after
from polygram.evals.result import EVAL_METRICS, EVAL_SCHEMA_VERSION, EvalResult
from polygram.evals.sae_metrics import SAEMetrics, SAEStatistics
from polygram.evals.scores import DENOMINATOR_FLOOR, ce_loss_score, kl_div_score, ratio
from polygram.evals.session import MIN_TOKENS, EvalSession
from polygram.evals.setup import EvalSetup, resolve_setup

__all__ = [
    "DENOMINATOR_FLOOR",
    "EVAL_METRICS",
    "EVAL_SCHEMA_VERSION",
    "MIN_TOKENS",
    "UNSET",
    "BeforeAfter",
    "EvalOptions",
    "EvalRequest",
    "EvalResult",
    "EvalSession",
    "EvalSetup",
    "SAEMetrics",
    "SAEStatistics",
    "Unset",
    "as_sae",
    "ce_loss_score",
    "eval_change",
    "evaluate",
    "evaluate_before_after",
    "evaluate_many",
    "kl_div_score",
    "open_session",
    "ratio",
    "resolve_setup",
]
