"""Memory budget for arrays a scan returns: refuse before allocating."""

from __future__ import annotations

import os

from polygram.errors import GridTooLargeError

__all__ = ["check_result_bytes", "result_budget"]

ENV = "POLYGRAM_MAX_GRID_BYTES"


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def result_budget(override: int | None = None) -> int:
    """Bytes a single scan may return: ``override``, else ``$POLYGRAM_MAX_GRID_BYTES``,
    else half of physical memory."""
    if override is not None:
        return int(override)
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise GridTooLargeError(f"{ENV}={env!r} is not a byte count") from None
    return _physical_memory() // 2


def check_result_bytes(
    nbytes: int, what: str, override: int | None = None, remedy: str = "use fewer points"
) -> None:
    """Raise :class:`GridTooLargeError` when ``nbytes`` exceeds the budget;
    ``remedy`` says what the caller can shrink."""
    budget = result_budget(override)
    if nbytes > budget:
        raise GridTooLargeError(
            f"{what} would return {nbytes:,} bytes ({nbytes / 2**30:.2f} GiB), over the budget "
            f"of {budget:,} bytes; {remedy}, or raise the budget (argument or ${ENV})"
        )
