"""Helpers for the SAE tests: checkpoint writers (incl. BF16, which numpy
cannot hold), file fingerprints, and the toy fixture path."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOY = FIXTURES / "toy_sae.json"


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Truncate float32 values to their upper 16 bits (the stored BF16 word)."""
    return (np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def bf16_value(bits: np.ndarray) -> np.ndarray:
    """The float32 a BF16 word stands for."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_raw(
    path: Path,
    tensors: dict[str, tuple[str, tuple[int, ...], bytes]],
    metadata: dict[str, str] | None = None,
) -> Path:
    """A safetensors file from raw little-endian bytes (any dtype string)."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    off = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [off, off + len(data)],
        }
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return path


def write_bf16(path: Path, name: str, bits: np.ndarray, **extra: np.ndarray) -> Path:
    """A checkpoint holding ``bits`` (uint16 BF16 words) under ``name``."""
    tensors = {name: ("BF16", bits.shape, bits.astype("<u2").tobytes())}
    for k, v in extra.items():
        tensors[k] = ("F32", v.shape, v.astype("<f4").tobytes())
    return write_raw(path, tensors)


def write_numpy(path: Path, **tensors: np.ndarray) -> Path:
    """A checkpoint written by safetensors itself (keys with dots via dict)."""
    save_file({k.replace("__", "."): np.ascontiguousarray(v) for k, v in tensors.items()}, path)
    return path


def fingerprint(path: Path) -> tuple[str, int, int]:
    """Content hash, size and mtime: what 'input files are never modified' means."""
    st = os.stat(path)
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns


def saelens_folder(
    folder: Path,
    decoder: np.ndarray | None,
    *,
    v6: bool = True,
    key: str = "W_dec",
    d_sae: int | None = None,
    d_in: int | None = None,
    hook: str = "blocks.10.hook_resid_pre",
    cfg_extra: dict[str, Any] | None = None,
) -> Path:
    """A SAELens-layout folder: cfg.json (+ sae_weights.safetensors unless decoder is None)."""
    folder.mkdir(parents=True, exist_ok=True)
    if decoder is not None:
        n, d = (decoder.shape[1], decoder.shape[0]) if key == "decoder.weight" else decoder.shape
        d_sae = n if d_sae is None else d_sae
        d_in = d if d_in is None else d_in
        dd = d_in
        save_file(
            {
                key: np.ascontiguousarray(decoder),
                "W_enc": np.zeros((dd, d_sae), np.float32),
                "b_dec": np.zeros(dd, np.float32),
            },
            folder / "sae_weights.safetensors",
        )
    if v6:
        cfg: dict[str, Any] = {
            "d_in": d_in,
            "d_sae": d_sae,
            "dtype": "float32",
            "device": "cpu",
            "architecture": "jumprelu",
            "normalize_activations": "none",
            "apply_b_dec_to_input": True,
            "metadata": {
                "model_name": "gpt2",
                "hook_name": hook,
                "hook_head_index": None,
                "neuronpedia_id": "gpt2-small/10-res-jb",
            },
        }
    else:
        cfg = {
            "d_in": d_in,
            "d_sae": d_sae,
            "dtype": "float32",
            "architecture": "standard",
            "model_name": "gpt2-small",
            "hook_point": hook,
            "hook_layer": 10,
            "normalize_activations": "none",
        }
    cfg.update(cfg_extra or {})
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder
