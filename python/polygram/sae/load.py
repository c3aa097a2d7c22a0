"""``load_sae(source, **overrides)``: every SAE source as one :class:`SAE`
(spec 16 §2.1–§2.3, spec 18 §4).

Sources: an ``SAE`` (returned as is, or re-resolved with the overrides); a
mapping of arrays (canonical or alias names, optional ``cfg=``); a SAELens
folder (``cfg.json`` + ``sae_weights.safetensors`` + optional
``activation_scaler.json``); a ``.safetensors`` file with its sidecar
``<name>.cfg.json`` when present (a ``sae_weights.safetensors`` with a
``cfg.json`` beside it is read as that folder).  Two stages:

1. **stored → canonical**: alias names resolved (first present wins, the
   others kept in ``extra``), ``nn.Linear`` weights transposed (the cfg's
   ``d_in``/``d_sae`` settle the orientation when present), a 0-d
   ``threshold`` broadcast, shapes checked;
2. **canonical → SAE**: the cfg's refusals, architecture inference when no
   cfg or flag names one, settings resolution (explicit → cfg → fallback),
   tensors of another architecture moved to ``extra`` with one warning.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from polygram.errors import (
    OrientationError,
    SAEFileNotFoundError,
    SAEFormatError,
    UnsupportedSAEError,
)
from polygram.sae.architecture import (
    REQUIRED_TENSORS,
    TENSOR_ALIASES,
    check_architecture,
    check_normalize_activations,
)
from polygram.sae.read import StoredTensor, read_all_tensors
from polygram.sae.saelens import (
    CFG_NAME,
    SCALER_NAME,
    WEIGHTS_NAME,
    SAELensConfig,
    parse_sae_lens_config,
    read_sae_lens_config,
)
from polygram.sae.settings import HOOK_KINDS
from polygram.sae.value import SAE, STORED_DTYPE, SAESource, TensorLayout

__all__ = ["OVERRIDES", "load_sae", "sidecar_cfg_path"]

#: The keyword overrides ``load_sae`` accepts (explicit settings, spec 16 §2.3).
OVERRIDES: tuple[str, ...] = (
    "architecture",
    "k",
    "norm_scaling_factor",
    "model_name",
    "layer",
    "hook",
    "hook_name",
    "context_size",
    "prepend_bos",
    "apply_b_dec_to_input",
    "normalize_activations",
    "rescale_acts_by_decoder_norm",
)
_LINEAR = ("encoder.weight", "decoder.weight")
_ATTN_HOOK = re.compile(r"hook_(z|q|k|v)$")
# settings field → override name, for re-resolving an SAE's own explicit settings
_SETTING_TO_OVERRIDE = {"hook_kind": "hook"}
_SUFFIX = ".safetensors"


def sidecar_cfg_path(weights: str | os.PathLike[str]) -> Path:
    """``<name without .safetensors>.cfg.json`` beside ``weights``."""
    p = Path(weights)
    stem = p.name[: -len(_SUFFIX)] if p.name.endswith(_SUFFIX) else p.name
    return p.with_name(stem + ".cfg.json")


# ------------------------------------------------------------- overrides
def _check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise TypeError(f"load_sae: unknown override(s) {unknown}; allowed: {', '.join(OVERRIDES)}")
    out = {k: v for k, v in overrides.items() if v is not None}
    if "architecture" in out:
        check_architecture(out["architecture"], "architecture")
    if "k" in out and (isinstance(out["k"], bool) or not isinstance(out["k"], Integral)):
        raise SAEFormatError(f"k: got {out['k']!r}; expected an integer in [1, d_sae]")
    if "k" in out:
        out["k"] = int(out["k"])
    nsf = out.get("norm_scaling_factor")
    if nsf is not None and (
        isinstance(nsf, bool)
        or not isinstance(nsf, Real)
        or not (math.isfinite(float(nsf)) and float(nsf) > 0)
    ):
        raise ValueError(f"norm_scaling_factor: got {nsf!r}; expected a finite number > 0")
    for name in ("model_name",):
        v = out.get(name)
        if v is not None and (not isinstance(v, str) or not v):
            raise ValueError(f"{name}: got {v!r}; expected a non-empty string")
    cs = out.get("context_size")
    if cs is not None and (isinstance(cs, bool) or not isinstance(cs, Integral) or cs < 1):
        raise ValueError(f"context_size: got {cs!r}; expected an integer >= 1")
    for name in ("prepend_bos", "apply_b_dec_to_input", "rescale_acts_by_decoder_norm"):
        v = out.get(name)
        if v is not None and not isinstance(v, bool):
            raise ValueError(f"{name}: got {v!r}; expected True or False")
    if "normalize_activations" in out:
        out["normalize_activations"] = check_normalize_activations(
            out["normalize_activations"], "normalize_activations"
        )
    if out.get("hook") is not None and out["hook"] not in HOOK_KINDS:
        from polygram.errors import HookError

        raise HookError(
            f"hook: {out['hook']!r} is not a hook kind; allowed: {', '.join(HOOK_KINDS)}"
        )
    return out


# --------------------------------------------------------------- sources
def _cfg_arg(cfg: Any) -> SAELensConfig | None:
    if cfg is None or isinstance(cfg, SAELensConfig):
        return cfg
    if isinstance(cfg, Mapping):
        return parse_sae_lens_config(dict(cfg), None)
    if isinstance(cfg, str | os.PathLike):
        return read_sae_lens_config(cfg)
    raise TypeError(
        f"cfg: got {type(cfg).__name__}; expected a dict, a SAELensConfig or a cfg.json path"
    )


def _read_scaler(path: Path) -> float:
    """``scaling_factor`` of a SAELens ``activation_scaler.json``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SAEFormatError(f"{str(path)!r}: not a readable JSON file ({e})") from None
    v = doc.get("scaling_factor") if isinstance(doc, dict) else None
    if isinstance(v, bool) or not isinstance(v, Real) or not (math.isfinite(v) and float(v) > 0):
        raise SAEFormatError(
            f"{str(path)!r}: scaling_factor is {v!r}; expected a finite number > 0 "
            '(SAELens ActivationScaler format {"scaling_factor": …})'
        )
    return float(v)


