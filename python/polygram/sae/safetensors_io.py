"""Decoder rows of a ``.safetensors`` SAE checkpoint as ``SAEFeatureRecord``s.

Two paths (spec 05 §5.6 and the port extensions of issue 03):

* **eager** (``feature_ids=None``): the decoder is decoded once into a single
  float32 array (float64 for F64 files) straight from the file bytes, in
  bounded chunks, and every record holds a read-only row view of it — peak
  memory is the float32 size of the decoder plus a 512 KB chunk, whatever the
  stored dtype.
* **sliced** (``feature_ids=[...]``): only the bytes of the selected rows
  (or, for a transposed ``decoder.weight``, the selected columns) are read,
  with positioned reads at the header's offsets — no memory map, so neither
  the heap nor the resident set grows with the file (see ``_read_selected``).

Both paths parse and validate the header themselves and have
``safetensors.safe_open`` vet it as well (it reads no tensor data).

BF16 is widened as ``u16 << 16`` reinterpreted as float32, F16 by numpy's
exact cast; both are exact.  F64 stays float64 (narrowing would round).
Integer decoders are cast to float (8/16-bit → float32, 32/64-bit → float64).
Input files are only ever opened for reading.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from polygram.errors import (
    FeatureSelectionError,
    OrientationError,
    SAEFileNotFoundError,
    SAEFormatError,
    missing,
)
from polygram.sae.records import SAEFeatureRecord, selected_ids

__all__ = [
    "DECODER_KEYS",
    "Orientation",
    "SafetensorsHeader",
    "TensorInfo",
    "load_sae_safetensors",
    "read_safetensors_header",
]

Orientation = Literal["rows", "columns"]

#: Decoder tensor names, first present wins: SAELens, Gemma Scope (lowercase),
#: dictionary_learning (``nn.Linear``, stored ``[d_in, d_sae]``), legacy.
DECODER_KEYS: tuple[str, ...] = ("W_dec", "w_dec", "decoder.weight", "dec")

# Bytes per element of every dtype the safetensors format defines.
_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
# Decoder dtypes we decode exactly: stored little-endian dtype → in-memory dtype.
# Integer decoders (spec 05 §5.6: 0.0.1 maps I8…U64 too) are cast to float:
# 8/16-bit into float32, 32/64-bit into float64 (exact up to 2**53).
_DECODE: dict[str, tuple[str, type[np.floating[Any]]]] = {
    "F32": ("<f4", np.float32),
    "F16": ("<f2", np.float32),
    "BF16": ("<u2", np.float32),
    "F64": ("<f8", np.float64),
    "I8": ("<i1", np.float32),
    "U8": ("<u1", np.float32),
    "I16": ("<i2", np.float32),
    "U16": ("<u2", np.float32),
    "I32": ("<i4", np.float64),
    "U32": ("<u4", np.float64),
    "I64": ("<i8", np.float64),
    "U64": ("<u8", np.float64),
}
_MAX_HEADER = 100_000_000  # the format's own limit
_CHUNK = 1 << 18  # elements per conversion chunk (512 KB of F16/BF16)
_CHECK = 1 << 16  # elements per finiteness-check block (a 64 KB boolean temporary)


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's header entry, with absolute byte offsets into the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """The parsed and validated JSON header of a safetensors file."""

    path: Path
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str] | None
    data_start: int


def _require_safetensors() -> Any:
    try:
        import safetensors
    except ImportError:
        raise missing("safetensors", "sae", "loading SAE checkpoints") from None
    return safetensors


def _bad(path: Path, problem: str) -> SAEFormatError:
    return SAEFormatError(f"{str(path)!r}: {problem}")


def read_safetensors_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Parse and validate the header of ``path`` without reading any tensor data.

    Checks everything the data reads below rely on: the 8-byte length, that
    the header is a JSON object, every entry's dtype/shape/offsets, and that
    every tensor lies inside the file and has the byte size its shape says.
    """
    p = Path(path)
    if not p.exists():
        raise SAEFileNotFoundError(f"SAE checkpoint {str(p)!r}: no such file")
    if not p.is_file():
        raise SAEFormatError(f"SAE checkpoint {str(p)!r}: not a regular file")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _bad(p, f"not a safetensors file: {size} bytes, shorter than the 8-byte header")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise _bad(
                p,
                f"not a safetensors file or corrupted header: header length {n} exceeds "
                f"the format's {_MAX_HEADER}-byte limit",
            )
        if 8 + n > size:
            raise _bad(
                p,
                f"truncated or not a safetensors file: header says {n} bytes but only "
                f"{size - 8} follow the length field",
            )
        raw = fh.read(n)
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(
            p, f"not a safetensors file or corrupted header: the header is not JSON ({e})"
        ) from None
    if not isinstance(doc, dict):
        raise _bad(p, f"corrupted header: expected a JSON object, got {type(doc).__name__}")
    data_start = 8 + n
    data_len = size - data_start
    meta = doc.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
    ):
        raise _bad(p, "corrupted header: __metadata__ must map strings to strings")
    tensors: dict[str, TensorInfo] = {}
    for name, entry in doc.items():
        tensors[name] = _tensor_info(p, name, entry, data_start, data_len)
    return SafetensorsHeader(p, tensors, meta, data_start)


