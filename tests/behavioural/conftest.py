"""Fixtures for the behavioural tests (the tiny model is built once per session;
the tests that use it are marked ``torch``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from behavioural.beh_helpers import build_tiny_gpt2, write_sae


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture()
def sae_ckpt(tmp_path: Path) -> Path:
    p = tmp_path / "sae.safetensors"
    write_sae(p)
    return p
