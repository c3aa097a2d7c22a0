"""``--eval-prompts`` on ``polygram compress`` and ``polygram regrow`` (spec 16 §6.1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from eval_helpers import PROMPTS, confirmed_report, random_sae

from polygram.cli import main
from polygram.sae import write_sae

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::polygram.errors.PolygramSmallSampleWarning"),
    pytest.mark.filterwarnings("ignore:device=.auto.:RuntimeWarning"),
]
D = 32


@pytest.fixture()
def files(tiny_model_dir: Path, tmp_path: Path) -> dict[str, Path]:
    write_sae(random_sae(tiny_model_dir, D), tmp_path / "src.safetensors")
    confirmed_report([0, 1, 2, 3], [(0, 1), (2, 3)]).to_json(tmp_path / "val.json")
    (tmp_path / "eval.txt").write_text("\n".join(PROMPTS) + "\n")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(64, D)).astype(np.float32))
    return {
        "src": tmp_path / "src.safetensors",
        "val": tmp_path / "val.json",
        "eval": tmp_path / "eval.txt",
    }


def test_compress_then_regrow_with_eval_prompts(
    files: dict[str, Path], tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "compress", "--validation-report", str(files["val"]), "--sae-checkpoint", str(files["src"]),
        "--output-checkpoint", str(tmp_path / "c.safetensors"), "--output", str(tmp_path / "c.json"),
        "--eval-prompts", str(files["eval"]), "--device", "cpu", "--prepend-bos",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["eval_before"]["sae_source"] == str(files["src"])
    assert doc["eval_after"]["sae_source"] == str(tmp_path / "c.safetensors")
    assert set(doc["eval_change"]) == {"ce_loss_score", "kl_div_with_sae", "explained_variance",
                                       "l0", "n_dead"}  # fmt: skip
    assert "polygram compress: evaluation on " in err and "CE recovered" in err

    code = main([
        "regrow", "--sae-checkpoint", str(tmp_path / "c.safetensors"), "--output-checkpoint", str(tmp_path / "g.safetensors"),
        "--output", str(tmp_path / "g.json"), "--strategy", "residual_kmeans",
        "--compression-report", str(tmp_path / "c.json"), "--cached-residuals", str(tmp_path / "x.npy"),
        "--eval-prompts", str(files["eval"]), "--model", str(tiny_model_dir), "--device", "cpu",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["eval_before"]["sae_source"] == str(tmp_path / "c.safetensors")
    assert doc["eval_after"]["n_tokens"] == doc["eval_before"]["n_tokens"]
    assert "polygram regrow: evaluation on " in err


def test_an_empty_eval_prompts_file_exits_2(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    code = main([
        "compress", "--validation-report", str(files["val"]), "--sae-checkpoint", str(files["src"]),
        "--output-checkpoint", str(tmp_path / "c.safetensors"), "--output", str(tmp_path / "c.json"),
        "--eval-prompts", str(empty),
    ])  # fmt: skip
    assert code == 2
    assert "--eval-prompts" in capsys.readouterr().err
    assert not (tmp_path / "c.safetensors").exists()
