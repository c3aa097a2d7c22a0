"""Progress bars and loggers: one home for both.

Long loops (validation sweeps, epoch iterations and panels, evaluations,
captures, regrow) wrap their iterable in :func:`progress`; the bar is shown
when ``enabled`` is True, or — with ``enabled=None``, the default everywhere —
when stderr is a terminal (spec 18 §3).  ``progress=False`` / ``--quiet``
turn it off.  Messages go through named loggers (``polygram.<area>``), never
``print``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["get_logger", "progress", "progress_enabled"]

T = TypeVar("T")


def get_logger(area: str) -> logging.Logger:
    """The logger ``polygram.<area>`` (e.g. ``get_logger("epoch")``)."""
    return logging.getLogger(f"polygram.{area}")


def progress_enabled(enabled: bool | None) -> bool:
    """``enabled`` itself, or (None) whether stderr is a TTY."""
    if enabled is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return bool(enabled)


def progress(
    iterable: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    enabled: bool | None = None,
    unit: str = "it",
) -> Iterator[T]:
    """``iterable`` with a tqdm bar on stderr when :func:`progress_enabled`."""
    if not progress_enabled(enabled):
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False) as bar:
        yield from bar
