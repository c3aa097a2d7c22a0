"""examples/behavioural_validate.py: the skip branch, and a full run on the tiny model."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from behavioural.beh_helpers import PANEL, PROMPTS, write_sae
from conftest import load_example
from polygram.behavioural import ValidationReport


def load() -> ModuleType:
    return load_example("behavioural_validate")


def test_skips_without_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POLYGRAM_SAE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load().main(tmp_path / "out") is None
    assert capsys.readouterr().out.startswith("skip: no SAE checkpoint")
    assert not (tmp_path / "out").exists()


@pytest.mark.torch
def test_full_walk(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("torch")
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    with pytest.warns(RuntimeWarning, match="feature 5 fires on 0"):
        report = load().main(
            tmp_path / "out",
            sae_checkpoint=ckpt,
            model_name=str(tiny_model_dir),
            layer=2,
            feature_ids=PANEL,
            prompts=PROMPTS,
            min_both_fire=2,
            device="cpu",
        )
    assert isinstance(report, ValidationReport)
    assert ValidationReport.from_json(tmp_path / "out" / "validation_report.json") == (
        ValidationReport.from_json(report.to_json())
    )
    assert (tmp_path / "out" / "validation_pairs.csv").is_file()