def _tensor_info(p: Path, name: str, entry: Any, data_start: int, data_len: int) -> TensorInfo:
    where = f"corrupted header: tensor {name!r}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise _bad(p, f"{where}: expected an object with dtype, shape and data_offsets")
    dtype, shape, offs = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str):
        raise _bad(p, f"{where}: dtype {dtype!r} is not a string")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _bad(p, f"{where}: shape {shape!r} is not a list of non-negative integers")
    if (
        not isinstance(offs, list)
        or len(offs) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
        or not 0 <= offs[0] <= offs[1]
    ):
        raise _bad(p, f"{where}: data_offsets {offs!r} is not [begin, end] with 0 <= begin <= end")
    if offs[1] > data_len:
        raise _bad(
            p,
            f"truncated: tensor {name!r} ends at data byte {offs[1]} but the file holds "
            f"only {data_len} data bytes",
        )
    if dtype in _ITEMSIZE:
        want = math.prod(shape) * _ITEMSIZE[dtype]
        if offs[1] - offs[0] != want:
            raise _bad(
                p,
                f"{where}: {offs[1] - offs[0]} data bytes for shape {shape} of {dtype} "
                f"(expected {want})",
            )
    return TensorInfo(name, dtype, tuple(shape), data_start + offs[0], data_start + offs[1])


def pick_decoder(header: SafetensorsHeader) -> TensorInfo:
    """The decoder tensor by key precedence ``W_dec > w_dec > decoder.weight > dec``."""
    for key in DECODER_KEYS:
        if key in header.tensors:
            return header.tensors[key]
    have = sorted(header.tensors)
    shown = ", ".join(repr(k) for k in have[:20]) + (" …" if len(have) > 20 else "")
    raise _bad(
        header.path,
        f"no decoder tensor: tried {', '.join(repr(k) for k in DECODER_KEYS)}; "
        f"the file holds {shown or 'no tensors'}",
    )


def resolve_orientation(
    path: Path,
    info: TensorInfo,
    orientation: str | None,
    expected: tuple[int, int] | None = None,
) -> Orientation:
    """Whether features are the rows or the columns of ``info``.

    ``expected`` is ``(d_sae, d_in)`` from a SAELens config.  Without config
    or explicit ``orientation``: ``decoder.weight`` is an ``nn.Linear``
    weight (``[d_in, d_sae]``, features are columns) and must be non-square;
    every other key is rows = features, square or not.
    """
    if orientation not in (None, "rows", "columns"):
        raise ValueError(
            f"orientation: got {orientation!r}; expected 'rows' (features are rows, "
            "SAELens [d_sae, d_in]), 'columns' (nn.Linear [d_in, d_sae]) or None"
        )
    if len(info.shape) != 2:
        raise _bad(
            path, f"decoder {info.name!r} has shape {list(info.shape)}; expected a 2-D matrix"
        )
    rows, cols = info.shape
    if expected is not None:
        d_sae, d_in = expected
        fits = {"rows": (rows, cols) == (d_sae, d_in), "columns": (rows, cols) == (d_in, d_sae)}
        if orientation is not None:
            if not fits[orientation]:
                raise _bad(
                    path,
                    f"decoder {info.name!r} has shape {[rows, cols]}, which does not fit "
                    f"orientation={orientation!r} with cfg d_sae={d_sae}, d_in={d_in}",
                )
            return orientation  # type: ignore[return-value]
        if fits["rows"] and fits["columns"]:
            if info.name == "decoder.weight":
                raise OrientationError(
                    f"{str(path)!r}: decoder 'decoder.weight' is square ({rows}×{cols}) and "
                    f"cfg has d_sae = d_in = {d_sae}, so its feature axis is ambiguous; pass "
                    "orientation='rows' or 'columns'"
                )
            return "rows"
        if fits["rows"]:
            return "rows"
        if fits["columns"]:
            return "columns"
        raise _bad(
            path,
            f"decoder {info.name!r} has shape {[rows, cols]}; cfg.json says d_sae={d_sae}, "
            f"d_in={d_in}, so expected [{d_sae}, {d_in}] (or [{d_in}, {d_sae}] transposed)",
        )
    if orientation is not None:
        return orientation  # type: ignore[return-value]
    if info.name != "decoder.weight":
        return "rows"
    if rows == cols:
        raise OrientationError(
            f"{str(path)!r}: decoder 'decoder.weight' is square ({rows}×{cols}): as an "
            "nn.Linear weight its features would be columns, but nothing in the file says so; "
            "pass orientation='rows' or 'columns', or load the SAELens folder with its cfg.json"
        )
    return "columns"


