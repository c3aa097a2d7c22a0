"""The lazy torch import of the runtime: one place that names the extra."""

from __future__ import annotations

from typing import Any

from polygram.errors import MissingDependencyError

__all__ = ["require_torch"]


def require_torch(what: str = "the model runtime") -> Any:
    """``torch`` (after checking that ``transformers`` imports too), or a
    :class:`~polygram.errors.MissingDependencyError` naming the ``[behavioural]`` extra."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"{what} needs torch and transformers, which are not importable ({e}); "
            "install the extra: pip install 'polygram[behavioural]'"
        ) from e
    return torch
