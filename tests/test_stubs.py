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


def test_kernels_work_in_a_forked_child() -> None:
    import os

    import numpy as np

    from polygram import Dictionary, Experiment, Feature

    feats = [Feature("a", "x", beta=-0.5), Feature("b", "y", beta=0.5)]
    d = Dictionary("F", feats, {"x": ["a"], "y": ["b"]})
    sweep = {"a.phi": np.linspace(0, 1, 300), "b.phi": np.linspace(0, 1, 300)}
    want = Experiment(name="F", dictionary=d, target_pair=("a", "b"), sweep=sweep).run().overlaps
    pid = os.fork()
    if pid == 0:  # child: the parent's worker threads do not exist here
        try:
            got = Experiment(name="F", dictionary=d, target_pair=("a", "b"), sweep=sweep).run()
            os._exit(0 if np.array_equal(got.overlaps, want) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