def _folder(folder: Path) -> tuple[SAESource, SAELensConfig, float | None]:
    cfg_path, weights, scaler = folder / CFG_NAME, folder / WEIGHTS_NAME, folder / SCALER_NAME
    for p in (cfg_path, weights):
        if not p.is_file():
            raise SAEFileNotFoundError(
                f"SAELens folder {str(folder)!r}: missing {p.name} (a folder needs {CFG_NAME} "
                f"and {WEIGHTS_NAME})"
            )
    cfg = read_sae_lens_config(cfg_path)
    has_scaler = scaler.is_file()
    source = SAESource("folder", folder, weights, cfg_path, scaler if has_scaler else None, None)
    return source, cfg, _read_scaler(scaler) if has_scaler else None


def _path_source(p: Path) -> tuple[SAESource, SAELensConfig | None, float | None]:
    if p.is_dir():
        return _folder(p)
    if not p.exists():
        raise SAEFileNotFoundError(f"SAE source {str(p)!r}: no such file or directory")
    if p.suffix.lower() == ".json":
        raise SAEFormatError(
            f"{str(p)!r}: toy JSON holds decoder rows only; this command needs a full SAE "
            "(a .safetensors file or a SAELens folder)"
        )
    if p.name == WEIGHTS_NAME and (p.parent / CFG_NAME).is_file():
        return _folder(p.parent)
    sidecar = sidecar_cfg_path(p)
    cfg = read_sae_lens_config(sidecar) if sidecar.is_file() else None
    return SAESource("file", p, p, sidecar if cfg else None), cfg, None


def _memory_tensors(arrays: Mapping[str, Any]) -> dict[str, StoredTensor]:
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise SAEFormatError(f"in-memory SAE: tensor name {name!r} is not a string")
        a = np.asarray(value)
        dtype = STORED_DTYPE.get(a.dtype.name)
        if dtype is None:
            raise SAEFormatError(
                f"in-memory SAE: {name} has dtype {a.dtype}; expected a float, integer or "
                "bool array"
            )
        out[name] = StoredTensor(name, dtype, tuple(a.shape), a)
    return out


