"""Atomic file output: write to a temp file beside the target, then rename,
so a crash never leaves a half-written artefact and inputs are never touched."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from polygram.errors import OutputError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "ensure_dir",
    "sha256_file",
]


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents); an unusable path raises OutputError."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"output directory {str(p)!r} cannot be created: {e.strerror or e}"
        ) from e
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {str(p)!r} is not writable")
    return p


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """``write(temp_path)`` fills a temp file beside ``path``, which then
    replaces ``path`` in one rename; on any error the temp file is removed.
    For writers that want a file name (e.g. ``safetensors.numpy.save_file``)
    rather than bytes held in memory."""
    p = Path(path)
    ensure_dir(p.parent if str(p.parent) else ".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise OutputError(f"cannot write {str(p)!r}: {e.strerror or e}") from e
    try:
        os.close(fd)
        write(Path(tmp))
        with open(tmp, "rb+") as fh:  # the data is on disk before the rename publishes it
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 16) -> str:
    """Hex sha256 of a file, streamed in 64 KiB chunks (multi-GB checkpoints)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
