"""The model runtime (spec 16 §3–4, spec 18 §2): one place that loads models,
finds hook points, tokenises and batches prompts, and runs hooked forwards.

``import polygram.runtime`` never imports torch; the functions that need it
import it (and transformers) lazily.  See docs/runtime.md.
"""

from __future__ import annotations

from polygram.runtime._torch import require_torch
from polygram.runtime.activations import capture_activations
from polygram.runtime.batching import (
    PACKINGS,
    Batch,
    TokenizedPrompts,
    default_context_size,
    iter_batches,
    make_batch,
    pad_token_id,
    special_ids,
    tokenize_prompts,
)
from polygram.runtime.devices import (
    DEVICE_HELP,
    DTYPES,
    check_device,
    check_dtype,
    resolve_device,
)
from polygram.runtime.hookpoints import (
    HOOK_KINDS,
    LAYOUTS,
    HookPoint,
    as_hook_point,
    locate,
    n_layers,
)
from polygram.runtime.hooks import capture, capture_and_stop, forward, replace
from polygram.runtime.models import LoadedModel, clear_model_cache, get_model, is_masked_lm

__all__ = [
    "DEVICE_HELP",
    "DTYPES",
    "HOOK_KINDS",
    "LAYOUTS",
    "PACKINGS",
    "Batch",
    "HookPoint",
    "LoadedModel",
    "TokenizedPrompts",
    "as_hook_point",
    "capture",
    "capture_activations",
    "capture_and_stop",
    "check_device",
    "check_dtype",
    "clear_model_cache",
    "default_context_size",
    "forward",
    "get_model",
    "is_masked_lm",
    "iter_batches",
    "locate",
    "make_batch",
    "n_layers",
    "pad_token_id",
    "replace",
    "require_torch",
    "resolve_device",
    "special_ids",
    "tokenize_prompts",
]
