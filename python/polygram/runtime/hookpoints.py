"""Hook points: TransformerLens names and where they sit in Hugging Face
models (spec 16 §3.1–3.2, spec 18 §2).

``HookPoint(layer, kind)`` prints as ``blocks.<L>.hook_<kind>`` and parses back
from it.  :func:`locate` maps one onto the module of a model, by
``model.config.model_type``: ``resid_pre`` is the input of block ``L`` (a
forward pre-hook), ``resid_post`` its output, ``attn_out`` / ``mlp_out`` the
output of the module whose result the block adds to the residual stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from polygram.errors import HookError
from polygram.runtime.models import LoadedModel

__all__ = [
    "HOOK_KINDS",
    "LAYOUTS",
    "FamilyLayout",
    "HookPoint",
    "HookSite",
    "as_hook_point",
    "block_list",
    "locate",
    "n_layers",
]

HOOK_KINDS: tuple[str, ...] = ("resid_pre", "resid_post", "attn_out", "mlp_out")
_NAME = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_post|attn_out|mlp_out)$")


@dataclass(frozen=True, order=True)
class HookPoint:
    """Layer ``layer`` (a block index, ``>= 0``) and one of :data:`HOOK_KINDS`."""

    layer: int
    kind: str = "resid_pre"

    def __post_init__(self) -> None:
        layer = self.layer
        if isinstance(layer, bool) or not isinstance(layer, Integral) or layer < 0:
            raise HookError(f"layer: got {layer!r}; must be an integer >= 0 (a block index)")
        object.__setattr__(self, "layer", int(layer))
        if self.kind not in HOOK_KINDS:
            raise HookError(
                f"hook kind: got {self.kind!r}; expected one of {', '.join(HOOK_KINDS)}"
            )

    @classmethod
    def parse(cls, name: object) -> HookPoint:
        """``blocks.<L>.hook_<kind>`` → ``HookPoint(L, kind)``; anything else is HookError."""
        m = _NAME.match(name) if isinstance(name, str) else None
        if m is None:
            raise HookError(
                f"hook name {name!r} is not supported; expected blocks.<L>.hook_<kind> with kind "
                f"one of {', '.join(HOOK_KINDS)} (e.g. blocks.6.hook_resid_pre)"
            )
        return cls(int(m.group(1)), m.group(2))

    @property
    def name(self) -> str:
        """The TransformerLens name, ``blocks.<L>.hook_<kind>``."""
        return f"blocks.{self.layer}.hook_{self.kind}"

    def __str__(self) -> str:
        return self.name


def as_hook_point(value: HookPoint | str) -> HookPoint:
    """A HookPoint, or one parsed from its TransformerLens name."""
    return value if isinstance(value, HookPoint) else HookPoint.parse(value)


@dataclass(frozen=True)
class FamilyLayout:
    """Where one family keeps its blocks (``blocks``: candidate paths from the
    loaded model, first present wins) and, relative to a block, the modules
    whose outputs are ``attn_out`` and ``mlp_out``.  ``flat_mlp``: the
    ``mlp_out`` module sees ``[B·T, d]`` (OPT's ``fc2``)."""

    blocks: tuple[str, ...]
    attn_out: str
    mlp_out: str
    flat_mlp: bool = False


_GPT2 = FamilyLayout(("transformer.h",), "attn", "mlp")
_LLAMA = FamilyLayout(("model.layers",), "self_attn", "mlp")
# Gemma 2/3 norm each sub-layer's output before adding it: TransformerLens hooks
# after that post-norm ("that which is added to the residual stream")
_GEMMA2 = FamilyLayout(("model.layers",), "post_attention_layernorm", "post_feedforward_layernorm")

#: the hook table, by ``model.config.model_type`` (docs/runtime.md)
LAYOUTS: dict[str, FamilyLayout] = {
    "gpt2": _GPT2,
    "gptj": _GPT2,
    "gpt_neox": FamilyLayout(("gpt_neox.layers",), "attention", "mlp"),
    "opt": FamilyLayout(("model.decoder.layers",), "self_attn", "fc2", flat_mlp=True),
    # both Linears are followed by the residual add: their outputs are the sub-layer's share
    "bloom": FamilyLayout(("transformer.h",), "self_attention.dense", "mlp.dense_4h_to_h"),
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "gemma": _LLAMA,
    "gemma2": _GEMMA2,
    "gemma3_text": _GEMMA2,
    "gemma3": FamilyLayout(("model.language_model.layers",), _GEMMA2.attn_out, _GEMMA2.mlp_out),
    # EsmForMaskedLM, or a bare EsmModel; the dense layers precede the residual add
    "esm": FamilyLayout(
        ("esm.encoder.layer", "encoder.layer"), "attention.output.dense", "output.dense"
    ),
}


@dataclass(frozen=True)
class HookSite:
    """A hook point located in one model: ``module`` is hooked with a forward
    pre-hook when ``pre`` (the block input), else a forward hook; ``flat``:
    its output is ``[B·T, d]`` and ``block`` (whose input gives ``B, T``) must be
    watched too.  ``path`` names the module for messages."""

    hook: HookPoint
    module: Any
    pre: bool
    flat: bool
    block: Any
    path: str


def _attr_path(root: Any, path: str) -> Any:
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)  # AttributeError: handled by the callers
    return obj


