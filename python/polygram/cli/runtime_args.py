"""The model-runtime flags shared by every command that runs a model
(``--device``, ``--dtype``, ``--batch-size``; docs/runtime.md).  A bad value
is an argparse usage error: one line, exit 2."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_device_arg", "add_runtime_args", "device_arg", "positive_int"]


def device_arg(text: str) -> str:
    """``--device``: ``auto|cpu|mps|cuda|cuda:N`` (case-insensitive), checked by
    spelling; whether the device is there is checked before the first forward."""
    from polygram.runtime.devices import check_device

    try:
        return check_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= 1")
    return value


def add_device_arg(p: Any) -> None:
    from polygram.runtime.devices import DEVICE_HELP

    p.add_argument(
        "--device",
        type=device_arg,
        default="auto",
        metavar="DEVICE",
        help=f"{DEVICE_HELP} (default auto: cuda, else mps, else cpu)",
    )


def add_runtime_args(p: Any) -> None:
    """``--device``, ``--dtype`` and ``--batch-size``."""
    from polygram.runtime.devices import DTYPES

    add_device_arg(p)
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="model weights dtype (default auto: as the checkpoint loads)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        metavar="N",
        help="prompts per forward, right-padded (default 8)",
    )
