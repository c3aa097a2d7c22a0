"""Device and dtype names (spec 16 §4).

:func:`check_device` and :func:`check_dtype` only read the string, so
constructors can call them without torch; :func:`resolve_device` asks torch
what is actually there (``cuda:N`` against ``torch.cuda.device_count()``).
"""

from __future__ import annotations

import re
import warnings
from typing import Any

__all__ = [
    "DEVICE_HELP",
    "DTYPES",
    "check_device",
    "check_dtype",
    "resolve_device",
    "torch_dtype",
]

#: the accepted device names, for messages and ``--help``
DEVICE_HELP = "auto, cpu, mps, cuda or cuda:N"
#: ``auto`` keeps what ``from_pretrained`` gives (usually the checkpoint's dtype)
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def check_device(requested: object) -> str:
    """The lower-cased device name (``None`` or ``""`` → ``"auto"``), or a
    ``ValueError`` naming what is allowed.  Only the spelling is checked here;
    availability waits for :func:`resolve_device`."""
    if requested is None or requested == "":
        return "auto"
    if isinstance(requested, str):
        name = requested.strip().lower()
        m = _DEVICE.match(name)
        if m and (m.group(2) is None or m.group(1) == "cuda"):
            if m.group(2) is not None:
                return f"cuda:{int(m.group(2))}"
            return name
    raise ValueError(
        f"device: unsupported device {requested!r}; expected one of {DEVICE_HELP} "
        "(case-insensitive) or None"
    )


def check_dtype(requested: object) -> str:
    """The lower-cased dtype name (``None`` → ``"auto"``), or ``ValueError``."""
    if requested is None:
        return "auto"
    if isinstance(requested, str) and requested.strip().lower() in DTYPES:
        return requested.strip().lower()
    raise ValueError(f"dtype: got {requested!r}; expected one of {', '.join(DTYPES)}")


def torch_dtype(torch: Any, name: str) -> Any:
    """The torch dtype for a checked name other than ``auto``."""
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _mps_available(torch: Any) -> bool:
    mps = getattr(getattr(torch, "backends", None), "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(requested: object, *, torch: Any = None) -> str:
    """The device torch will use: ``auto`` → ``cuda``, else ``mps``, else ``cpu``
    (with a RuntimeWarning); an explicit ``cuda``/``cuda:N``/``mps`` must be
    present (``ValueError`` naming the visible count).  ``torch`` defaults to
    the real module (tests pass a stand-in)."""
    name = check_device(requested)
    if torch is None:
        from polygram.runtime._torch import require_torch

        torch = require_torch()
    cuda_ok = bool(torch.cuda.is_available())
    if name.startswith("cuda"):
        if not cuda_ok:
            raise ValueError(f"device={name!r}: no CUDA device is available to torch")
        if ":" in name:
            index = int(name.split(":")[1])
            count = int(torch.cuda.device_count())
            if index >= count:
                visible = "0" if count == 1 else f"0..{count - 1}"
                raise ValueError(
                    f"device={name!r}: {count} CUDA device{'s' if count != 1 else ''} "
                    f"visible ({visible})"
                )
        return name
    if name == "mps":
        if not _mps_available(torch):
            raise ValueError("device='mps': the MPS backend is not available in this torch build")
        return "mps"
    if name == "cpu":
        return "cpu"
    if cuda_ok:
        return "cuda"
    if _mps_available(torch):
        return "mps"
    warnings.warn(
        "device='auto': no CUDA or MPS device found, running on CPU (model forwards will be "
        "slow for real models); pass device='cpu' to silence this",
        RuntimeWarning,
        stacklevel=3,
    )
    return "cpu"
