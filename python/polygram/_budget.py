"""Memory budget for arrays a call returns: refuse before allocating.

The limits live in the Rust core (``polygram_core::budget``), which every
kernel also checks before it allocates; this module is their Python face:
:func:`result_budget` is the per-result policy (an explicit override, else
``$POLYGRAM_MAX_GRID_BYTES``, else half of physical memory), never above
:func:`headroom` (available memory, ``RLIMIT_AS`` above the process size, the
memory cgroup's room).
"""

from __future__ import annotations

import os

from polygram import _core
from polygram.errors import GridTooLargeError

__all__ = ["ENV", "check_result_bytes", "headroom", "result_budget"]

ENV = "POLYGRAM_MAX_GRID_BYTES"


def _policy(override: int | None) -> tuple[int, str]:
    if override is not None and (isinstance(override, bool) or int(override) < 0):
        raise GridTooLargeError(f"memory budget: got {override!r}; expected a byte count >= 0")
    try:
        return _core.memory_budget(None if override is None else min(int(override), 2**64 - 1))
    except _core.KernelError as e:  # a malformed $POLYGRAM_MAX_GRID_BYTES
        raise GridTooLargeError(str(e)) from None


def result_budget(override: int | None = None) -> int:
    """Bytes a single result may use (see the module docs)."""
    return _policy(override)[0]


def headroom() -> int:
    """Bytes any one call may allocate now (the hard limit)."""
    return _core.memory_headroom()[0]


def check_result_bytes(
    nbytes: int, what: str, override: int | None = None, remedy: str = "use fewer points"
) -> None:
    """Raise :class:`GridTooLargeError` when ``nbytes`` exceeds the budget;
    ``remedy`` says what the caller can shrink."""
    small = nbytes <= _core.BUDGET_SMALL_BYTES  # as the kernels: not worth reading the limits
    if small and override is None and not os.environ.get(ENV, "").strip():
        return
    budget, source = _policy(override)
    if nbytes > budget:
        raise GridTooLargeError(
            f"{what} would return {nbytes:,} bytes ({nbytes / 2**30:.2f} GiB), over the "
            f"{source} of {budget:,} bytes; {remedy}, or raise the budget (argument or ${ENV}"
            ", within the memory the process may use)"
        )
