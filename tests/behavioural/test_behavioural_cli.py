"""``polygram validate`` through real subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from behavioural.beh_helpers import PANEL, PROMPTS, validate_args
from polygram.behavioural import ValidationReport


def cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\n{prelude}\nfrom polygram.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


args_for = validate_args


@pytest.mark.parametrize(
    ("which", "flag"),
    [
        ("dictionary", "--dictionary"),
        ("sae_checkpoint", "--sae-checkpoint"),
        ("prompts", "--prompts"),
    ],
)
def test_missing_files(inputs: dict[str, Path], which: str, flag: str) -> None:
    r = cli(*args_for(inputs, **{which: str(inputs["dir"] / "nope")}))
    assert r.returncode == 2
    assert r.stderr.startswith(f"polygram: {flag} file not found:")
    assert r.stdout == ""


def test_missing_files_checked_in_order(inputs: dict[str, Path]) -> None:
    nope = str(inputs["dir"] / "nope")
    r = cli(*args_for(inputs, dictionary=nope, prompts=nope))
    assert "--dictionary" in r.stderr and "--prompts" not in r.stderr


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"feature_ids": "11,x,7,5"}, "--feature-ids expects comma-separated ints"),
        ({"feature_ids": "11,2,7"}, "gives 3 ids but --dictionary"),
        ({"feature_ids": "11,2,7,6"}, "[6] not in --dictionary"),
        ({"layer": "0"}, "structural dead zone"),
        ({"layer": "-1"}, "must be"),
        ({"jaccard_threshold": "1.5"}, "jaccard_threshold"),
        ({"min_both_fire": "0"}, "min_both_fire"),
    ],
)
def test_usage_errors_exit_2(inputs: dict[str, Path], over: dict[str, str], needle: str) -> None:
    r = cli(*args_for(inputs, **over))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("polygram validate: ")
    assert needle in r.stderr
    assert r.stdout == ""
    assert not (inputs["dir"] / "out").exists()


def test_empty_prompts_file(inputs: dict[str, Path]) -> None:
    inputs["prompts"].write_text("# only comments\n\n   \n")
    r = cli(*args_for(inputs))
    assert r.returncode == 2 and "holds no prompts" in r.stderr


def test_bad_dictionary_json(inputs: dict[str, Path]) -> None:
    inputs["dictionary"].write_text("{not json")
    r = cli(*args_for(inputs))
    assert r.returncode == 2 and r.stderr.startswith("polygram validate: --dictionary")


def test_argparse_errors() -> None:
    r = cli("validate", "--layer", "2")
    assert r.returncode == 2 and "required" in r.stderr
    r = cli("validate", "--device", "tpu")
    assert r.returncode == 2 and "argument --device: device: unsupported device 'tpu'" in r.stderr
    r = cli("validate", "--dtype", "fp8")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = cli("validate", "--batch-size", "0")
    assert r.returncode == 2 and "argument --batch-size: '0': must be >= 1" in r.stderr


def test_missing_torch_exit_2(inputs: dict[str, Path]) -> None:
    r = cli(*args_for(inputs), prelude="sys.modules['torch'] = None")
    assert r.returncode == 2
    assert "polygram validate:" in r.stderr and "polygram[behavioural]" in r.stderr


@pytest.mark.torch
def test_full_run(inputs: dict[str, Path], tiny_model_dir: Path) -> None:
    pytest.importorskip("torch")
    csv_path = inputs["dir"] / "out" / "pairs.csv"
    r = cli(
        *args_for(inputs, model=str(tiny_model_dir), min_both_fire="2", device="cpu"),
        "--csv",
        str(csv_path),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "sweep 4/4" in r.stderr  # progress on stderr
    report = ValidationReport.from_json(inputs["dir"] / "out" / "report.json")
    assert report.feature_ids == tuple(PANEL)
    assert report.n_prompts == len(PROMPTS)
    assert report.model_name == str(tiny_model_dir) and report.min_both_fire == 2
    assert len(report.pairs) == 6
    assert csv_path.read_bytes().count(b"\r\n") == 7


@pytest.mark.torch
def test_layer_out_of_range_exit_1(
    inputs: dict[str, Path], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # in-process (torch is already imported here): a failure during the run exits 1
    pytest.importorskip("torch")
    from polygram.cli import main

    rc = main(args_for(inputs, model=str(tiny_model_dir), layer="9", device="cpu"))
    err = capsys.readouterr().err
    assert rc == 1
    assert "polygram validate: failed: layer: 9 is out of range" in err


@pytest.mark.torch
def test_runtime_flags(inputs: dict[str, Path], tiny_model_dir: Path) -> None:
    """--hook, --batch-size, --dtype, --context-size and --no-prepend-bos reach the run
    (one prompt is longer than 6 tokens: one truncation warning on stderr)."""
    pytest.importorskip("torch")
    r = cli(
        *args_for(inputs, model=str(tiny_model_dir), min_both_fire="1", device="CPU"),
        *("--hook", "mlp_out", "--batch-size", "2", "--dtype", "float32"),
        *("--context-size", "6", "--no-prepend-bos"),
    )
    assert r.returncode == 0, r.stderr
    assert "blocks.2.hook_mlp_out" in r.stderr and "batch size 2" in r.stderr
    assert r.stderr.count("prompts truncated to context_size 6") == 1
    report = ValidationReport.from_json(inputs["dir"] / "out" / "report.json")
    assert report.n_tokens <= 6 * len(PROMPTS) and report.layer == 2


@pytest.mark.torch
def test_device_and_model_refused_before_any_work(
    inputs: dict[str, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    r = cli(*args_for(inputs, model=str(tiny_model_dir), device=f"cuda:{n}"))
    assert r.returncode == 2 and r.stderr.startswith(f"polygram validate: device='cuda:{n}'")
    assert r.stderr.count("\n") == 1
    # a family outside the hook table: HookError naming it, exit 2
    transformers = pytest.importorskip("transformers")
    odd = tmp_path / "phi3"
    cfg = transformers.Phi3Config(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    transformers.Phi3ForCausalLM(cfg).save_pretrained(odd)
    transformers.AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(odd)
    r = cli(*args_for(inputs, model=str(odd), device="cpu"))
    assert r.returncode == 2, r.stderr
    assert "model_type 'phi3' (Phi3ForCausalLM) is not supported; supported: gpt2" in r.stderr
    # ... which --block-path opens for the residual hooks
    r = cli(
        *args_for(inputs, model=str(odd), device="cpu", min_both_fire="1"),
        "--block-path",
        "model.layers",
    )
    assert r.returncode == 0, r.stderr
