"""What an evaluation runs on: the model, the hook and the tokenisation, resolved
for each SAE by the precedence of spec 16 §2.3 (explicit argument → the SAE's
cfg → fallback) and required to agree across the SAEs of one evaluation."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from polygram.errors import EvalError, PolygramDefaultWarning
from polygram.evals.options import UNSET, EvalOptions
from polygram.sae.settings import FALLBACK_MODEL, SAESettings, Setting

if TYPE_CHECKING:
    from polygram.runtime import HookPoint, LoadedModel
    from polygram.sae import SAE

__all__ = ["EvalSetup", "resolve_setup"]


@dataclass(frozen=True)
class EvalSetup:
    """The shared run settings of one evaluation and each SAE's recorded
    ``sae_settings`` (value + source of every setting)."""

    model: LoadedModel
    hook: HookPoint
    context_size: int | None
    prepend_bos: bool | None
    settings: tuple[SAESettings, ...]
    saes: tuple[SAE, ...]

    def settings_for(self, sae: SAE) -> SAESettings:
        """The recorded settings of ``sae``: its own resolution when it was
        one of the SAEs this setup was resolved for; else (an edited copy, a
        candidate of the loop) its settings with this setup's model and
        tokenisation — its hook must be this setup's (``EvalError``)."""
        for known, s in zip(self.saes, self.settings):
            if known is sae:
                return s
        own = sae.settings
        assert own is not None
        layer, kind = own.require_hook(f"evaluate ({sae.source.display})")
        if (layer, kind) != (self.hook.layer, self.hook.kind):
            raise EvalError(
                f"evaluate: the SAE {sae.source.display} hooks blocks.{layer}.hook_{kind}; "
                f"this evaluation runs at {self.hook.name}"
            )
        ref = self.settings[0]
        return replace(
            own,
            model_name=ref.model_name,
            context_size=ref.context_size,
            prepend_bos=ref.prepend_bos,
        )


def _run_setting(name: str, explicit: Any, current: Setting) -> Setting:
    """An explicit run setting wins over the cfg's, warning when they differ."""
    if explicit is None:
        return current
    if current.source == "cfg" and current.value is not None and current.value != explicit:
        warnings.warn(
            f"evaluate: {name}={explicit!r} overrides the SAE cfg's {current.value!r}",
            RuntimeWarning,
            stacklevel=4,
        )
    return Setting(explicit, "explicit")


def _model_setting(model: Any, settings: SAESettings, source: str) -> Setting:
    from polygram.runtime import LoadedModel

    if isinstance(model, LoadedModel):
        return _run_setting("model", model.name, settings.model_name)
    if model is not None:
        return _run_setting("model", str(model), settings.model_name)
    if settings.model_name.value is not None:
        return settings.model_name
    warnings.warn(
        f"evaluate: neither model= (--model) nor the cfg of {source} names a model: "
        f"using --model {FALLBACK_MODEL}",
        PolygramDefaultWarning,
        stacklevel=4,
    )
    return Setting(FALLBACK_MODEL, "default")


def _agree(field: str, values: Sequence[Any], saes: Sequence[SAE]) -> Any:
    first = values[0]
    for v, sae in zip(values[1:], saes[1:]):
        if v != first:
            raise EvalError(
                f"evaluate_many: the SAEs disagree on {field}: {first!r} "
                f"({saes[0].source.display}) vs {v!r} ({sae.source.display}); evaluate them "
                "separately or pass the setting explicitly"
            )
    return first


def resolve_setup(
    saes: Sequence[SAE], model: str | LoadedModel | None, options: EvalOptions
) -> EvalSetup:
    """Resolve model, hook, ``context_size`` and ``prepend_bos`` for every SAE
    and load the model (``get_model`` cache).  Raises ``HookError`` when an
    SAE names no hook, :class:`EvalError` when the SAEs disagree."""
    from polygram.runtime import HookPoint, LoadedModel, default_context_size, get_model

    if not saes:
        raise EvalError("evaluate_many: saes is empty; give at least one SAE")
    resolved: list[SAESettings] = []
    hooks: list[HookPoint] = []
    for sae in saes:
        s = sae.settings
        assert s is not None  # SAE.__post_init__ fills it
        layer, kind = s.require_hook(f"evaluate ({sae.source.display})")
        hooks.append(HookPoint(layer, kind))
        bos = options.prepend_bos
        if bos is UNSET:
            bos_s = s.prepend_bos
        elif bos is None:  # explicitly the tokenizer's own default
            bos_s = Setting(None, "explicit")
        else:
            bos_s = _run_setting("prepend_bos", bos, s.prepend_bos)
        s = replace(
            s,
            model_name=_model_setting(model, s, sae.source.display),
            context_size=_run_setting("context_size", options.context_size, s.context_size),
            prepend_bos=bos_s,
        )
        resolved.append(s)
    name = _agree("model", [s.model_name.value for s in resolved], saes)
    hook = _agree("hook", hooks, saes)
    prepend = _agree("prepend_bos", [s.prepend_bos.value for s in resolved], saes)
    size = _agree("context_size", [s.context_size.value for s in resolved], saes)
    loaded = (
        model
        if isinstance(model, LoadedModel)
        else get_model(name, device=options.device, dtype=options.dtype)
    )
    if size is None:
        size = default_context_size(loaded.config)
        resolved = [replace(s, context_size=Setting(size, "default")) for s in resolved]
    return EvalSetup(loaded, hook, size, prepend, tuple(resolved), tuple(saes))
