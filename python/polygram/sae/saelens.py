"""SAELens folders: ``cfg.json`` + ``sae_weights.safetensors``.

Two config layouts are read:

* **v6** (SAELens ≥ 6): ``d_in``, ``d_sae``, ``dtype``, ``architecture``,
  ``normalize_activations`` at top level; ``hook_name``, ``model_name``,
  ``neuronpedia_id`` under ``metadata``;
* **pre-v6**: one flat object with ``hook_name`` (or the older
  ``hook_point``) and ``hook_layer``.

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
    "WEIGHTS_NAME",
    "SAELensConfig",
    "layer_from_hook",
    "load_sae_lens_folder",
    "read_sae_lens_config",
]

CFG_NAME = "cfg.json"
WEIGHTS_NAME = "sae_weights.safetensors"
_LAYER = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_from_hook(hook_name: str | None) -> int | None:
    """Layer index of a TransformerLens hook name (``blocks.<L>.…``), else None."""
    if not hook_name:
        return None
    m = _LAYER.search(hook_name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class SAELensConfig:
    """What Polygram reads from a SAELens ``cfg.json``.

    ``layer`` comes from the hook name (``blocks.<L>.``); a pre-v6
    ``hook_layer`` is used only when the hook name carries no layer.
    ``raw`` is the whole parsed file, read-only.
    """

    path: Path
    format: Literal["v6", "pre-v6"]
    d_in: int
    d_sae: int
    dtype: str | None = None
    architecture: str | None = None
    hook_name: str | None = None
    layer: int | None = None
    model_name: str | None = None
    neuronpedia_id: str | None = None
    normalize_activations: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _positive_int(path: Path, cfg: Mapping[str, Any], key: str) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise SAEFormatError(
            f"SAELens config {str(path)!r}: {key} is {v!r}; expected a positive integer"
        )
    return v


def _opt_str(path: Path, cfg: Mapping[str, Any], key: str) -> str | None:
    v = cfg.get(key)
    if v is None or isinstance(v, str):
        return v
    raise SAEFormatError(f"SAELens config {str(path)!r}: {key} is {v!r}; expected a string")


def read_sae_lens_config(path: str | os.PathLike[str]) -> SAELensConfig:
    """Parse a SAELens ``cfg.json`` (``path`` is the file or its folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / CFG_NAME
    if not p.is_file():
        raise SAEFileNotFoundError(f"SAELens config {str(p)!r}: no such file")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SAEFormatError(f"SAELens config {str(p)!r}: invalid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise SAEFormatError(
            f"SAELens config {str(p)!r}: expected a JSON object, got {type(cfg).__name__}"
        )
    meta = cfg.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise SAEFormatError(
            f"SAELens config {str(p)!r}: metadata is {type(meta).__name__}; expected an object"
        )
    v6 = isinstance(meta, dict)
    src: Mapping[str, Any] = meta if v6 else cfg  # type: ignore[assignment]
    hook = _opt_str(p, src, "hook_name")
    if hook is None and not v6:
        hook = _opt_str(p, cfg, "hook_point")
    layer = layer_from_hook(hook)
    if layer is None and not v6:
        hl = cfg.get("hook_layer")
        if hl is not None and (isinstance(hl, bool) or not isinstance(hl, int) or hl < 0):
            raise SAEFormatError(
                f"SAELens config {str(p)!r}: hook_layer is {hl!r}; expected a non-negative integer"
            )
        layer = hl
    return SAELensConfig(
        path=p,
        format="v6" if v6 else "pre-v6",
        d_in=_positive_int(p, cfg, "d_in"),
        d_sae=_positive_int(p, cfg, "d_sae"),
        dtype=_opt_str(p, cfg, "dtype"),
        architecture=_opt_str(p, cfg, "architecture"),
        hook_name=hook,
        layer=layer,
        model_name=_opt_str(p, src, "model_name"),
        neuronpedia_id=_opt_str(p, src, "neuronpedia_id"),
        normalize_activations=_opt_str(p, cfg, "normalize_activations"),
        raw=MappingProxyType(cfg),
    )


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
