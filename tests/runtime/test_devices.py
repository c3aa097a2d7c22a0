"""Device and dtype names (torch-free checks) and device resolution against a
stand-in torch (so the CUDA and MPS branches run on a CPU-only machine)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from polygram.runtime import DTYPES, check_device, check_dtype, resolve_device


def stub_torch(cuda: int | bool, mps: bool | None) -> Any:
    """A stand-in torch: ``cuda`` visible CUDA devices (True = 1), MPS
    available / not / absent from the build (None)."""
    count = int(cuda)
    backends = (
        SimpleNamespace()
        if mps is None
        else SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps))
    )
    return SimpleNamespace(
        cuda=SimpleNamespace(is_available=lambda: count > 0, device_count=lambda: count),
        backends=backends,
    )


@pytest.mark.parametrize(
    ("given", "want"),
    [
        (None, "auto"),
        ("", "auto"),
        ("auto", "auto"),
        ("AUTO", "auto"),
        ("cpu", "cpu"),
        (" Cpu ", "cpu"),
        ("mps", "mps"),
        ("cuda", "cuda"),
        ("CUDA:1", "cuda:1"),
        ("cuda:0", "cuda:0"),
        ("cuda:07", "cuda:7"),
    ],
)
def test_check_device_accepts(given: Any, want: str) -> None:
    assert check_device(given) == want


@pytest.mark.parametrize(
    "bad", ["tpu", "gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "mps:1", "cuda 1", 3, 1.0, b"cpu"]
)
def test_check_device_refuses(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"unsupported device .*auto, cpu, mps, cuda or cuda:N"):
        check_device(bad)


def test_check_dtype() -> None:
    assert DTYPES == ("auto", "float32", "bfloat16", "float16")
    assert check_dtype(None) == "auto"
    assert check_dtype("BFloat16") == "bfloat16"
    for bad in ("fp32", "float64", "int8", 32, ""):
        with pytest.raises(ValueError, match="expected one of auto, float32, bfloat16, float16"):
            check_dtype(bad)


def test_resolve_explicit() -> None:
    two = stub_torch(cuda=2, mps=True)
    assert resolve_device("cuda", torch=two) == "cuda"
    assert resolve_device("CUDA:1", torch=two) == "cuda:1"
    assert resolve_device("mps", torch=two) == "mps"
    assert resolve_device("cpu", torch=two) == "cpu"
    with pytest.raises(ValueError, match=r"device='cuda:3': 2 CUDA devices visible \(0\.\.1\)"):
        resolve_device("cuda:3", torch=two)
    with pytest.raises(ValueError, match=r"device='cuda:2': 2 CUDA devices"):
        resolve_device("cuda:2", torch=two)
    with pytest.raises(ValueError, match=r"device='cuda:1': 1 CUDA device visible \(0\)"):
        resolve_device("cuda:1", torch=stub_torch(cuda=1, mps=False))
    none = stub_torch(cuda=0, mps=False)
    assert resolve_device("cpu", torch=none) == "cpu"  # silent
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda", torch=none)
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda:0", torch=none)
    with pytest.raises(ValueError, match="MPS backend is not"):
        resolve_device("mps", torch=none)
    with pytest.raises(ValueError, match="MPS backend is not"):
        resolve_device("mps", torch=stub_torch(cuda=0, mps=None))
    with pytest.raises(ValueError, match="unsupported device"):
        resolve_device("tpu", torch=none)


def test_resolve_auto() -> None:
    assert resolve_device(None, torch=stub_torch(cuda=1, mps=True)) == "cuda"
    assert resolve_device("auto", torch=stub_torch(cuda=0, mps=True)) == "mps"
    for req in (None, "auto", "", "AUTO"):
        with pytest.warns(RuntimeWarning, match="running on CPU"):
            assert resolve_device(req, torch=stub_torch(cuda=0, mps=False)) == "cpu"


@pytest.mark.torch
def test_resolve_with_real_torch() -> None:
    torch = pytest.importorskip("torch")
    assert resolve_device("cpu") == "cpu"
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=f"cuda:{n}"):
        resolve_device(f"cuda:{n}")
