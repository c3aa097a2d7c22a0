"""``evaluate`` / ``evaluate_many``: SAELens-standard metrics of SAEs spliced
into their language model (spec 16 §5.1).  See docs/evals.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from polygram.evals.options import EvalOptions
from polygram.evals.result import EvalResult
from polygram.evals.session import EvalSession
from polygram.evals.setup import resolve_setup

if TYPE_CHECKING:
    from polygram.runtime import LoadedModel
    from polygram.sae import SAE

__all__ = ["as_sae", "evaluate", "evaluate_many", "open_session"]


def as_sae(source: Any) -> SAE:
    """An :class:`~polygram.sae.SAE`, or one loaded by ``load_sae`` from any
    accepted source (folder, ``.safetensors`` file, mapping of arrays)."""
    from polygram.sae import SAE

    if isinstance(source, SAE):
        return source
    from polygram.sae import load_sae

    return load_sae(source)


def open_session(
    saes: Sequence[Any],
    prompts: Sequence[str],
    *,
    model: str | LoadedModel | None = None,
    options: EvalOptions | None = None,
    cache_activations: bool = False,
    progress: bool | None = False,
) -> tuple[EvalSession, list[SAE]]:
    """Resolve settings, load the model, tokenise: an :class:`EvalSession`
    ready to run (everything that can be refused is refused here, before any
    forward), and the SAEs as loaded."""
    opts = EvalOptions() if options is None else options
    if not isinstance(opts, EvalOptions):
        raise TypeError(f"options must be an EvalOptions, got {type(opts).__name__}")
    if isinstance(saes, Mapping) or not isinstance(saes, Sequence):
        raise TypeError("saes must be a sequence of SAEs or SAE sources")
    loaded = [as_sae(s) for s in saes]
    setup = resolve_setup(loaded, model, opts)
    session = EvalSession(
        setup, prompts, opts, cache_activations=cache_activations, progress=progress
    )
    session.check_widths(loaded)
    return session, loaded


def evaluate_many(
    saes: Sequence[Any],
    prompts: Sequence[str],
    *,
    model: str | LoadedModel | None = None,
    options: EvalOptions | None = None,
    progress: bool | None = False,
) -> list[EvalResult]:
    """Evaluate several SAEs of one model and hook on ``prompts``, sharing the
    clean and zero-ablated forwards (per batch: 2 + one spliced forward per
    SAE).  The SAEs must resolve to the same model, hook and tokenisation
    (``EvalError`` naming the field that differs)."""
    session, loaded = open_session(saes, prompts, model=model, options=options, progress=progress)
    return session.run(loaded)


def evaluate(
    sae: Any,
    prompts: Sequence[str],
    *,
    model: str | LoadedModel | None = None,
    options: EvalOptions | None = None,
    progress: bool | None = False,
) -> EvalResult:
    """Evaluate one SAE (or SAE source) on ``prompts``: CE loss recovered, KL,
    explained variance, MSE, L0/L1, dead and dense features.  ``model`` is a
    name, a :class:`~polygram.runtime.LoadedModel` or None (the SAE's cfg
    ``model_name``)."""
    return evaluate_many([sae], prompts, model=model, options=options, progress=progress)[0]
