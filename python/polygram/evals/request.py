"""What the compression loop asks of an evaluation (spec 16 §6.1): an
``EvalRequest`` (prompts, model, options) and the before/after comparison
that ``Compressor`` and ``Regrower`` record as ``eval_before``,
``eval_after`` and ``eval_change``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from polygram._report_json import round6
from polygram.errors import EvalError
from polygram.evals.options import EvalOptions
from polygram.evals.result import EvalResult

if TYPE_CHECKING:
    from polygram.runtime import LoadedModel
    from polygram.sae import SAE

__all__ = [
    "CHANGE_METRICS",
    "BeforeAfter",
    "EvalRequest",
    "check_evaluation",
    "eval_change",
    "evaluate_before_after",
]

#: The fields of ``eval_change`` (after − before).
CHANGE_METRICS: tuple[str, ...] = (
    "ce_loss_score",
    "kl_div_with_sae",
    "explained_variance",
    "l0",
    "n_dead",
)


@dataclass(frozen=True)
class EvalRequest:
    """Evaluate on ``prompts`` with ``model`` (a name, a ``LoadedModel`` or
    None: the SAE's cfg) and ``options``."""

    prompts: Sequence[str]
    model: str | LoadedModel | None = None
    options: EvalOptions = field(default_factory=EvalOptions)

    def __post_init__(self) -> None:
        p = self.prompts
        if isinstance(p, str | bytes) or not isinstance(p, Sequence):
            raise EvalError(
                f"EvalRequest.prompts: got {type(p).__name__}; expected a sequence of strings"
            )
        items = tuple(p)
        if not items:
            raise EvalError("EvalRequest.prompts: empty; give at least one prompt")
        bad = [i for i, s in enumerate(items) if not isinstance(s, str)]
        if bad:
            raise EvalError(f"EvalRequest.prompts: entries {bad[:10]} are not strings")
        object.__setattr__(self, "prompts", items)
        if not isinstance(self.options, EvalOptions):
            raise EvalError(
                f"EvalRequest.options: got {type(self.options).__name__}; expected EvalOptions"
            )


def check_evaluation(owner: str, request: object, sae: SAE) -> None:
    """Refuse an ``evaluation=`` that is not an :class:`EvalRequest`, or one
    for an SAE that cannot run (a decoder-only checkpoint)."""
    from polygram.errors import CompressionError

    if request is None:
        return
    if not isinstance(request, EvalRequest):
        raise CompressionError(
            f"{owner}.evaluation: got {type(request).__name__}; expected an EvalRequest or None"
        )
    if sae.partial:
        raise CompressionError(
            f"{owner}.evaluation: {sae.source.display!r} is a decoder-only checkpoint (no "
            "encoder), so it cannot be spliced into a model; drop evaluation="
        )


@dataclass(frozen=True)
class BeforeAfter:
    """Two evaluations on the same tokens and their difference."""

    before: EvalResult
    after: EvalResult
    change: dict[str, float | None]

    def blocks(self, output_name: str, output_sha256: str) -> dict[str, Any]:
        """The reports' ``eval_before`` / ``eval_after`` / ``eval_change``,
        the output's result named after the file written."""
        after = replace(self.after, sae_source=output_name, sae_sha256=output_sha256)
        return {
            "eval_before": self.before.to_dict(),
            "eval_after": after.to_dict(),
            "eval_change": {k: None if v is None else round6(v) for k, v in self.change.items()},
        }


def eval_change(before: EvalResult, after: EvalResult) -> dict[str, float | None]:
    """``after − before`` for :data:`CHANGE_METRICS` (None where either is
    None or not finite)."""
    out: dict[str, float | None] = {}
    for name in CHANGE_METRICS:
        a, b = getattr(after, name), getattr(before, name)
        d = None if a is None or b is None else float(a) - float(b)
        out[name] = d if d is not None and math.isfinite(d) else None
    return out


def evaluate_before_after(
    source: SAE, output: SAE, request: EvalRequest, *, progress: bool | None = False
) -> BeforeAfter:
    """Evaluate ``source`` and ``output`` together (per batch: clean,
    zero-ablated, spliced source, spliced output — 4 forwards)."""
    from polygram.evals.evaluate import evaluate_many

    before, after = evaluate_many(
        [source, output],
        request.prompts,
        model=request.model,
        options=request.options,
        progress=progress,
    )
    return BeforeAfter(before, after, eval_change(before, after))
