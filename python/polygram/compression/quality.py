"""The epoch's quality bound (spec 16 §6.2, spec 18 §3): a bound on a real
metric — CE loss recovered or KL with the SAE spliced in — measured against
the SOURCE SAE on held-out prompts, checked after every compressing
iteration including the first; or, for model-free runs on cached residuals,
polygram 0.0.1's upstream proxy (``quality_delta``) with its relative rule.

Cumulative against the source: many small steps cannot add up past the
bound.  A candidate breaches when ``m_src − m_k > tol`` (CE score),
``m_k − m_src > tol`` (KL), or ``m_k`` is NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

from polygram.errors import CompressionError

if TYPE_CHECKING:
    from polygram.evals import EvalOptions, EvalResult, EvalSession
    from polygram.sae import SAE

__all__ = [
    "DEFAULT_TOLERANCES",
    "GATE_SHARE",
    "QUALITY_METRICS",
    "QualityBound",
    "QualityCheck",
    "check_quality_settings",
    "split_prompts",
]

#: ``ce_loss_score`` and ``kl_div_with_sae`` need a model; ``upstream_proxy`` does not.
QUALITY_METRICS: tuple[str, ...] = ("ce_loss_score", "kl_div_with_sae", "upstream_proxy")
#: How far the metric may move from the source's (CE score: drop; KL: rise, nats).
DEFAULT_TOLERANCES = {"ce_loss_score": 0.01, "kl_div_with_sae": 0.05}
#: Without ``eval_prompts`` the first 75 % of the prompts gate, the rest bound.
GATE_SHARE = 0.75
_MIN_SPLIT = 4


def check_quality_settings(
    owner: str, metric: object, tolerance: object
) -> tuple[str | None, float | None]:
    """``(metric, tolerance)`` checked (None = resolve later); CompressionError
    naming the field, the value and what is allowed."""
    if metric is not None and metric not in QUALITY_METRICS:
        raise CompressionError(
            f"{owner}.quality_metric: got {metric!r}; allowed: {', '.join(QUALITY_METRICS)} "
            "or None (ce_loss_score with prompts, upstream_proxy with cached residuals only)"
        )
    if tolerance is None:
        return metric, None  # type: ignore[return-value]
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real):
        raise CompressionError(
            f"{owner}.quality_tolerance: got {tolerance!r}; expected a finite number >= 0"
        )
    tol = float(tolerance)
    if not math.isfinite(tol) or tol < 0:
        raise CompressionError(
            f"{owner}.quality_tolerance: got {tol!r}; expected a finite number >= 0"
        )
    return metric, tol  # type: ignore[return-value]


def split_prompts(prompts: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(gate, bound)``: the first 75 % and the rest, at least one each; with
    fewer than 4 prompts both are all of them (RuntimeWarning)."""
    items = list(prompts)
    if len(items) < _MIN_SPLIT:
        warnings.warn(
            f"EpochCompressor: only {len(items)} prompts and no eval_prompts: the same prompts "
            "gate the panels and measure the quality bound (give >= 4 prompts, or eval_prompts)",
            RuntimeWarning,
            stacklevel=3,
        )
        return items, items
    n_gate = min(len(items) - 1, max(1, int(len(items) * GATE_SHARE)))
    return items[:n_gate], items[n_gate:]


@dataclass(frozen=True)
class QualityCheck:
    """One iteration's reading: ``value`` (``m_k``; proxy: the delta),
    ``reference`` (``m_src``; proxy: the first iteration's delta),
    ``change`` (``m_k − m_src``; proxy: None) and whether it breached."""

    metric: str
    value: float
    reference: float | None
    change: float | None
    breached: bool


