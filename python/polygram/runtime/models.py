"""One model load per process: :func:`get_model` and its cache (spec 16 §4,
spec 18 §2).

The validator, the residual captures of regrow and the epoch, and the
evaluations all take their model from here, so a process that validates a
panel, compresses and evaluates before/after loads each model once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from polygram.errors import HookError
from polygram.runtime._torch import require_torch
from polygram.runtime.devices import check_dtype, resolve_device, torch_dtype

__all__ = ["LoadedModel", "clear_model_cache", "get_model", "is_masked_lm"]

_CACHE: dict[tuple[str, str, str], LoadedModel] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model in eval mode with gradients off, on ``device``.

    ``dtype`` is the dtype the weights actually have (``float32``, ``bfloat16``,
    …), also when ``"auto"`` was asked for; ``masked_lm`` is True for
    ``AutoModelForMaskedLM`` hosts (ESM-2, BERT…), whose logits are per-position
    MLM distributions rather than next-token predictions.
    """

    model: Any
    tokenizer: Any
    device: str
    dtype: str
    config: Any
    name: str
    masked_lm: bool = False

    @property
    def model_type(self) -> str:
        return str(getattr(self.config, "model_type", ""))

    def __repr__(self) -> str:
        return (
            f"LoadedModel({self.name!r}, {type(self.model).__name__}, device={self.device!r}, "
            f"dtype={self.dtype!r})"
        )


def is_masked_lm(config: Any) -> bool:
    """Whether ``config`` names a masked LM: its ``model_type`` has a masked-LM
    class in transformers and either no causal-LM class or a config that is not
    a decoder (BERT has both classes; ``is_decoder`` says which one is meant)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return False
    return model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or not getattr(
        config, "is_decoder", False
    )


def _model_name(name: object) -> str:
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"model_name: got {name!r}; expected a Hugging Face model name or a local directory"
        )
    return name


def get_model(
    model_name: str | os.PathLike[str], device: str | None = None, dtype: str = "auto"
) -> LoadedModel:
    """The model and tokenizer of ``model_name`` (hub name or local directory),
    loaded once per process for each ``(name, resolved device, dtype)``.

    ``AutoModelForCausalLM`` unless the config's ``model_type`` is a masked LM
    (:func:`is_masked_lm`: then ``AutoModelForMaskedLM``); ``trust_remote_code``
    is never set; eval mode, no gradients; one device (no ``device_map``).
    """
    torch = require_torch("get_model()")
    name = _model_name(model_name)
    dev = resolve_device(device, torch=torch)
    dt = check_dtype(dtype)
    key = (name, dev, dt)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        loaded = _load(torch, name, dev, dt)
        _CACHE[key] = loaded
        return loaded


def clear_model_cache() -> int:
    """Forget every cached model (their memory is freed once nothing else holds
    them); returns how many there were."""
    with _LOCK:
        n = len(_CACHE)
        _CACHE.clear()
    return n


def _load(torch: Any, name: str, device: str, dtype: str) -> LoadedModel:
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoTokenizer,
    )
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = AutoConfig.from_pretrained(name)
    masked = is_masked_lm(config)
    model_type = getattr(config, "model_type", None)
    if not masked and model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise HookError(
            f"model {name!r}: model_type {model_type!r} has neither a causal-LM nor a "
            "masked-LM class in transformers; polygram loads AutoModelForCausalLM or "
            "AutoModelForMaskedLM only"
        )
    auto = AutoModelForMaskedLM if masked else AutoModelForCausalLM
    kwargs: dict[str, Any] = {} if dtype == "auto" else {"dtype": torch_dtype(torch, dtype)}
    model: Any = auto.from_pretrained(name, **kwargs)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(name)
    weights = next(iter(model.parameters()), None)
    actual = str(weights.dtype).removeprefix("torch.") if weights is not None else dtype
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=actual,
        config=model.config,
        name=name,
        masked_lm=masked,
    )