# -------------------------------------------------- stage 1: stored → canonical
Candidate = tuple[np.ndarray, TensorLayout, StoredTensor]


def _orient(
    canon: str, t: StoredTensor, want: tuple[int, int] | None, where: str, by_cfg: bool
) -> tuple[np.ndarray, bool]:
    """The canonical-orientation matrix of ``t`` and whether it was transposed."""
    if t.array.ndim != 2:
        raise SAEFormatError(
            f"{where}: {canon} ({t.name!r}) has shape {list(t.shape)}; expected a 2-D matrix"
        )
    rows, cols = t.array.shape
    linear = t.name in _LINEAR
    if linear and rows == cols:
        raise OrientationError(
            f"{where}: {canon} is stored as square {t.name!r} ({rows}×{cols}), so whether it is "
            f"an nn.Linear weight (to be transposed) cannot be told; store it under the "
            f"canonical name {canon!r} in canonical orientation"
        )
    if want is None:  # W_dec without a cfg: the name decides
        flip = t.name == "decoder.weight"
    elif (rows, cols) == want:
        flip = False
    elif (cols, rows) == want and (linear or by_cfg):
        flip = True
    else:
        d_in, d_sae = (want[0], want[1]) if canon == "W_enc" else (want[1], want[0])
        said = "cfg.json says" if by_cfg else "W_dec gives"
        raise SAEFormatError(
            f"{where}: {canon} ({t.name!r}) has shape {[rows, cols]}; {said} d_sae={d_sae}, "
            f"d_in={d_in}, so expected {list(want)}"
            + (f" (or {[want[1], want[0]]} transposed)" if linear or by_cfg else "")
        )
    return (np.ascontiguousarray(t.array.T) if flip else t.array), flip


def _canonicalise(
    stored: Mapping[str, StoredTensor], cfg: SAELensConfig | None, where: str
) -> tuple[dict[str, Candidate], dict[str, StoredTensor]]:
    claimed: dict[str, StoredTensor] = {}
    for canon, aliases in TENSOR_ALIASES.items():
        for alias in aliases:
            if alias in stored:
                claimed[canon] = stored[alias]
                break
    taken = {t.name for t in claimed.values()}
    extra = {n: t for n, t in stored.items() if n not in taken}
    if "W_dec" not in claimed:
        have = sorted(stored)
        shown = ", ".join(repr(k) for k in have[:20]) + (" …" if len(have) > 20 else "")
        raise SAEFormatError(
            f"{where}: no W_dec tensor: tried aliases "
            f"{', '.join(repr(a) for a in TENSOR_ALIASES['W_dec'])}; "
            f"it holds {shown or 'no tensors'}"
        )
    for canon, t in claimed.items():
        if t.raw:
            raise SAEFormatError(
                f"{where}: {canon} ({t.name!r}) has dtype {t.dtype}; supported: F32, F16, BF16, "
                "F64 and integer types"
            )
    by_cfg = cfg is not None
    want_dec = (cfg.d_sae, cfg.d_in) if cfg is not None else None
    w_dec, flip = _orient("W_dec", claimed["W_dec"], want_dec, where, by_cfg)
    d_sae, d_in = w_dec.shape
    out: dict[str, Candidate] = {}
    for canon, t in claimed.items():
        lay = TensorLayout(t.name, t.dtype, t.shape, False)
        if canon == "W_dec":
            out[canon] = (w_dec, TensorLayout(t.name, t.dtype, t.shape, flip), t)
            continue
        if canon == "W_enc":
            a, f = _orient("W_enc", t, (d_in, d_sae), where, by_cfg)
            out[canon] = (a, TensorLayout(t.name, t.dtype, t.shape, f), t)
            continue
        want = (d_in,) if canon == "b_dec" else (d_sae,)
        a = t.array
        if canon == "threshold" and a.ndim == 0:
            a = np.full(want, a, dtype=a.dtype)  # a scalar threshold: every feature's
        if a.shape != want:
            said = (
                f"cfg.json says d_in={d_in}, d_sae={d_sae}"
                if by_cfg
                else (f"W_dec is {d_sae}×{d_in} (d_sae × d_in)")
            )
            raise SAEFormatError(
                f"{where}: {canon} ({t.name!r}) has shape {list(t.shape)}; {said}, so expected "
                f"{list(want)}"
            )
        out[canon] = (a, lay, t)
    return out, extra


