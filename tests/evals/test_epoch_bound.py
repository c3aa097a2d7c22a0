"""The epoch's real quality bound (spec 16 §6.2, spec 18 §3) on the tiny GPT-2."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from eval_helpers import PROMPTS

from polygram.compression import EpochCompressor
from polygram.compression.epoch_report import EpochReport
from polygram.compression.quality import QualityBound, split_prompts
from polygram.errors import CompressionError
from polygram.evals import EvalOptions, EvalResult
from polygram.sae import load_sae

pytestmark = [pytest.mark.torch]


@pytest.fixture()
def sae(tmp_path: Path) -> Path:
    from behavioural.beh_helpers import write_sae

    p = tmp_path / "sae.safetensors"
    write_sae(p, n_sae=24, d_model=32, seed=3)
    return p


def _epoch(sae: Path, model: Path, **kw: Any) -> EpochCompressor:
    args: dict[str, Any] = {
        "layer": 2,
        "model_name": str(model),
        "device": "cpu",
        "polygram_overlap_threshold": 0.0,
        "min_both_fire": 2,
        "progress": False,
        "eval_options": EvalOptions(device="cpu", prepend_bos=True),
    }
    args.update(kw)
    return EpochCompressor(sae, PROMPTS, **args)


def test_a_breach_at_iteration_0_leaves_the_source(
    sae: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    # every gate open: the first iteration zeroes many features, and any rise of KL breaches
    r = _epoch(
        sae, tiny_model_dir, jaccard_threshold=0.0, min_both_fire=0, cosine_threshold=-1.0,
        quality_metric="kl_div_with_sae", quality_tolerance=0.0,
    ).run(tmp_path / "out.safetensors").report  # fmt: skip
    it0 = r.iterations[0]
    assert it0.features_zeroed_this_iteration  # it tried
    assert it0.quality_breached and it0.quality_change > 0
    assert r.convergence_reason == "quality_bound_breached" and len(r.iterations) == 1
    assert r.n_features_zeroed_total == 0
    out, src = load_sae(tmp_path / "out.safetensors"), load_sae(sae)
    for name, a in src.tensors.items():
        np.testing.assert_array_equal(out.tensors[name], a, err_msg=name)
    assert r.eval_after["ce_loss_with_sae"] == r.eval_before["ce_loss_with_sae"]
    assert r.eval_after["sae_source"] == str(tmp_path / "out.safetensors")


def test_the_bound_is_cumulative_against_the_source(
    sae: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    r = _epoch(sae, tiny_model_dir, quality_tolerance=1.0).run(tmp_path / "o.safetensors").report
    assert r.quality_metric == "ce_loss_score" and r.quality_tolerance == 1.0
    assert (r.n_gate_prompts, r.n_eval_prompts) == (6, 2)  # the 75 / 25 split
    before = EvalResult.from_dict(r.eval_before)
    assert before.n_prompts == 2
    compressing = [it for it in r.iterations if it.quality_metric is not None]
    assert compressing
    for it in compressing:
        assert it.quality_reference == pytest.approx(before.ce_loss_score, rel=1e-5)
        assert it.quality_change == pytest.approx(it.quality_value - it.quality_reference)
        assert it.quality_breached == (it.quality_change < -1.0)
        if not it.quality_breached:
            assert it.quality_change >= -1.0
        assert math.isfinite(it.cross_entropy_delta)  # the proxy is still recorded
    doc = json.loads(r.to_json())
    assert doc["quality_metric"] == "ce_loss_score" and doc["eval_after"] is not None
    assert EpochReport.from_json(r.to_json()).to_dict() == doc


def test_the_proxy_is_kept_for_cached_residuals(sae: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((200, 32)).astype(np.float32)
    r = EpochCompressor(
        sae, [], layer=2, cached_residuals=x, polygram_overlap_threshold=0.0, min_both_fire=2,
        progress=False, max_iterations=1,
    ).run(tmp_path / "o.safetensors").report  # fmt: skip
    assert r.quality_metric == "upstream_proxy" and r.quality_tolerance is None
    assert r.eval_before is None and r.eval_after is None
    first = r.iterations[0]
    assert first.quality_value == first.quality_reference and first.quality_change is None


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"quality_tolerance": -0.1}, "quality_tolerance: got -0.1; expected a finite number >= 0"),
        ({"quality_tolerance": math.nan}, "quality_tolerance: got nan"),
        ({"quality_tolerance": math.inf}, "quality_tolerance: got inf"),
        ({"quality_tolerance": "0.1"}, "quality_tolerance: got '0.1'"),
        ({"quality_metric": "ce"}, "quality_metric: got 'ce'; allowed: ce_loss_score, "),
        ({"eval_prompts": []}, "eval_prompts: expected a non-empty sequence"),
        ({"eval_options": {"batch_size": 2}}, "eval_options: got dict"),
    ],
)
def test_bad_bound_settings_are_refused(sae: Path, kw: dict[str, Any], want: str) -> None:
    with pytest.raises(CompressionError, match=want):
        EpochCompressor(sae, PROMPTS, layer=2, model_name="tiny", **kw)


def test_a_real_metric_needs_prompts(sae: Path) -> None:
    x = np.zeros((10, 32), np.float32)
    with pytest.raises(
        CompressionError, match="quality_metric needs eval_prompts|needs eval_prompts"
    ):
        EpochCompressor(sae, [], layer=2, cached_residuals=x, quality_metric="ce_loss_score")


def test_an_undefined_source_score_is_refused_before_any_work() -> None:
    class Session:
        def run(self, saes: Any, kl: bool = True) -> list[Any]:
            class R:
                ce_loss_score = None
                ce_loss_without_sae = 3.0
                ce_loss_with_ablation = 3.0

            return [R()]

    bound = QualityBound("ce_loss_score", 0.01, 2.0, Session())  # type: ignore[arg-type]
    with pytest.raises(CompressionError, match=r"CE_0 = 3.0, CE_z = 3.0"):
        bound.start(object())  # type: ignore[arg-type]


def test_prompt_split() -> None:
    gate, bound = split_prompts([f"p{i}" for i in range(10)])
    assert (len(gate), len(bound)) == (7, 3) and gate[-1] == "p6"
    gate, bound = split_prompts(["a", "b", "c", "d"])
    assert (gate, bound) == (["a", "b", "c"], ["d"])
    with pytest.warns(RuntimeWarning, match="the same prompts gate the panels"):
        gate, bound = split_prompts(["a", "b"])
    assert gate == bound == ["a", "b"]


def test_a_masked_lm_defaults_to_the_kl_bound(tiny_model: Any) -> None:
    from eval_helpers import random_sae

    from polygram.runtime import get_model

    model_dir = tiny_model("esm")
    d = int(get_model(str(model_dir), device="cpu").config.hidden_size)
    bound = QualityBound.open(
        None, None, 2.0, random_sae(model_dir, d, layer=1), ["MKTAYIAK"],
        EvalOptions(device="cpu", prepend_bos=None),
    )  # fmt: skip
    assert bound.metric == "kl_div_with_sae" and bound.tolerance == 0.05


def test_cli_compress_epoch_names_the_metric(
    sae: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from polygram.cli import main

    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    (tmp_path / "e.txt").write_text("\n".join(PROMPTS[:3]) + "\n")
    code = main([
        "compress-epoch", "--sae-checkpoint", str(sae), "--prompts", str(tmp_path / "p.txt"),
        "--eval-prompts", str(tmp_path / "e.txt"), "--model", str(tiny_model_dir), "--layer", "2",
        "--device", "cpu", "--prepend-bos", "--polygram-threshold", "0", "--min-both-fire", "2",
        "--quality-tolerance", "0.5", "--output-checkpoint", str(tmp_path / "o.safetensors"),
        "--output", str(tmp_path / "r.json"),
    ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert (doc["n_gate_prompts"], doc["n_eval_prompts"]) == (8, 3)
    src, out = doc["eval_before"]["ce_loss_score"], doc["eval_after"]["ce_loss_score"]
    assert f"quality ce_loss_score {src:.4f} → {out:.4f} (tolerance 0.5)" in err[-1]


def test_cli_rejects_a_negative_tolerance(
    sae: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from polygram.cli import main

    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    code = main([
        "compress-epoch", "--sae-checkpoint", str(sae), "--prompts", str(tmp_path / "p.txt"),
        "--quality-tolerance", "-1", "--output-checkpoint", str(tmp_path / "o.safetensors"),
        "--output", str(tmp_path / "r.json"),
    ])  # fmt: skip
    assert code == 2 and "quality_tolerance: got -1.0" in capsys.readouterr().err
