"""Writing safetensors files with every stored dtype kept (spec 16 §2.4).

F32 / F16 / F64 / integer tensors go through ``safetensors.numpy.save_file``
(so files of those dtypes are byte-identical to what it writes, and golden
checksums stay valid).  numpy has no bfloat16, so a file holding a BF16 (or
an F8, kept as raw bytes) tensor is serialised here: float32 → bf16 by
round-to-nearest-even, ``b = (u + 0x7FFF + ((u >> 16) & 1)) >> 16`` on the
float32 bits ``u`` (NaN kept quiet), header JSON padded with spaces to a
multiple of 8 bytes.  Values that came from BF16 round-trip bit-exactly.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from polygram._io import atomic_write_with
from polygram.errors import missing

__all__ = ["bf16_bits", "stored_bytes_dtype", "write_safetensors"]

_NUMPY = {
    "F16": "<f2", "F32": "<f4", "F64": "<f8", "BOOL": "?",
    "I8": "<i1", "U8": "<u1", "I16": "<i2", "U16": "<u2",
    "I32": "<i4", "U32": "<u4", "I64": "<i8", "U64": "<u8",
}  # fmt: skip


def bf16_bits(a: np.ndarray) -> np.ndarray:
    """The BF16 words (uint16) of ``a`` rounded to nearest, ties to even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(a, dtype=np.float32))
    if nan.any():  # rounding could carry a NaN's payload into the exponent
        rounded[nan] = ((u[nan] >> 16) | 0x0040).astype(np.uint16)
    return rounded


def stored_bytes_dtype(dtype: str) -> str | None:
    """The numpy dtype a stored safetensors dtype is written from (None: BF16 / raw)."""
    return _NUMPY.get(dtype)


def _as_stored(a: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return bf16_bits(a).astype("<u2", copy=False)
    np_dtype = _NUMPY.get(dtype)
    if np_dtype is None:  # raw bytes (F8 variants), written back verbatim
        return np.ascontiguousarray(a, dtype=np.uint8)
    return np.ascontiguousarray(a, dtype=np_dtype)


def _serialise(
    tensors: Mapping[str, tuple[np.ndarray, str, tuple[int, ...]]],
    metadata: Mapping[str, str] | None,
) -> tuple[bytes, list[bytes]]:
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a, dtype, shape = tensors[name]
        data = _as_stored(a, dtype).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, blobs


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, tuple[np.ndarray, str, tuple[int, ...]]],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``{name: (array, stored dtype, stored shape)}`` atomically to
    ``path`` (temp file beside it, fsync, rename)."""
    if all(dtype in _NUMPY for _, dtype, _ in tensors.values()):
        try:
            from safetensors.numpy import save_file
        except ImportError:
            raise missing("safetensors", "sae", "writing SAE checkpoints") from None
        arrays = {
            n: _as_stored(a, dtype).reshape(shape) for n, (a, dtype, shape) in tensors.items()
        }
        meta = dict(metadata) if metadata else None
        return atomic_write_with(path, lambda tmp: save_file(arrays, str(tmp), metadata=meta))
    head, blobs = _serialise(tensors, metadata)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(head)
            for b in blobs:
                fh.write(b)

    return atomic_write_with(path, write)