# --------------------------------------------------- stage 2: canonical → SAE
def _refuse_from_cfg(cfg: SAELensConfig) -> None:
    if cfg.reshape_activations not in (None, "none"):
        raise UnsupportedSAEError(
            f"{cfg.where}: reshape_activations is {cfg.reshape_activations!r}; polygram runs "
            "SAEs on whole residual-stream vectors only (allowed: 'none')"
        )
    if cfg.hook_name is not None and _ATTN_HOOK.search(cfg.hook_name):
        raise UnsupportedSAEError(
            f"{cfg.where}: hook_name is {cfg.hook_name!r}, an attention-head hook (hook_z/q/k/v); "
            f"supported hooks: blocks.<L>.hook_<{'|'.join(HOOK_KINDS)}>"
        )
    if cfg.hook_head_index is not None:
        raise UnsupportedSAEError(
            f"{cfg.where}: hook_head_index is {cfg.hook_head_index!r}; per-head SAEs are not "
            "supported (allowed: null)"
        )


def _k_tensor(extra: Mapping[str, StoredTensor], where: str) -> int | None:
    t = extra.get("k")
    if t is None:
        return None
    a = t.array
    if a.ndim != 0 or a.dtype.kind not in "iu":
        raise SAEFormatError(
            f"{where}: tensor 'k' has dtype {t.dtype} and shape {list(t.shape)}; expected a 0-d "
            "integer (dictionary_learning's TopK k)"
        )
    return int(a)


def _check_scaling_factor(extra: Mapping[str, StoredTensor], where: str) -> None:
    t = extra.get("scaling_factor")
    if t is not None and not (t.array.dtype.kind in "fiu" and bool(np.all(t.array == 1))):
        raise UnsupportedSAEError(
            f"{where}: tensor 'scaling_factor' is not all ones: a pre-v6 finetuning scaling "
            "factor, which polygram does not apply; fold it into the weights first"
        )


def _infer_architecture(cands: Mapping[str, Candidate], k: int | None, where: str) -> str:
    if "threshold" in cands and k is not None:
        raise SAEFormatError(
            f"{where}: both a 'k' tensor and a 'threshold' tensor and no cfg, so the "
            "architecture is ambiguous (topk or jumprelu); pass --architecture (architecture=)"
        )
    if "threshold" in cands:
        return "jumprelu"
    if all(n in cands for n in ("b_gate", "b_mag", "r_mag")):
        return "gated"
    return "topk" if k is not None else "standard"


def _assemble(
    cands: dict[str, Candidate],
    extra: dict[str, StoredTensor],
    cfg: SAELensConfig | None,
    explicit: Mapping[str, Any],
    source: SAESource,
    scaler: float | None,
    partial: bool,
) -> SAE:
    from polygram.sae.settings import resolve_settings

    where = f"SAE {source.display}"
    if cfg is not None:
        _refuse_from_cfg(cfg)
        if cfg.format == "v6" and cfg.architecture is None and "architecture" not in explicit:
            raise SAEFormatError(
                f"{cfg.where}: a v6 cfg needs an architecture (one of standard, jumprelu, topk, "
                "gated); pass --architecture (architecture=)"
            )
        if cfg.normalize_activations is not None:
            check_normalize_activations(cfg.normalize_activations, cfg.where)
    _check_scaling_factor(extra, where)
    k = _k_tensor(extra, where)
    inferred: dict[str, Any] = {"k": k}
    if cfg is None and "architecture" not in explicit:
        inferred["architecture"] = _infer_architecture(cands, k, where)
    settings = resolve_settings(explicit, cfg, inferred, scaler=scaler)
    arch = check_architecture(settings.architecture.value, cfg.where if cfg else where)
    foreign = [n for n in cands if n not in REQUIRED_TENSORS[arch]]
    if foreign:
        names = [cands[n][2].name for n in foreign]
        warnings.warn(
            f"{where}: tensor(s) {names} do not belong to the {arch} architecture; kept "
            "verbatim in extra and not used by the forward",
            UserWarning,
            stacklevel=3,
        )
        for n in foreign:
            t = cands.pop(n)[2]
            extra[t.name] = t
    layout = {n: lay for n, (_, lay, _) in cands.items()}
    layout.update({n: TensorLayout(n, t.dtype, t.shape, False) for n, t in extra.items()})
    return SAE(
        architecture=arch,
        tensors={n: a for n, (a, _, _) in cands.items()},
        extra={n: t.array for n, t in extra.items()},
        layout=layout,
        k=settings.k.value if arch == "topk" else None,
        rescale_acts_by_decoder_norm=bool(settings.rescale_acts_by_decoder_norm.value),
        apply_b_dec_to_input=bool(settings.apply_b_dec_to_input.value),
        normalize_activations=str(settings.normalize_activations.value),
        norm_scaling_factor=settings.norm_scaling_factor.value,
        settings=settings,
        cfg=cfg,
        source=source,
        partial=partial,
    )