def _check_names(names: Mapping[int, str] | None, n: int, path: Path) -> dict[int, str]:
    if names is None:
        return {}
    if not isinstance(names, Mapping):
        raise FeatureSelectionError(
            f"names: got {type(names).__name__}; expected a mapping feature id → name"
        )
    out: dict[int, str] = {}
    for k, v in names.items():
        if isinstance(k, bool) or not isinstance(k, Integral):
            raise FeatureSelectionError(f"names: key {k!r} is not an integer feature id")
        if not 0 <= int(k) < n:
            raise FeatureSelectionError(
                f"names: feature id {k} out of range; {str(path)!r} holds features 0..{n - 1}"
            )
        if not isinstance(v, str) or not v:
            raise FeatureSelectionError(f"names[{k}]: got {v!r}; expected a non-empty string")
        out[int(k)] = v
    return out


def _check_ids(feature_ids: Iterable[int], n: int, path: Path) -> list[int]:
    ids = selected_ids(feature_ids)
    out_of_range = [i for i in ids if not 0 <= i < n]
    if out_of_range:
        raise FeatureSelectionError(
            f"feature_ids: {out_of_range} out of range; {str(path)!r} holds features 0..{n - 1}"
        )
    return ids


def _readinto_exact(fh: BinaryIO, buf: memoryview, path: Path) -> None:
    got = 0
    while got < len(buf):
        k = fh.readinto(buf[got:])  # type: ignore[attr-defined]
        if not k:
            raise _bad(path, "truncated: the file ended inside the decoder data")
        got += k


def _decode_range(fh: BinaryIO, info: TensorInfo, out: np.ndarray, path: Path) -> None:
    """Decode all of ``info``'s elements into the flat array ``out``."""
    fh.seek(info.start)
    stored = _DECODE[info.dtype][0]
    if np.dtype(stored) == out.dtype:  # F32→f32, F64→f64: read straight into place
        _readinto_exact(fh, out.data.cast("B"), path)
        return
    buf = np.empty(min(_CHUNK, out.size), dtype=stored)
    for lo in range(0, out.size, _CHUNK):
        m = min(_CHUNK, out.size - lo)
        _readinto_exact(fh, buf[:m].data.cast("B"), path)
        if info.dtype == "BF16":
            bits = out[lo : lo + m].view(np.uint32)
            bits[...] = buf[:m]
            bits <<= 16
        else:
            out[lo : lo + m] = buf[:m]


