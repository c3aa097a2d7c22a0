"""Prompt files for the model-facing tools (validate, regrow, compress-epoch)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["read_prompts"]


def read_prompts(path: str | os.PathLike[str]) -> list[str]:
    """One prompt per line, stripped; blank lines and ``#`` comments skipped."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            out.append(s)
    return out