def _model_type(model: Any) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", None))


def _unsupported(model: Any) -> HookError:
    return HookError(
        f"model_type {_model_type(model)!r} ({type(model).__name__}) is not supported; "
        f"supported: {', '.join(LAYOUTS)} (or pass block_path= / --block-path naming the block "
        "list, for resid_pre and resid_post only)"
    )


def block_list(model: Any, block_path: str | None = None) -> tuple[str, Any]:
    """``(path, blocks)``: the model's list of transformer blocks, from the
    family table or from ``block_path`` (a dotted path from the loaded model)."""
    if isinstance(model, LoadedModel):
        model = model.model
    if block_path is not None:
        if not isinstance(block_path, str) or not block_path:
            raise HookError(f"block_path: got {block_path!r}; expected a dotted path")
        try:
            blocks = _attr_path(model, block_path)
        except AttributeError:
            raise HookError(
                f"block_path {block_path!r}: {type(model).__name__} has no such attribute"
            ) from None
        if not hasattr(blocks, "__len__") or not hasattr(blocks, "__getitem__"):
            raise HookError(
                f"block_path {block_path!r}: {type(blocks).__name__} is not a list of blocks"
            )
        return block_path, blocks
    layout = LAYOUTS.get(_model_type(model))
    if layout is None:
        raise _unsupported(model)
    for path in layout.blocks:
        try:
            return path, _attr_path(model, path)
        except AttributeError:
            continue
    raise HookError(
        f"{type(model).__name__} (model_type {_model_type(model)!r}) has none of the block "
        f"lists {', '.join(layout.blocks)}"
    )


def n_layers(model: Any, block_path: str | None = None) -> int:
    """How many blocks the model has."""
    return len(block_list(model, block_path)[1])


def locate(model: Any, hook: HookPoint | str, *, block_path: str | None = None) -> HookSite:
    """The module of ``model`` (a torch model or a LoadedModel) to hook for
    ``hook``: HookError for an unsupported family or setting, IndexError for a
    layer the model does not have."""
    hook = as_hook_point(hook)
    if isinstance(model, LoadedModel):
        model = model.model
    path, blocks = block_list(model, block_path)
    if hook.layer >= len(blocks):
        raise IndexError(
            f"layer: {hook.layer} is out of range for {hook.name}; {type(model).__name__} has "
            f"{len(blocks)} blocks (layers 0..{len(blocks) - 1})"
        )
    block = blocks[hook.layer]
    where = f"{path}[{hook.layer}]"
    if hook.kind in ("resid_pre", "resid_post"):
        return HookSite(hook, block, hook.kind == "resid_pre", False, block, where)
    layout = LAYOUTS.get(_model_type(model))
    if layout is None:
        raise _unsupported(model)
    config = model.config
    if _model_type(model) == "bloom" and (
        int(getattr(config, "pretraining_tp", 1)) > 1
        and bool(getattr(config, "slow_but_exact", False))
    ):
        raise HookError(
            f"{hook.name}: BLOOM with pretraining_tp={config.pretraining_tp} and "
            "slow_but_exact=True splits its output Linear by hand (the module is never called); "
            "only resid_pre and resid_post can be hooked there"
        )
    rel = layout.attn_out if hook.kind == "attn_out" else layout.mlp_out
    try:
        module = _attr_path(block, rel)
    except AttributeError:
        raise HookError(
            f"{hook.name}: {type(block).__name__} at {where} has no submodule {rel!r} "
            f"(model_type {_model_type(model)!r})"
        ) from None
    flat = layout.flat_mlp and hook.kind == "mlp_out"
    return HookSite(hook, module, False, flat, block, f"{where}.{rel}")