def _widen_raw(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw


def _pread(fh: Any, size: int, offset: int, path: Path) -> bytes:
    if hasattr(os, "pread"):
        data = os.pread(fh.fileno(), size, offset)
    else:  # pragma: no cover - Windows
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise _bad(path, "truncated: the file ended inside the decoder data")
    return data


def _read_selected(
    fh: Any, info: TensorInfo, ids: list[int], orient: Orientation, out: np.ndarray, path: Path
) -> None:
    """Decode just the selected rows (or columns) into ``out`` (one row each).

    Positioned reads of exactly the bytes needed, no memory map: on kernels
    that map page-cache folios whole, an mmap slice (``safe_open().get_slice``
    included) maps ~2 MB per touched row, and a column read maps the file.
    """
    stored = _DECODE[info.dtype][0]
    item = np.dtype(stored).itemsize
    rows, cols = info.shape
    for k, fid in enumerate(ids):
        if orient == "rows":
            raw = _pread(fh, cols * item, info.start + fid * cols * item, path)
        else:  # one element per stored row: the column of a [d_in, d_sae] matrix
            raw = b"".join(
                _pread(fh, item, info.start + (r * cols + fid) * item, path) for r in range(rows)
            )
        out[k] = _widen_raw(np.frombuffer(raw, dtype=stored), info.dtype)


def _cross_check(path: Path, header: SafetensorsHeader) -> None:
    """Let safetensors' own parser vet the header too (it reads no tensor data)."""
    safetensors = _require_safetensors()
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # SafetensorError, OSError, a Rust PanicException: name the file
        raise _bad(path, f"not a valid safetensors file: {e}") from None
    if keys != set(header.tensors):
        raise _bad(path, "corrupted header: safetensors and Polygram read different tensor lists")


def _first_non_finite(arr: np.ndarray) -> tuple[int, int] | None:
    """(row, col) of the first non-finite element, checked in row blocks so no
    full-size boolean temporary is ever allocated."""
    step = max(1, _CHECK // max(1, arr.shape[1]))
    for lo in range(0, arr.shape[0], step):
        block = arr[lo : lo + step]
        ok = np.isfinite(block)
        if not ok.all():
            r, c = np.argwhere(~ok)[0]
            return lo + int(r), int(c)
    return None


def _records(
    path: Path,
    info: TensorInfo,
    ids: list[int],
    matrix: np.ndarray,
    names: dict[int, str],
) -> dict[int, SAEFeatureRecord]:
    """Records over the rows of ``matrix`` (row k ↔ feature ids[k])."""
    bad = _first_non_finite(matrix)
    if bad is not None:
        r, c = bad
        raise _bad(
            path,
            f"decoder {info.name!r}: feature {ids[r]} component {c} is {float(matrix[r, c])!r}; "
            "every value must be finite",
        )
    matrix.flags.writeable = False
    return {
        fid: SAEFeatureRecord._trusted(fid, names.get(fid, f"feat_{fid}"), matrix[k])
        for k, fid in enumerate(ids)
    }


def load_decoder_records(
    path: Path,
    header: SafetensorsHeader,
    *,
    names: Mapping[int, str] | None,
    feature_ids: Iterable[int] | None,
    orientation: str | None,
    expected: tuple[int, int] | None,
) -> dict[int, SAEFeatureRecord]:
    """Shared body of the file and folder loaders (header already parsed)."""
    _cross_check(path, header)
    info = pick_decoder(header)
    orient = resolve_orientation(path, info, orientation, expected)
    if info.dtype not in _DECODE:
        raise _bad(
            path,
            f"decoder {info.name!r} has dtype {info.dtype}; supported: {', '.join(_DECODE)}",
        )
    rows, cols = info.shape
    n, dim = (rows, cols) if orient == "rows" else (cols, rows)
    name_map = _check_names(names, n, path)
    target = _DECODE[info.dtype][1]

    if feature_ids is None:
        stored = np.empty((rows, cols), dtype=target)
        with open(path, "rb") as fh:
            _decode_range(fh, info, stored.reshape(-1), path)
        matrix = stored if orient == "rows" else stored.T  # a view: no second copy
        return _records(path, info, list(range(n)), matrix, name_map)

    ids = _check_ids(feature_ids, n, path)
    out = np.empty((len(ids), dim), dtype=target)
    with open(path, "rb", buffering=0) as fh:
        _read_selected(fh, info, ids, orient, out, path)
    return _records(path, info, ids, out, name_map)


def load_sae_safetensors(
    path: str | os.PathLike[str],
    *,
    names: Mapping[int, str] | None = None,
    feature_ids: Iterable[int] | None = None,
    orientation: Orientation | None = None,
) -> dict[int, SAEFeatureRecord]:
    """Decoder rows of a safetensors SAE (or a SAELens folder) as records.

    ``names`` maps feature id → name (default ``feat_<id>``).  With
    ``feature_ids`` only those features are read, keyed and ordered as
    given; without, every feature is loaded (ids ``0 … n−1``).
    ``orientation`` (``"rows"``/``"columns"``: where the features are)
    overrides the key-based rule; it is required for a square
    ``decoder.weight``.  A directory is read as a SAELens folder
    (``cfg.json`` + ``sae_weights.safetensors``).
    """
    p = Path(path)
    if p.is_dir():
        from polygram.sae.saelens import load_sae_lens_folder

        return load_sae_lens_folder(
            p, names=names, feature_ids=feature_ids, orientation=orientation
        )
    header = read_safetensors_header(p)
    return load_decoder_records(
        p, header, names=names, feature_ids=feature_ids, orientation=orientation, expected=None
    )