def _stored_of(sae: SAE) -> dict[str, StoredTensor]:
    out = {}
    for name, (a, lay) in sae.stored_tensors().items():
        raw = lay.dtype not in STORED_DTYPE.values() and lay.dtype != "BF16"
        out[name] = StoredTensor(name, lay.dtype, lay.shape, a, raw=raw)
    return out


def _explicit_of(sae: SAE) -> dict[str, Any]:
    assert sae.settings is not None
    out = {}
    for field_name, s in vars(sae.settings).items():
        if getattr(s, "source", None) == "explicit":
            out[_SETTING_TO_OVERRIDE.get(field_name, field_name)] = s.value
    return out


# ------------------------------------------------------------------- API
def load_sae(
    source: SAE | Mapping[str, Any] | str | os.PathLike[str],
    *,
    cfg: Mapping[str, Any] | SAELensConfig | str | os.PathLike[str] | None = None,
    partial: bool = False,
    **overrides: Any,
) -> SAE:
    """The :class:`SAE` of ``source`` (see the module doc), with ``overrides``
    (:data:`OVERRIDES`; None = not given) taking precedence over the cfg.

    ``partial=True`` accepts a checkpoint with ``W_dec`` and any subset of
    the other tensors (spec 18 §4): it can be edited and written, not run.
    Raises ``SAEFileNotFoundError`` / ``SAEFormatError`` /
    ``UnsupportedSAEError`` / ``SettingsConflictError`` naming the field.
    """
    explicit = _check_overrides(overrides)
    if isinstance(source, SAE):
        if cfg is not None:
            raise TypeError("load_sae: cfg= is for in-memory arrays; an SAE carries its own cfg")
        if not explicit and (partial or not source.partial):
            return source
        merged = {**_explicit_of(source), **explicit}
        nsf = source.settings.norm_scaling_factor if source.settings else None
        scaler = nsf.value if nsf is not None and nsf.source == "cfg" else None
        cands, extra = _canonicalise(_stored_of(source), source.cfg, f"SAE {source.source.display}")
        return _assemble(cands, extra, source.cfg, merged, source.source, scaler, partial)
    if isinstance(source, Mapping):
        parsed = _cfg_arg(cfg)
        src = SAESource("memory")
        cands, extra = _canonicalise(_memory_tensors(source), parsed, "in-memory SAE")
        return _assemble(cands, extra, parsed, explicit, src, None, partial)
    if isinstance(source, str | os.PathLike):
        if cfg is not None:
            raise TypeError(
                "load_sae: cfg= is for in-memory arrays; a folder or file brings its own "
                "cfg.json (or sidecar <name>.cfg.json)"
            )
        src, parsed, scaler = _path_source(Path(source))
        assert src.weights is not None
        stored, header = read_all_tensors(src.weights)
        src = SAESource(
            src.kind, src.path, src.weights, src.cfg_path, src.scaler_path, header.metadata
        )
        cands, extra = _canonicalise(stored, parsed, repr(str(src.weights)))
        return _assemble(cands, extra, parsed, explicit, src, scaler, partial)
    raise TypeError(
        f"load_sae: source is {type(source).__name__}; expected an SAE, a mapping of arrays, "
        "a SAELens folder or a .safetensors path"
    )
