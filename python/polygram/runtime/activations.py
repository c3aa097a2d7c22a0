"""Residual captures over a prompt set: the batched, early-stopping capture
the regrow and epoch residuals (and any "activations at a hook" need) use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polygram._progress import progress as progress_bar
from polygram.runtime.batching import default_context_size, iter_batches, tokenize_prompts
from polygram.runtime.hookpoints import HookPoint, as_hook_point
from polygram.runtime.hooks import capture_and_stop, forward
from polygram.runtime.models import LoadedModel

__all__ = ["capture_activations"]


def capture_activations(
    model: LoadedModel,
    hook: HookPoint | str,
    prompts: Sequence[str],
    *,
    batch_size: int = 8,
    prepend_bos: bool | None = None,
    context_size: int | None = None,
    block_path: str | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """The hooked tensor at every real token of ``prompts``, prompt by prompt
    in order: float32 ``[n_tokens, d]``.  Each batch stops right after the hook
    (no logits).  ``context_size=None`` truncates to the model's own limit;
    ``progress``: a bar (None: when stderr is a terminal)."""
    hook = as_hook_point(hook)
    size = context_size if context_size is not None else default_context_size(model.config)
    tokens = tokenize_prompts(model.tokenizer, prompts, prepend_bos=prepend_bos, context_size=size)
    batches = iter_batches(tokens, batch_size=batch_size, device=model.device)
    n_batches = -(-len(tokens) // batch_size)
    parts: list[np.ndarray] = []
    with capture_and_stop(model, hook, block_path=block_path) as cap:
        for batch in progress_bar(
            batches, desc=f"capture {hook.name}", total=n_batches, enabled=progress
        ):
            forward(model, batch)
            parts.append(batch.real(cap.take()).cpu().numpy())
    return np.concatenate(parts, axis=0).astype(np.float32, copy=False)
