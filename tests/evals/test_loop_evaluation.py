"""The loop measures what it changes (spec 16 §6.1): Compressor and Regrower
with ``evaluation=`` record eval_before / eval_after / eval_change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from eval_helpers import PROMPTS, confirmed_report, random_sae

from polygram.compression import CompressionReport, Compressor
from polygram.compression.regrow import Regrower, RegrowReport
from polygram.errors import CompressionError, EvalError
from polygram.evals import EvalOptions, EvalRequest, EvalResult, evaluate
from polygram.evals.request import CHANGE_METRICS
from polygram.sae import load_sae, write_sae

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::polygram.errors.PolygramSmallSampleWarning"),
]
D = 32
OPTS = EvalOptions(device="cpu", prepend_bos=True)


@pytest.fixture()
def source(tiny_model_dir: Path, tmp_path: Path) -> Path:
    write_sae(random_sae(tiny_model_dir, D), tmp_path / "src")
    return tmp_path / "src"


def _request() -> EvalRequest:
    return EvalRequest(PROMPTS, options=OPTS)


def _check_blocks(report: Any, source: Path, output: Path) -> None:
    before, after = (
        EvalResult.from_dict(report.eval_before),
        EvalResult.from_dict(report.eval_after),
    )
    assert before.sae_source == str(source)
    assert after.sae_source == str(output) and after.sae_sha256 == report.output_checkpoint_sha256
    # both on the same tokens
    assert before.n_tokens == after.n_tokens
    assert before.ce_loss_without_sae == after.ce_loss_without_sae
    for k in CHANGE_METRICS:
        a, b = getattr(after, k), getattr(before, k)  # both rounded to 6 significant figures
        assert report.eval_change[k] == pytest.approx(a - b, abs=1e-5 * (abs(a) + abs(b)) + 1e-6)
    # the output evaluated on its own gives the same numbers
    alone = evaluate(output, PROMPTS, options=OPTS)
    assert alone.ce_loss_with_sae == pytest.approx(after.ce_loss_with_sae, rel=1e-5)


def test_compressor_records_before_after_and_change(source: Path, tmp_path: Path) -> None:
    report = confirmed_report([0, 1, 2, 3], [(0, 1), (2, 3)])
    out = tmp_path / "out"
    r = Compressor(report, source, evaluation=_request()).run(out).report
    _check_blocks(r, source, out)
    # two features silenced: they can no longer fire
    assert r.eval_change["l0"] <= 0
    back = CompressionReport.from_json(r.to_json())
    assert back.eval_before == r.eval_before and back.eval_change == r.eval_change


def test_without_evaluation_the_blocks_are_null(source: Path, tmp_path: Path) -> None:
    r = Compressor(confirmed_report([0, 1], [(0, 1)]), source).run(tmp_path / "o").report
    d = r.to_dict()
    assert d["eval_before"] is None and d["eval_after"] is None and d["eval_change"] is None
    assert d["schema_version"] == 2


def test_regrower_records_before_after_and_change(
    tiny_model_dir: Path, source: Path, tmp_path: Path
) -> None:
    compressed = tmp_path / "c"
    comp = Compressor(confirmed_report([0, 1, 2, 3], [(0, 1), (2, 3)]), source).run(compressed)
    out = tmp_path / "g"
    r = Regrower.from_compression_report(
        comp.report, compressed, strategy="residual_kmeans", prompts=PROMPTS, device="cpu",
        evaluation=_request(),
    ).run(out).report  # fmt: skip
    _check_blocks(r, compressed, out)
    back = RegrowReport.from_json(r.to_json())
    assert back == r and back.eval_after == r.eval_after


def test_evaluation_must_be_a_request(source: Path) -> None:
    with pytest.raises(CompressionError, match="Compressor.evaluation: got list"):
        Compressor(confirmed_report([0, 1], [(0, 1)]), source, evaluation=[PROMPTS])  # type: ignore[arg-type]


def test_a_decoder_only_source_cannot_be_evaluated(source: Path) -> None:
    w_dec = load_sae(source).tensors["W_dec"]
    with pytest.raises(CompressionError, match="decoder-only"):
        Compressor(confirmed_report([0, 1], [(0, 1)]), {"W_dec": w_dec}, evaluation=_request())


@pytest.mark.parametrize("prompts", [[], "one string", [1, 2]])
def test_eval_request_refuses_bad_prompts(prompts: Any) -> None:
    with pytest.raises(EvalError, match="EvalRequest.prompts"):
        EvalRequest(prompts)
