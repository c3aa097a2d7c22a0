"""JSON conventions shared by the compression-loop reports (validation,
compression, regrow): compact sorted text, 6-significant-figure floats, and a
``from_json`` source that is either JSON text or a path."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from polygram._io import atomic_write_text

__all__ = ["dumps_report", "load_report_source", "require_keys", "round6"]


def round6(v: float) -> float | None:
    """6 significant figures; non-finite → None (JSON null); zero → 0.0."""
    x = float(v)
    if not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return float(format(x, ".6g"))


def dumps_report(doc: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> str:
    """Compact JSON with sorted keys; also written atomically to ``path``."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    if path is not None:
        atomic_write_text(path, text)
    return text


def _is_file(text: str) -> bool:
    # JSON text that is not an object (a list, say) can be longer than a file
    # name may be; that is "not a file", not an OSError
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def load_report_source(source: object, owner: str) -> Any:
    """Parse ``source``: a ``str`` starting (after whitespace) with ``{`` is
    JSON text; another ``str`` is a path when such a file exists and JSON text
    otherwise; an ``os.PathLike`` is always a path."""
    if isinstance(source, str):
        if source.lstrip().startswith("{") or not _is_file(source):
            text, where = source, "JSON text"
        else:
            text, where = Path(source).read_text(encoding="utf-8"), repr(source)
    elif isinstance(source, os.PathLike):
        p = Path(source)
        text, where = p.read_text(encoding="utf-8"), repr(str(p))
    else:
        raise TypeError(
            f"{owner}: source must be a str (JSON text or a path) or os.PathLike; "
            f"got {type(source).__name__}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{owner}: {where} is not valid JSON (and not an existing file): {e}"
        ) from None


def require_keys(doc: Any, keys: Iterable[str], owner: str) -> Mapping[str, Any]:
    """``doc`` as a mapping holding every key in ``keys`` (ValueError otherwise)."""
    if not isinstance(doc, dict):
        raise ValueError(f"{owner}: expected a JSON object, got {type(doc).__name__}")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise ValueError(f"{owner}: missing required key(s) {missing}")
    return doc
