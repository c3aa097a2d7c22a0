"""Input checks shared by the compression-loop subcommands (validate,
compress, regrow, compress-epoch): each failure is a :class:`CommandError`,
which the subcommand prints as one ``polygram <cmd>: …`` line (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CommandError", "existing_file", "prompts_file", "residuals_npy"]


class CommandError(Exception):
    """A usage failure a subcommand reports in one line and exit status 2."""


def existing_file(flag: str, value: str) -> Path:
    p = Path(value)
    if not p.is_file():
        raise CommandError(f"{flag}: file not found: {p}")
    return p


def prompts_file(flag: str, value: str) -> list[str]:
    """The prompts of an existing, readable, non-empty prompts file."""
    from polygram.behavioural.prompts import read_prompts

    path = existing_file(flag, value)
    try:
        prompts = read_prompts(path)
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"{flag} {value!r} cannot be read: {e}") from None
    if not prompts:
        raise CommandError(f"{flag} {value!r}: holds no prompt")
    return prompts


def residuals_npy(flag: str, value: str) -> Any:
    """A 2-D float ``.npy`` of residual-stream activations ``(tokens, d_model)``."""
    import numpy as np

    path = existing_file(flag, value)
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CommandError(f"{flag} {str(path)!r}: not a readable .npy ({e})") from None
    if x.ndim != 2 or x.dtype.kind != "f":
        raise CommandError(
            f"{flag} {str(path)!r}: a {x.dtype} array of shape {x.shape}; "
            "expected a 2-D float array (tokens, d_model)"
        )
    return x
