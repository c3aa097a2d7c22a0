"""Run settings of an SAE and where each came from (spec 16 §2.3).

Every setting is resolved explicit argument / CLI flag → the SAE's cfg →
fallback, and remembers its source (``explicit|cfg|inferred|default``);
reports record them as ``sae_settings``.  A flag that contradicts the cfg on
what the SAE *is* (architecture, ``k``, hook, the forward's options) is a
:class:`SettingsConflictError`; one that only changes how it is *run*
(model name, ``context_size``, ``prepend_bos``) wins with a RuntimeWarning.
Hook names arrive in the cfg; their grammar (spec 16 §3.1) is
:class:`polygram.runtime.HookPoint`'s, which also maps them onto model modules.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from polygram.errors import HookError, PolygramDefaultWarning, SettingsConflictError
from polygram.runtime.hookpoints import HOOK_KINDS, HookPoint
from polygram.sae.architecture import check_normalize_activations

if TYPE_CHECKING:
    from polygram.sae.saelens import SAELensConfig

__all__ = [
    "FALLBACK_LAYER",
    "FALLBACK_MODEL",
    "HOOK_KINDS",
    "SETTING_SOURCES",
    "SAESettings",
    "Setting",
    "format_hook_name",
    "parse_hook_name",
    "resolve_settings",
]

SettingSource = Literal["explicit", "cfg", "inferred", "default"]
SETTING_SOURCES: tuple[str, ...] = ("explicit", "cfg", "inferred", "default")

#: The fallbacks of regrow / compress-epoch when neither flag nor cfg says (warned).
FALLBACK_MODEL = "gpt2"
FALLBACK_LAYER = 10


def parse_hook_name(name: object) -> tuple[int, str]:
    """``blocks.<L>.hook_<kind>`` → ``(L, kind)``, else :class:`HookError`."""
    hook = HookPoint.parse(name)
    return hook.layer, hook.kind


def format_hook_name(layer: int, kind: str) -> str:
    """The TransformerLens name of hook ``kind`` at block ``layer``."""
    return HookPoint(layer, kind).name


@dataclass(frozen=True)
class Setting:
    """One resolved value and where it came from."""

    value: Any
    source: SettingSource

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source}


def _default(value: Any = None) -> Setting:
    return Setting(value, "default")


@dataclass(frozen=True)
class SAESettings:
    """The resolved settings of one SAE.  ``hook_problem`` says why a cfg
    ``hook_name`` could not be used (it becomes a :class:`HookError` only when
    a hook is needed, so decoder-only commands still run)."""

    architecture: Setting
    k: Setting = _default()
    rescale_acts_by_decoder_norm: Setting = _default(False)
    apply_b_dec_to_input: Setting = _default(True)
    normalize_activations: Setting = _default("none")
    norm_scaling_factor: Setting = _default()
    layer: Setting = _default()
    hook_kind: Setting = _default()
    model_name: Setting = _default()
    context_size: Setting = _default()
    prepend_bos: Setting = _default()
    hook_problem: str | None = None

    @property
    def hook_name(self) -> str | None:
        """``blocks.<L>.hook_<kind>`` once the layer is known (kind defaults to
        ``resid_pre``), else None."""
        if self.layer.value is None:
            return None
        return format_hook_name(self.layer.value, self.hook_kind.value or "resid_pre")

    def to_dict(self) -> dict[str, Any]:
        """``{name: {"value", "source"}}`` for every setting, plus ``hook_name``
        (its source is the layer's); the JSON form reports record."""
        out = {
            f.name: getattr(self, f.name).to_dict()
            for f in fields(self)
            if isinstance(getattr(self, f.name), Setting)
        }
        out["hook_name"] = {"value": self.hook_name, "source": self.layer.source}
        return out

    def require_hook(self, owner: str) -> tuple[int, str]:
        """``(layer, kind)``, or :class:`HookError` when no flag and no cfg gave it."""
        if self.layer.value is None:
            if self.hook_problem is not None:
                raise HookError(f"{owner}: {self.hook_problem}")
            raise HookError(f"{owner}: no --layer and no cfg hook_name; pass layer= (--layer L)")
        return int(self.layer.value), str(self.hook_kind.value or "resid_pre")

    def with_fallbacks(self, owner: str, source: str, *, has_cfg: bool) -> SAESettings:
        """These settings with the warned fallbacks (model ``gpt2``, layer 10,
        ``resid_pre``) filled in where neither flag nor cfg gave a value."""
        used, gaps = [], []
        out = self
        if self.model_name.value is None:
            out = replace(out, model_name=_default(FALLBACK_MODEL))
            used.append(f"--model {FALLBACK_MODEL}")
            gaps.append("model_name")
        if self.layer.value is None:
            if self.hook_problem is not None:
                raise HookError(f"{owner}: {self.hook_problem}")
            out = replace(out, layer=_default(FALLBACK_LAYER))
            used.append(f"--layer {FALLBACK_LAYER}")
            gaps.append("hook_name")
        if out.hook_kind.value is None:
            out = replace(out, hook_kind=_default("resid_pre"))
        if used:
            why = (
                f"the cfg of {source} gives no {' and no '.join(gaps)}"
                if has_cfg
                else f"no cfg.json for {source}"
            )
            warnings.warn(
                f"{why}: using {' '.join(used)} ({out.hook_name}) [{owner}]",
                PolygramDefaultWarning,
                stacklevel=3,
            )
        return out


# ------------------------------------------------------------------ resolution
def _conflict(name: str, flag: str, explicit: Any, cfg_value: Any, cfg: SAELensConfig) -> None:
    raise SettingsConflictError(
        f"{name}={explicit!r} ({flag}) disagrees with the cfg's {cfg_value!r} in {cfg.where}; "
        "drop the flag or pass the cfg's value"
    )


def _declared(
    name: str, flag: str, explicit: Any, cfg_value: Any, cfg: SAELensConfig | None
) -> Setting | None:
    """A forward-defining setting: explicit and cfg must agree."""
    if explicit is not None:
        if cfg is not None and cfg_value is not None and explicit != cfg_value:
            _conflict(name, flag, explicit, cfg_value, cfg)
        return Setting(explicit, "explicit")
    if cfg is not None and cfg_value is not None:
        return Setting(cfg_value, "cfg")
    return None


def _run(name: str, explicit: Any, cfg_value: Any, cfg: SAELensConfig | None) -> Setting:
    """A run setting: explicit wins over the cfg, with a RuntimeWarning when they differ."""
    if explicit is not None:
        if cfg is not None and cfg_value is not None and explicit != cfg_value:
            warnings.warn(
                f"{name}={explicit!r} overrides the cfg's {cfg_value!r} ({cfg.where})",
                RuntimeWarning,
                stacklevel=4,
            )
        return Setting(explicit, "explicit")
    if cfg is not None and cfg_value is not None:
        return Setting(cfg_value, "cfg")
    return _default()


def _explicit_hook(explicit: Mapping[str, Any]) -> tuple[int | None, str | None]:
    name, layer, kind = explicit.get("hook_name"), explicit.get("layer"), explicit.get("hook")
    if kind is not None and kind not in HOOK_KINDS:
        raise HookError(f"hook: {kind!r} is not a hook kind; allowed: {', '.join(HOOK_KINDS)}")
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
        raise ValueError(f"layer: got {layer!r}; must be an integer >= 0 (a block index)")
    if name is None:
        return layer, kind
    n_layer, n_kind = parse_hook_name(name)
    if (layer is not None and layer != n_layer) or (kind is not None and kind != n_kind):
        raise ValueError(
            f"hook_name={name!r} disagrees with layer={layer!r} / hook={kind!r}; give one of "
            "hook_name (--hook-name) or layer + hook (--layer/--hook)"
        )
    return n_layer, n_kind


def _hook_settings(
    explicit: Mapping[str, Any], cfg: SAELensConfig | None
) -> tuple[Setting, Setting, str | None]:
    layer, kind = _explicit_hook(explicit)
    cfg_layer: int | None = None
    cfg_kind: str | None = None
    problem = None
    if cfg is not None and cfg.hook_name is not None:
        try:
            cfg_layer, cfg_kind = parse_hook_name(cfg.hook_name)
        except HookError as e:
            if layer is not None:
                warnings.warn(
                    f"ignoring the cfg hook_name {cfg.hook_name!r} of {cfg.where} ({e}); "
                    "using the explicit hook",
                    RuntimeWarning,
                    stacklevel=4,
                )
            else:
                problem = f"cfg hook_name of {cfg.where}: {e}"
    elif cfg is not None and cfg.layer is not None:
        cfg_layer = cfg.layer  # a pre-v6 hook_layer with no hook name
    flag = "--hook-name" if explicit.get("hook_name") is not None else "--layer"
    if layer is not None and cfg_layer is not None and layer != cfg_layer:
        assert cfg is not None
        _conflict("layer", flag, layer, cfg.hook_name or cfg_layer, cfg)
    if kind is not None and cfg_kind is not None and kind != cfg_kind:
        assert cfg is not None
        _conflict("hook", "--hook", kind, cfg.hook_name, cfg)
    if layer is not None:
        layer_s = Setting(layer, "explicit")
    elif cfg_layer is not None:
        layer_s = Setting(cfg_layer, "cfg")
    else:
        layer_s = _default()
    if kind is not None:
        kind_s = Setting(kind, "explicit")
    elif cfg_kind is not None:
        kind_s = Setting(cfg_kind, "cfg")
    else:
        kind_s = _default("resid_pre") if layer_s.value is not None else _default()
    return layer_s, kind_s, problem


def _cfg_normalize(cfg: SAELensConfig | None) -> str | None:
    """The cfg's mode, pre-v6 booleans mapped (``true`` → ``expected_average_only_in``)."""
    if cfg is None or cfg.normalize_activations is None:
        return None
    return check_normalize_activations(cfg.normalize_activations, cfg.where)


def resolve_settings(
    explicit: Mapping[str, Any],
    cfg: SAELensConfig | None,
    inferred: Mapping[str, Any],
    *,
    scaler: float | None = None,
) -> SAESettings:
    """Settings from ``explicit`` overrides (None = not given), the ``cfg``,
    what the tensors imply (``inferred``: ``architecture``, ``k``) and an
    ``activation_scaler.json`` factor.  Raises :class:`SettingsConflictError`
    on a contradiction with the cfg."""
    declared_arch = None
    if cfg is not None and (
        cfg.format == "v6" or "architecture" in cfg.raw or cfg.architecture != "standard"
    ):
        declared_arch = cfg.architecture
    arch = _declared(
        "architecture", "--architecture", explicit.get("architecture"), declared_arch, cfg
    )
    if arch is None:
        arch = Setting(inferred.get("architecture", "standard"), "inferred")
    k = _declared("k", "--k", explicit.get("k"), None if cfg is None else cfg.k, cfg)
    if k is None:
        k = Setting(inferred["k"], "inferred") if inferred.get("k") is not None else _default()
    forward = {}
    for name, cfg_value, default in (
        (
            "rescale_acts_by_decoder_norm",
            None if cfg is None else cfg.rescale_acts_by_decoder_norm,
            False,
        ),
        ("apply_b_dec_to_input", None if cfg is None else cfg.apply_b_dec_to_input, True),
        ("normalize_activations", _cfg_normalize(cfg), "none"),
    ):
        got = _declared(name, f"{name}=", explicit.get(name), cfg_value, cfg)
        forward[name] = got if got is not None else _default(default)
    nsf = explicit.get("norm_scaling_factor")
    if nsf is not None:
        norm_factor = Setting(float(nsf), "explicit")
    elif scaler is not None:
        norm_factor = Setting(float(scaler), "cfg")
    else:
        norm_factor = _default()
    layer, kind, problem = _hook_settings(explicit, cfg)
    return SAESettings(
        architecture=arch,
        k=k,
        norm_scaling_factor=norm_factor,
        layer=layer,
        hook_kind=kind,
        model_name=_run(
            "model_name", explicit.get("model_name"), None if cfg is None else cfg.model_name, cfg
        ),
        context_size=_run(
            "context_size",
            explicit.get("context_size"),
            None if cfg is None else cfg.context_size,
            cfg,
        ),
        prepend_bos=_run(
            "prepend_bos",
            explicit.get("prepend_bos"),
            None if cfg is None else cfg.prepend_bos,
            cfg,
        ),
        hook_problem=problem,
        **forward,
    )
