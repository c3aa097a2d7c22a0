"""SAELens folders: ``cfg.json`` + ``sae_weights.safetensors`` (+ an optional
``activation_scaler.json``), and the cfg parser every SAE source shares.

Two config layouts are read (spec 16 §2.2):

* **v6** (SAELens ≥ 6): ``d_in``, ``d_sae``, ``dtype``, ``architecture``,
  ``k``, ``apply_b_dec_to_input``, ``normalize_activations`` at top level;
  ``hook_name``, ``model_name``, ``context_size``, ``prepend_bos``,
  ``hook_head_index``, ``neuronpedia_id`` under ``metadata``;
* **pre-v6**: one flat object with ``hook_name`` (or the older
  ``hook_point``) and ``hook_layer``; a ``topk`` activation function with
  ``activation_fn_kwargs.k`` is a TopK SAE; ``prepend_bos`` defaults to true.

The decoder shape is checked against ``(d_sae, d_in)``; that check is also
what settles the orientation of a transposed or square matrix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from polygram.errors import SAEFileNotFoundError, SAEFormatError
from polygram.sae.records import SAEFeatureRecord
from polygram.sae.safetensors_io import (
    Orientation,
    load_decoder_records,
    read_safetensors_header,
)

__all__ = [
    "CFG_NAME",
    "SCALER_NAME",
    "WEIGHTS_NAME",
    "SAELensConfig",
    "layer_from_hook",
    "load_sae_lens_folder",
    "parse_sae_lens_config",
    "read_sae_lens_config",
]

CFG_NAME = "cfg.json"
WEIGHTS_NAME = "sae_weights.safetensors"
SCALER_NAME = "activation_scaler.json"
_LAYER = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_from_hook(hook_name: str | None) -> int | None:
    """Layer index of a TransformerLens hook name (``blocks.<L>.…``), else None."""
    if not hook_name:
        return None
    m = _LAYER.search(hook_name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class SAELensConfig:
    """What polygram reads from a SAELens ``cfg.json`` (spec 16 §2.2).

    ``format`` is ``v6`` when ``sae_lens_version`` (top level or under
    ``metadata``) is ≥ 6, or — with no version anywhere — when a ``metadata``
    object exists; else ``pre-v6``.  Run fields (``hook_name``,
    ``model_name``, ``context_size``, ``prepend_bos``, ``hook_head_index``)
    come from ``metadata`` in v6 and from the top level in pre-v6.
    ``layer`` comes from the hook name (``blocks.<L>.``); a pre-v6
    ``hook_layer`` / ``hook_point_layer`` is used only when the hook name
    carries no layer.  ``architecture`` is the declared one (pre-v6: a
    ``topk`` activation function makes it ``topk``; default ``standard``;
    v6 without one: None, refused by ``load_sae``); it is checked against
    the four polygram runs only by ``load_sae``, so decoder-row readers keep
    working on any SAE.  ``path`` is None for a cfg given in memory.
    ``raw`` is the whole parsed document, read-only.
    """

    path: Path | None
    format: Literal["v6", "pre-v6"]
    d_in: int
    d_sae: int
    dtype: str | None = None
    architecture: str | None = None
    hook_name: str | None = None
    layer: int | None = None
    model_name: str | None = None
    neuronpedia_id: str | None = None
    normalize_activations: str | bool | None = None
    k: int | None = None
    rescale_acts_by_decoder_norm: bool = False
    apply_b_dec_to_input: bool = True
    hook_head_index: int | None = None
    context_size: int | None = None
    prepend_bos: bool | None = None
    reshape_activations: str | None = None
    sae_lens_version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def where(self) -> str:
        """How messages name this cfg: its path, or ``<in-memory cfg>``."""
        return repr(str(self.path)) if self.path is not None else "<in-memory cfg>"


def _where(path: Path | None) -> str:
    return f"SAELens config {str(path)!r}" if path is not None else "SAELens config <in-memory>"


def _positive_int(path: Path | None, cfg: Mapping[str, Any], key: str) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise SAEFormatError(f"{_where(path)}: {key} is {v!r}; expected a positive integer")
    return v


def _opt_str(path: Path | None, cfg: Mapping[str, Any], key: str) -> str | None:
    v = cfg.get(key)
    if v is None or isinstance(v, str):
        return v
    raise SAEFormatError(f"{_where(path)}: {key} is {v!r}; expected a string")


def _opt_bool(path: Path | None, cfg: Mapping[str, Any], key: str) -> bool | None:
    v = cfg.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise SAEFormatError(f"{_where(path)}: {key} is {v!r}; expected true or false")


def _opt_int(path: Path | None, cfg: Mapping[str, Any], key: str, minimum: int) -> int | None:
    v = cfg.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise SAEFormatError(
            f"{_where(path)}: {key} is {v!r}; expected an integer >= {minimum} or null"
        )
    return v


def _version_major(v: object) -> int | None:
    m = re.match(r"\s*(\d+)", v) if isinstance(v, str) else None
    return int(m.group(1)) if m else None


def _is_v6(cfg: Mapping[str, Any], meta: Mapping[str, Any] | None) -> bool:
    version = cfg.get("sae_lens_version")
    if version is None and meta is not None:
        version = meta.get("sae_lens_version")
    if version is None:
        return meta is not None
    major = _version_major(version)
    return major is not None and major >= 6


def _pre_v6_architecture(path: Path | None, cfg: Mapping[str, Any]) -> tuple[str, int | None]:
    """(architecture, k) of a pre-v6 cfg: a ``topk`` activation function with
    ``activation_fn_kwargs.k`` makes a TopK SAE (SAELens ``handle_pre_6_0_config``)."""
    arch = _opt_str(path, cfg, "architecture") or "standard"
    fn = cfg.get("activation_fn", cfg.get("activation_fn_str"))
    kwargs = cfg.get("activation_fn_kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise SAEFormatError(
            f"{_where(path)}: activation_fn_kwargs is {kwargs!r}; expected an object"
        )
    k = kwargs.get("k")
    if fn == "topk" and arch == "standard":
        arch = "topk"
    return arch, k


def parse_sae_lens_config(doc: object, path: Path | None = None) -> SAELensConfig:
    """A :class:`SAELensConfig` from a parsed cfg document (``path``: where it
    was read, for messages; None for a cfg given in memory)."""
    if not isinstance(doc, dict):
        raise SAEFormatError(f"{_where(path)}: expected a JSON object, got {type(doc).__name__}")
    cfg: Mapping[str, Any] = doc
    meta = cfg.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise SAEFormatError(
            f"{_where(path)}: metadata is {type(meta).__name__}; expected an object"
        )
    v6 = _is_v6(cfg, meta)
    src: Mapping[str, Any] = (meta or {}) if v6 else cfg
    hook = _opt_str(path, src, "hook_name")
    if hook is None and not v6:
        hook = _opt_str(path, cfg, "hook_point")
    layer = layer_from_hook(hook)
    if layer is None and not v6:
        for key in ("hook_layer", "hook_point_layer"):
            hl = cfg.get(key)
            if hl is not None and (isinstance(hl, bool) or not isinstance(hl, int) or hl < 0):
                raise SAEFormatError(
                    f"{_where(path)}: {key} is {hl!r}; expected a non-negative integer"
                )
            if hl is not None:
                layer = hl
                break
    if v6:
        arch, k = _opt_str(path, cfg, "architecture"), cfg.get("k")
        head = src.get("hook_head_index")
        prepend = _opt_bool(path, src, "prepend_bos")
    else:
        arch, k = _pre_v6_architecture(path, cfg)
        head = cfg.get("hook_head_index", cfg.get("hook_point_head_index"))
        prepend = _opt_bool(path, cfg, "prepend_bos")
        prepend = True if prepend is None else prepend
    if head is not None and (isinstance(head, bool) or not isinstance(head, int)):
        raise SAEFormatError(f"{_where(path)}: hook_head_index is {head!r}; expected an integer")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
        raise SAEFormatError(f"{_where(path)}: k is {k!r}; expected an integer in [1, d_sae]")
    norm = cfg.get("normalize_activations")
    if norm is not None and not isinstance(norm, str | bool):
        raise SAEFormatError(
            f"{_where(path)}: normalize_activations is {norm!r}; expected a string"
        )
    apply_b_dec = _opt_bool(path, cfg, "apply_b_dec_to_input")
    version = cfg.get("sae_lens_version", (meta or {}).get("sae_lens_version"))
    return SAELensConfig(
        path=path,
        format="v6" if v6 else "pre-v6",
        d_in=_positive_int(path, cfg, "d_in"),
        d_sae=_positive_int(path, cfg, "d_sae"),
        dtype=_opt_str(path, cfg, "dtype"),
        architecture=arch,
        hook_name=hook,
        layer=layer,
        model_name=_opt_str(path, src, "model_name"),
        neuronpedia_id=_opt_str(path, src, "neuronpedia_id"),
        normalize_activations=norm,
        k=k,
        rescale_acts_by_decoder_norm=bool(
            _opt_bool(path, cfg, "rescale_acts_by_decoder_norm") or False
        ),
        apply_b_dec_to_input=True if apply_b_dec is None else apply_b_dec,
        hook_head_index=head,
        context_size=_opt_int(path, src, "context_size", 1),
        prepend_bos=prepend,
        reshape_activations=_opt_str(path, cfg, "reshape_activations"),
        sae_lens_version=version if isinstance(version, str) else None,
        raw=MappingProxyType(doc),
    )


def read_sae_lens_config(path: str | os.PathLike[str]) -> SAELensConfig:
    """Parse a SAELens ``cfg.json`` (``path`` is the file or its folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / CFG_NAME
    if not p.is_file():
        raise SAEFileNotFoundError(f"SAELens config {str(p)!r}: no such file")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SAEFormatError(f"SAELens config {str(p)!r}: invalid JSON ({e})") from None
    except OSError as e:
        raise SAEFormatError(f"SAELens config {str(p)!r}: cannot be read ({e})") from None
    return parse_sae_lens_config(doc, p)


def load_sae_lens_folder(
    path: str | os.PathLike[str],
    *,
    names: Mapping[int, str] | None = None,
    feature_ids: Iterable[int] | None = None,
    orientation: Orientation | None = None,
) -> dict[int, SAEFeatureRecord]:
    """Decoder rows of a SAELens folder as records (same contract as
    ``load_sae_safetensors``).  The parsed config is available from
    ``read_sae_lens_config(path)``."""
    folder = Path(path)
    if not folder.is_dir():
        raise SAEFileNotFoundError(f"SAELens folder {str(folder)!r}: no such directory")
    cfg = read_sae_lens_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise SAEFileNotFoundError(
            f"SAELens folder {str(folder)!r}: missing {WEIGHTS_NAME} (next to {CFG_NAME})"
        )
    header = read_safetensors_header(weights)
    return load_decoder_records(
        weights,
        header,
        names=names,
        feature_ids=feature_ids,
        orientation=orientation,
        expected=(cfg.d_sae, cfg.d_in),
    )
