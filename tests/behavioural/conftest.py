"""Fixtures for the behavioural tests (the tiny model, ``tiny_model_dir``, is
a session fixture of the root conftest; the tests that use it are marked
``torch``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from behavioural.beh_helpers import write_cli_inputs, write_sae


@pytest.fixture()
def sae_ckpt(tmp_path: Path) -> Path:
    p = tmp_path / "sae.safetensors"
    write_sae(p)
    return p


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    """``polygram validate`` input files (see ``write_cli_inputs``)."""
    return write_cli_inputs(tmp_path)
