"""``polygram evaluate`` (spec 16 §5.6): exit codes, one-line messages, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from eval_helpers import PROMPTS, random_sae

from polygram.cli import main
from polygram.evals import EvalResult
from polygram.sae import write_sae

pytestmark = pytest.mark.torch
D = 32


@pytest.fixture()
def sae_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    write_sae(random_sae(tiny_model_dir, D), tmp_path / "sae")
    return tmp_path / "sae"


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    p = tmp_path / "prompts.txt"
    p.write_text("# a comment\n\n" + "\n".join(PROMPTS) + "\n")
    return p


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["evaluate", *argv])
    cap = capsys.readouterr()
    assert cap.out == ""
    return code, [line for line in cap.err.splitlines() if line]


def test_evaluate_writes_json_and_one_summary_line(
    sae_dir: Path, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, freq = tmp_path / "o" / "e.json", tmp_path / "f.npy"
    code, err = _run(
        capsys, str(sae_dir), "--prompts", str(prompts), "--output", str(out),
        "--device", "cpu", "--prepend-bos", "--frequencies", str(freq), "--quiet",
    )  # fmt: skip
    assert code == 0
    r = EvalResult.from_json(out)
    assert r.n_prompts == len(PROMPTS) and r.prepend_bos is True
    assert r.sae_settings["hook_name"]["source"] == "cfg"
    assert np.load(freq).shape == (24,)
    assert err[-1].startswith(
        f"polygram evaluate: blocks.2.hook_resid_pre of {r.model_name}, {r.n_tokens} tokens: "
        "CE recovered "
    )
    assert err[-1].endswith(f"dead {r.n_dead}/24")
    # fewer than 512 tokens: a one-line warning, still exit 0
    assert any(line.startswith("polygram evaluate: warning: evaluate: only") for line in err)
    assert json.loads(out.read_text())["schema_version"] == 1


@pytest.mark.parametrize(
    ("extra", "want"),
    [
        (["--layer", "3"], "layer=3 (--layer) disagrees with the cfg's"),
        (["--dense-threshold", "1.5"], "dense_threshold is 1.5"),
        (["--architecture", "topk"], "architecture"),
    ],
)
def test_refusals_before_any_forward_exit_2(
    sae_dir: Path,
    prompts: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    want: str,
) -> None:
    out = tmp_path / "e.json"
    code, err = _run(capsys, str(sae_dir), "--prompts", str(prompts), "--output", str(out), *extra)
    assert code == 2 and not out.exists()
    assert len([e for e in err if "warning" not in e]) == 1
    assert err[-1].startswith("polygram evaluate: ") and want in err[-1]


def test_missing_files_exit_2(
    sae_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        capsys, str(sae_dir), "--prompts", str(tmp_path / "nope.txt"), "--output", "e.json"
    )
    assert code == 2 and "--prompts: file not found" in err[-1]
    (tmp_path / "p.txt").write_text("x\n")
    code, err = _run(
        capsys, str(tmp_path / "nosae"), "--prompts", str(tmp_path / "p.txt"), "--output", "e.json"
    )
    assert code == 2 and err[-1].startswith("polygram evaluate: ")


def test_a_width_mismatch_exits_2(
    tiny_model_dir: Path, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sae(random_sae(tiny_model_dir, 16), tmp_path / "narrow")
    code, err = _run(
        capsys,
        str(tmp_path / "narrow"),
        "--prompts",
        str(prompts),
        "--output",
        str(tmp_path / "e.json"),
    )
    assert code == 2 and "d_in=16" in err[-1] and "width 32" in err[-1]


def test_a_failure_during_the_run_exits_1(
    sae_dir: Path, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = _run(
        capsys, str(sae_dir), "--prompts", str(prompts), "--output", str(blocker / "e.json"),
        "--device", "cpu",
    )  # fmt: skip
    assert code == 1 and err[-1].startswith("polygram evaluate: failed: ")


@pytest.mark.parametrize(
    "flag", [["--dtype", "fp8"], ["--device", "tpu"], ["--batch-size", "0"], ["--max-tokens", "-1"]]
)
def test_bad_runtime_flags_are_argparse_errors(
    sae_dir: Path, prompts: Path, flag: list[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(sae_dir), "--prompts", str(prompts), "--output", "e.json", *flag])
    assert e.value.code == 2
