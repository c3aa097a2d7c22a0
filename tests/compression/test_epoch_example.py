"""examples/compress_epoch_validated.py: the skip branch, and a full run on the tiny model."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from conftest import load_example
from polygram.compression import EpochReport


def load() -> ModuleType:
    return load_example("compress_epoch_validated")


def test_skips_without_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POLYGRAM_SAE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load().main(tmp_path / "out") is None
    assert capsys.readouterr().out.startswith("skip: no SAE checkpoint")
    assert not (tmp_path / "out").exists()


@pytest.mark.torch
def test_full_walk(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from behavioural.beh_helpers import PROMPTS, write_sae

    model = tiny_model_dir
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt, n_sae=24, d_model=32, seed=3)
    report = load().main(
        tmp_path / "out",
        sae_checkpoint=ckpt,
        model_name=str(model),
        layer=2,
        prompts=PROMPTS,
        min_both_fire=2,
        device="cpu",
    )
    assert isinstance(report, EpochReport)
    assert EpochReport.from_json(tmp_path / "out" / "epoch_report.json") == (
        EpochReport.from_json(report.to_json())
    )
    assert (tmp_path / "out" / "sae.epoch.safetensors").is_file()
    assert "iteration 0:" in capsys.readouterr().out
