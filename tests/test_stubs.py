"""The hand-written ``_core.pyi`` matches the compiled module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from polygram import _core


def test_stubtest_passes() -> None:
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "polygram._core", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_public_kernel_surface() -> None:
    names = {n for n in dir(_core) if not n.startswith("_")}
    assert {"Encoder", "Scan", "KernelError", "set_num_threads", "num_threads"} <= names
    assert issubclass(_core.KernelError, ValueError)


def test_thread_pool_is_configurable() -> None:
    before = _core.num_threads()
    _core.set_num_threads(1)
    try:
        assert _core.num_threads() == 1
    finally:
        _core.set_num_threads(0)
    assert _core.num_threads() == before or before >= 1