class QualityBound:
    """The bound of one epoch run.  :meth:`start` evaluates the source (the
    references: clean, zero-ablated, spliced — 3 forwards per batch);
    :meth:`check` scores a candidate (``ce_loss_score``: one spliced forward
    per batch over cached activations; ``kl_div_with_sae``: clean + spliced)."""

    def __init__(
        self,
        metric: str,
        tolerance: float | None,
        multiplier: float,
        session: EvalSession | None,
    ) -> None:
        self.metric = metric
        self.tolerance = tolerance
        self.multiplier = multiplier
        self.session = session
        self.source_result: EvalResult | None = None
        self._delta_1: float | None = None

    @classmethod
    def open(
        cls,
        metric: str | None,
        tolerance: float | None,
        multiplier: float,
        source: SAE,
        prompts: Sequence[str] | None,
        options: EvalOptions | None,
        *,
        device: str | None = None,
    ) -> QualityBound:
        """Resolve the metric (None: ``ce_loss_score`` with prompts — or
        ``kl_div_with_sae`` on a masked LM — else ``upstream_proxy``) and its
        tolerance, and prepare the evaluation session when prompts exist."""
        from dataclasses import replace

        from polygram.evals import EvalOptions, open_session

        if not prompts:
            if metric not in (None, "upstream_proxy"):
                raise CompressionError(
                    f"EpochCompressor.quality_metric: {metric!r} needs eval_prompts (or "
                    "prompts): it is measured by running the model; with cached residuals only, "
                    "use quality_metric='upstream_proxy'"
                )
            return cls("upstream_proxy", None, multiplier, None)
        opts = options if options is not None else EvalOptions()
        if opts.device is None and device is not None:
            opts = replace(opts, device=device)
        session, _ = open_session(
            [source], prompts, options=opts, cache_activations=True, progress=False
        )
        if metric is None:
            metric = "kl_div_with_sae" if session.model.masked_lm else "ce_loss_score"
        # the CE bound scores candidates from cached activations (no clean forward)
        session.cache_activations = metric == "ce_loss_score"
        if metric != "upstream_proxy" and tolerance is None:
            tolerance = DEFAULT_TOLERANCES[metric]
        return cls(metric, tolerance, multiplier, session)

    @property
    def real(self) -> bool:
        return self.metric != "upstream_proxy"

    def start(self, source: SAE) -> EvalResult | None:
        """Evaluate the source once (``eval_before``), when prompts exist."""
        if self.session is None:
            return None
        result = self.session.run([source])[0]
        self.source_result = result
        if self.metric == "ce_loss_score" and not _finite(result.ce_loss_score):
            raise CompressionError(
                "EpochCompressor: the source SAE's ce_loss_score is undefined (CE_0 = "
                f"{result.ce_loss_without_sae}, CE_z = {result.ce_loss_with_ablation}: the "
                "zero-ablation gap is ~0 or CE does not exist for this model); use "
                "quality_metric='kl_div_with_sae'"
            )
        return result

    def check(self, candidate: SAE, proxy_delta: float) -> QualityCheck:
        """Score the candidate state of one compressing iteration."""
        if not self.real:
            if self._delta_1 is None:
                self._delta_1 = proxy_delta
                return QualityCheck(self.metric, proxy_delta, proxy_delta, None, False)
            breached = proxy_delta > self.multiplier * self._delta_1
            return QualityCheck(self.metric, proxy_delta, self._delta_1, None, breached)
        assert self.session is not None and self.source_result is not None
        assert self.tolerance is not None
        kl = self.metric == "kl_div_with_sae"
        result = self.session.run([candidate], kl=kl)[0]
        m_k = _value(getattr(result, self.metric))
        m_src = _value(getattr(self.source_result, self.metric))
        change = m_k - m_src
        if kl:
            breached = not math.isfinite(m_k) or change > self.tolerance
        else:
            breached = not math.isfinite(m_k) or -change > self.tolerance
        return QualityCheck(
            self.metric, m_k, m_src, change if math.isfinite(change) else None, breached
        )

    def finish(self, output: SAE, unchanged: bool) -> EvalResult | None:
        """``eval_after``: the output evaluated in full (the source's result
        when nothing changed)."""
        if self.session is None:
            return None
        if unchanged:
            return self.source_result
        return self.session.run([output])[0]


def _value(v: Any) -> float:
    return math.nan if v is None else float(v)


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(float(v))
