"""Whole-SAE checkpoint loading for the compression loop (spec 11 §6).

``load_sae_checkpoint`` returns the encoder/decoder tensors of a
``.safetensors`` SAE as float32 arrays under their canonical names and in
canonical orientation, whatever the file calls them or how it lays them out:

=========  ========================  =====================================
canonical  shape                     accepted names (first present wins)
=========  ========================  =====================================
``W_enc``  ``(d_model, n_features)`` ``W_enc``, ``w_enc``, ``encoder.weight``
``b_enc``  ``(n_features,)``         ``b_enc``, ``encoder.bias``
``W_dec``  ``(n_features, d_model)`` ``W_dec``, ``w_dec``, ``decoder.weight``, ``dec``
``b_dec``  ``(d_model,)``            ``b_dec``, ``decoder.bias``
=========  ========================  =====================================

Orientation: ``decoder.weight`` is a PyTorch ``nn.Linear`` weight
``(d_model, n_features)`` and is always transposed; ``encoder.weight`` is
transposed when it has more rows than columns (``nn.Linear`` layout
``(n_features, d_model)``).  A *square* ``encoder.weight``/``decoder.weight``
has no readable feature axis and is refused (``OrientationError``) rather
than guessed.  Tensor bytes are decoded by the same code as the decoder
importer (``safetensors_io``): BF16 exactly by bit shift, F16/F64/integers by
numpy casts, then narrowed to float32.  Files are only opened for reading.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from polygram._io import atomic_write_with
from polygram.errors import CompressionError, OrientationError, SAEFormatError, missing
from polygram.sae.safetensors_io import (
    _DECODE,
    DECODER_KEYS,
    SafetensorsHeader,
    TensorInfo,
    _bad,
    _cross_check,
    _decode_range,
    _first_non_finite,
    read_safetensors_header,
)

__all__ = [
    "CANONICAL_KEYS",
    "SAE_KEY_ALIASES",
    "check_sae_shapes",
    "checkpoint_stem",
    "distinct_output",
    "load_sae_checkpoint",
    "load_sae_state",
    "require_finite_sae",
    "write_sae_state",
]

#: The four tensors of an SAE, in the order the compression code reads them.
CANONICAL_KEYS: tuple[str, ...] = ("W_enc", "b_enc", "W_dec", "b_dec")

#: canonical name → accepted file names, in precedence order.
SAE_KEY_ALIASES: Mapping[str, tuple[str, ...]] = {
    "W_enc": ("W_enc", "w_enc", "encoder.weight"),
    "b_enc": ("b_enc", "encoder.bias"),
    "W_dec": DECODER_KEYS,
    "b_dec": ("b_dec", "decoder.bias"),
}

_NDIM = {"W_enc": 2, "b_enc": 1, "W_dec": 2, "b_dec": 1}


def _pick(header: SafetensorsHeader, key: str) -> TensorInfo:
    for alias in SAE_KEY_ALIASES[key]:
        if alias in header.tensors:
            return header.tensors[alias]
    have = sorted(header.tensors)
    shown = ", ".join(repr(k) for k in have[:20]) + (" …" if len(have) > 20 else "")
    raise _bad(
        header.path,
        f"no {key} tensor: tried aliases {', '.join(repr(a) for a in SAE_KEY_ALIASES[key])}; "
        f"the file holds {shown or 'no tensors'}",
    )


def _transpose(path: Path, key: str, info: TensorInfo) -> bool:
    """Whether the stored tensor must be transposed into canonical orientation."""
    if info.name not in ("encoder.weight", "decoder.weight"):
        return False
    rows, cols = info.shape
    if rows == cols:
        raise OrientationError(
            f"{str(path)!r}: {key} is stored as square {info.name!r} ({rows}×{cols}), so "
            "whether it is an nn.Linear weight (to be transposed) cannot be told; store it "
            f"under the canonical name {key!r} in canonical orientation"
        )
    return info.name == "decoder.weight" or rows > cols


def _decode(path: Path, key: str, info: TensorInfo) -> np.ndarray:
    if info.dtype not in _DECODE:
        raise _bad(
            path,
            f"{key} ({info.name!r}) has dtype {info.dtype}; supported: {', '.join(_DECODE)}",
        )
    if len(info.shape) != _NDIM[key]:
        raise _bad(
            path,
            f"{key} ({info.name!r}) has shape {list(info.shape)}; expected a {_NDIM[key]}-D tensor",
        )
    stored = np.empty(info.shape, dtype=_DECODE[info.dtype][1])
    with open(path, "rb") as fh:
        _decode_range(fh, info, stored.reshape(-1), path)
    out = stored.astype(np.float32, copy=False)  # F64 / wide ints: one narrowing copy
    if out.ndim == 2 and _transpose(path, key, info):
        out = np.ascontiguousarray(out.T)
    bad = _first_non_finite(out.reshape(out.shape[0], -1) if out.ndim == 2 else out[None, :])
    if bad is not None:
        r, c = bad
        where = f"[{r}, {c}]" if out.ndim == 2 else f"[{c}]"
        raise _bad(
            path,
            f"{key} ({info.name!r}) holds a non-finite value at canonical index {where} "
            f"({float(out[r, c] if out.ndim == 2 else out[c])!r}); every value must be finite",
        )
    return out


def load_sae_checkpoint(
    path: str | os.PathLike[str],
    keys: Iterable[str] = CANONICAL_KEYS,
) -> dict[str, np.ndarray]:
    """The tensors ``keys`` of the SAE at ``path`` as float32, canonical layout.

    Every requested key must be found under one of its aliases
    (``SAE_KEY_ALIASES``); otherwise ``SAEFormatError`` (a ``ValueError``)
    names the aliases tried and the file's keys.  Non-finite values are
    refused.  Shapes are checked per tensor (2-D / 1-D) but not against each
    other — see :func:`check_sae_shapes`.
    """
    wanted = list(dict.fromkeys(keys))
    unknown = [k for k in wanted if k not in SAE_KEY_ALIASES]
    if unknown:
        raise ValueError(
            f"keys: {unknown} are not SAE tensor names; allowed: {', '.join(CANONICAL_KEYS)}"
        )
    p = Path(path)
    header = read_safetensors_header(p)
    _cross_check(p, header)
    infos = {k: _pick(header, k) for k in wanted}
    return {k: _decode(p, k, info) for k, info in infos.items()}


def check_sae_shapes(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse a checkpoint whose four tensors disagree on n_features / d_model."""
    n, d = arrays["W_dec"].shape
    want = {"W_enc": (d, n), "b_enc": (n,), "W_dec": (n, d), "b_dec": (d,)}
    for key, shape in want.items():
        if key in arrays and arrays[key].shape != shape:
            raise SAEFormatError(
                f"{str(path)!r}: {key} has canonical shape {list(arrays[key].shape)} but "
                f"W_dec is {n}×{d} (n_features × d_model), so {key} must be {list(shape)}"
            )


