"""Every tensor of a safetensors file, as stored, with bounded memory.

The header is parsed and validated first (``safetensors_io``: every tensor
lies inside the file and has the byte size its shape says, and
``safetensors.safe_open`` agrees), and the in-memory size of the whole
decode is checked against the memory budget *before* anything is
allocated, so a header that declares a huge shape can never make polygram
allocate it.  Floats are decoded exactly (F16/BF16 widened to float32, F64
kept float64), integer and bool tensors keep their numpy type, and dtypes
numpy cannot hold (F8 variants) are kept as raw bytes so writers can put
them back verbatim.  Files are only opened for reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polygram._budget import result_budget
from polygram.errors import SAEFormatError
from polygram.sae.safetensors_io import (
    _ITEMSIZE,
    SafetensorsHeader,
    TensorInfo,
    _cross_check,
    _decode_range,
    _readinto_exact,
    read_safetensors_header,
)

__all__ = ["StoredTensor", "read_all_tensors"]

_FLOATS = {"F32": np.float32, "F16": np.float32, "BF16": np.float32, "F64": np.float64}
_NATIVE = {
    "BOOL": "?", "I8": "<i1", "U8": "<u1", "I16": "<i2", "U16": "<u2",
    "I32": "<i4", "U32": "<u4", "I64": "<i8", "U64": "<u8",
}  # fmt: skip


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as read: ``array`` (decoded; raw ``uint8`` bytes when
    ``raw``), its stored name, dtype and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    array: np.ndarray
    raw: bool = False


def _memory_bytes(info: TensorInfo) -> int:
    n = math.prod(info.shape)
    if info.dtype in _FLOATS:
        return n * np.dtype(_FLOATS[info.dtype]).itemsize
    return n * _ITEMSIZE.get(info.dtype, 1)


def _read(fh: Any, info: TensorInfo, path: Path) -> StoredTensor:
    shape = tuple(info.shape)
    if info.dtype in _FLOATS:
        out = np.empty(shape, dtype=_FLOATS[info.dtype])
        _decode_range(fh, info, out.reshape(-1), path)
        return StoredTensor(info.name, info.dtype, shape, out)
    fh.seek(info.start)
    if info.dtype in _NATIVE:
        out = np.empty(shape, dtype=_NATIVE[info.dtype])
        _readinto_exact(fh, out.reshape(-1).view(np.uint8).data, path)
        return StoredTensor(
            info.name, info.dtype, shape, out.astype(out.dtype.newbyteorder("="), copy=False)
        )
    raw = np.empty(info.end - info.start, dtype=np.uint8)
    _readinto_exact(fh, raw.data, path)
    return StoredTensor(info.name, info.dtype, shape, raw, raw=True)


def read_all_tensors(
    path: str | Path, budget: int | None = None
) -> tuple[dict[str, StoredTensor], SafetensorsHeader]:
    """Every tensor of the safetensors file ``path`` (see the module doc).
    ``SAEFormatError`` names the file for every problem, including a decode
    that would exceed ``budget`` bytes (default: the polygram memory budget)."""
    p = Path(path)
    header = read_safetensors_header(p)
    _cross_check(p, header)
    unknown = sorted({i.dtype for i in header.tensors.values() if i.dtype not in _ITEMSIZE})
    if unknown:
        raise SAEFormatError(
            f"{str(p)!r}: tensor dtype(s) {unknown} are not safetensors dtypes; known: "
            f"{', '.join(_ITEMSIZE)}"
        )
    need = sum(_memory_bytes(i) for i in header.tensors.values())
    limit = result_budget(budget)
    if need > limit:
        raise SAEFormatError(
            f"{str(p)!r}: decoding its tensors needs {need:,} bytes, over the memory budget "
            f"of {limit:,} bytes (half of physical memory, or $POLYGRAM_MAX_GRID_BYTES)"
        )
    out: dict[str, StoredTensor] = {}
    try:
        with open(p, "rb") as fh:
            for name, info in header.tensors.items():
                out[name] = _read(fh, info, p)
    except OSError as e:
        raise SAEFormatError(f"{str(p)!r}: cannot be read ({e})") from None
    return out, header
