"""examples/compress_validated.py and examples/regrow_validated.py (the seed
README's worked examples): the skip branches, and the chain
validation report → compress → regrow on synthetic inputs."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from compression_fixtures import build_report, synth_sae
from safetensors.numpy import load_file

from conftest import load_example
from polygram import CompressionReport, RegrowReport


def load(name: str) -> ModuleType:
    return load_example(name)


def test_skip_branches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POLYGRAM_SAE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load("compress_validated").main(tmp_path / "out") is None
    assert capsys.readouterr().out.startswith("skip: no SAE checkpoint")
    sae = synth_sae(tmp_path / "sae.safetensors")
    assert load("compress_validated").main(tmp_path / "out", sae_checkpoint=sae) is None
    assert "run examples/behavioural_validate.py first" in capsys.readouterr().out
    assert load("regrow_validated").main(tmp_path / "out") is None
    assert "run examples/compress_validated.py first" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def _compress(tmp_path: Path, d: int) -> tuple[Path, CompressionReport]:
    out = tmp_path / "out"
    sae = synth_sae(tmp_path / "sae.safetensors", d=d)
    build_report(8, [(1, 2), (2, 3), (5, 6)]).to_json(out / "validation_report.json")
    report = load("compress_validated").main(out, sae_checkpoint=sae)
    assert isinstance(report, CompressionReport)
    assert report == CompressionReport.from_json(out / "compression_report.json")
    assert [c.zeroed for c in report.plan.clusters] == [(1, 2), (5,)]
    return out, report


def test_compress_then_regrow_from_cached_residuals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, comp = _compress(tmp_path, d=8)
    x = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    rep = load("regrow_validated").main(out, cached_residuals=x)
    assert isinstance(rep, RegrowReport)
    assert rep == RegrowReport.from_json(out / "regrow_report.json")
    assert rep.plan.zeroed_input == (1, 2, 5) and rep.n_slots_repopulated == 3
    assert rep.provenance["compression_report_output_sha256"] == comp.output_checkpoint_sha256
    w = load_file(str(out / "sae.regrown.safetensors"))["W_dec"]
    assert all(abs(np.linalg.norm(w[f]) - 1) < 1e-6 for f in (1, 2, 5))
    printed = capsys.readouterr().out
    assert "3 confirmed pairs → 2 clusters; 3 features zeroed" in printed
    assert "60 residual tokens → 3 slots regrown, 0 left zero" in printed


@pytest.mark.torch
def test_regrow_walk_with_prompts(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("torch")
    from behavioural.beh_helpers import D_MODEL, PROMPTS

    out, _ = _compress(tmp_path, d=D_MODEL)
    rep = load("regrow_validated").main(
        out, model_name=str(tiny_model_dir), layer=2, prompts=PROMPTS, device="cpu"
    )
    assert isinstance(rep, RegrowReport) and rep.plan.n_residual_tokens > 3
    assert rep.n_slots_repopulated + rep.n_slots_left_zero == 3