def load_sae_state(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint exactly as stored (all keys, original
    dtypes), for the tools that rewrite a checkpoint and keep the rest of it
    (regrow, epoch).  The four SAE tensors must carry their canonical names
    (``polygram compress`` always writes them) and agree in shape."""
    p = Path(path)
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise missing("safetensors", "sae", "reading SAE checkpoints") from None
    try:
        state = load_file(str(p))
    except (TypeError, ValueError) as e:  # e.g. BF16, which numpy cannot hold
        raise SAEFormatError(f"{str(p)!r}: cannot be read as numpy tensors ({e})") from None
    absent = [k for k in CANONICAL_KEYS if k not in state]
    if absent:
        raise SAEFormatError(
            f"{str(p)!r}: needs the canonical tensors {list(CANONICAL_KEYS)}; missing "
            f"{absent} (keys: {sorted(state)}). `polygram compress` writes canonical names."
        )
    if state["W_dec"].ndim != 2:
        raise SAEFormatError(f"{str(p)!r}: W_dec has shape {state['W_dec'].shape}; expected 2-D")
    check_sae_shapes(p, state)
    return state


def require_finite_sae(
    path: str | os.PathLike[str],
    state: Mapping[str, np.ndarray],
    keys: Iterable[str] = CANONICAL_KEYS,
) -> None:
    """Refuse a state whose tensors ``keys`` hold NaN or ±inf (``SAEFormatError``
    naming the tensor and the first bad index): a NaN weight would otherwise
    spread silently through every SAE forward."""
    for key in keys:
        arr = np.asarray(state[key])
        finite = np.isfinite(arr)
        if not finite.all():
            where = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise SAEFormatError(
                f"{str(path)!r}: {key} holds a non-finite value at index {list(where)} "
                f"({float(arr[where])!r}); every value must be finite"
            )


def write_sae_state(path: str | os.PathLike[str], state: Mapping[str, np.ndarray]) -> Path:
    """Write ``state`` as a safetensors file atomically (temp file beside
    ``path``, then one rename)."""
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise missing("safetensors", "sae", "writing SAE checkpoints") from None
    tensors = {k: np.ascontiguousarray(v) for k, v in state.items()}
    return atomic_write_with(path, lambda tmp: save_file(tensors, str(tmp)))


def distinct_output(
    source: str | os.PathLike[str], output: str | os.PathLike[str] | None, owner: str
) -> Path:
    """``output`` resolved, or ``CompressionError`` (prefixed ``owner``) when it
    is missing or resolves to ``source``: checkpoints are never rewritten in place."""
    if output is None:
        raise CompressionError(f"{owner}: output_checkpoint is required")
    out = Path(output).resolve()
    if out == Path(source).resolve():
        raise CompressionError(
            f"{owner}: output_checkpoint {str(out)!r} must differ from the source checkpoint "
            "(the source is never rewritten in place)"
        )
    return out


def checkpoint_stem(path: str | os.PathLike[str]) -> str:
    """The file stem with ``-`` and ``.`` replaced by ``_`` (report names)."""
    return re.sub(r"[-.]", "_", Path(path).stem)
