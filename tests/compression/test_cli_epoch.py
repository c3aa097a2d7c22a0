"""``polygram compress-epoch`` through real subprocesses (spec 13 §6)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from epoch_helpers import epoch_cli as cli
from epoch_helpers import residuals, write_planted_sae
from safetensors.numpy import load_file

from polygram.compression import EpochCompressor, EpochReport


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    sae = write_planted_sae(tmp_path / "sae.safetensors")
    np.save(tmp_path / "x.npy", residuals())
    (tmp_path / "prompts.txt").write_text("# a comment\n\nhello world\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("# nothing\n\n", encoding="utf-8")
    return {
        "sae": sae,
        "x": tmp_path / "x.npy",
        "prompts": tmp_path / "prompts.txt",
        "empty": tmp_path / "empty.txt",
        "out": tmp_path / "out" / "sae.epoch.safetensors",
        "json": tmp_path / "epoch.json",
    }


def base(f: dict[str, Path]) -> list[str]:
    return [
        "--sae-checkpoint", str(f["sae"]),
        "--output-checkpoint", str(f["out"]),
        "--output", str(f["json"]),
        "--layer", "5",
    ]  # fmt: skip


def test_small_run_matches_library(files: dict[str, Path]) -> None:
    before = hashlib.sha256(files["sae"].read_bytes()).hexdigest()
    r = cli(*base(files), "--cached-residuals", str(files["x"]), "--polygram-threshold", "0",
            "--quality-delta-multiplier", "inf")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "iteration 0:" in r.stderr and "stable_clusters after 2 iteration(s)" in r.stderr
    rep = EpochReport.from_json(files["json"])
    assert hashlib.sha256(files["sae"].read_bytes()).hexdigest() == before
    assert rep.output_checkpoint == str(files["out"].resolve())
    assert rep.output_checkpoint_sha256 == hashlib.sha256(files["out"].read_bytes()).hexdigest()
    lib = EpochCompressor(
        files["sae"],
        [],
        5,
        cached_residuals=np.load(files["x"]),
        polygram_overlap_threshold=0.0,
        quality_delta_multiplier=float("inf"),
        progress=False,
    ).run(files["out"].parent / "lib.safetensors")
    assert rep.iterations == EpochReport.from_json(lib.report.to_json()).iterations
    assert rep.output_checkpoint_sha256 == lib.report.output_checkpoint_sha256
    assert set(load_file(str(files["out"]))) == {"W_enc", "b_enc", "W_dec", "b_dec"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cached-residuals", "missing.npy"], "--cached-residuals: file not found"),
        (["--prompts", "missing.txt"], "--prompts: file not found"),
        (["--prompts", "EMPTY"], "holds no prompt"),
        (["--prompts", "PROMPTS", "--layer", "0"], "use layer >= 5 (recommended: 10)"),
        (["--prompts", "PROMPTS", "--coverage-target", "0"], "coverage_target"),
        (["--prompts", "PROMPTS", "--n-visits-per-feature", "0"], "n_visits_per_feature"),
        (["--prompts", "PROMPTS", "--quality-delta-multiplier", "-1"], "quality_delta"),
        (["--cached-residuals", "BADX"], "expected a 2-D float array"),
        (["--cached-residuals", "NARROW"], "d_in is 16"),
    ],
)
def test_errors_exit_2(
    files: dict[str, Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    np.save(tmp_path / "bad.npy", np.arange(5))
    np.save(tmp_path / "narrow.npy", np.ones((4, 3), np.float32))
    subst = {
        "EMPTY": str(files["empty"]),
        "PROMPTS": str(files["prompts"]),
        "BADX": str(tmp_path / "bad.npy"),
        "NARROW": str(tmp_path / "narrow.npy"),
    }
    r = cli(*base(files), *[subst.get(a, a) for a in extra])
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("polygram compress-epoch: "), r.stderr
    assert message in r.stderr
    assert not files["out"].exists() and not files["json"].exists()


def test_missing_checkpoint_and_same_output(files: dict[str, Path]) -> None:
    r = cli("--sae-checkpoint", "nope.safetensors", "--output-checkpoint", "o.safetensors",
            "--output", "o.json", "--cached-residuals", str(files["x"]))  # fmt: skip
    assert r.returncode == 2 and "--sae-checkpoint: file not found" in r.stderr
    r = cli("--sae-checkpoint", str(files["sae"]), "--output-checkpoint", str(files["sae"]),
            "--output", "o.json", "--cached-residuals", str(files["x"]))  # fmt: skip
    assert r.returncode == 2 and "must differ" in r.stderr


def test_argparse_errors(files: dict[str, Path]) -> None:
    r = cli(*base(files))  # neither --prompts nor --cached-residuals
    assert r.returncode == 2 and "one of the arguments" in r.stderr
    r = cli(*base(files), "--prompts", str(files["prompts"]), "--strategy", "merge")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_layer_zero_allowed_and_intermediate_reports(files: dict[str, Path]) -> None:
    args = [a if a != "5" else "0" for a in base(files)]
    r = cli(*args, "--cached-residuals", str(files["x"]), "--allow-layer-zero",
            "--save-intermediate-reports", "--polygram-threshold", "0",
            "--max-iterations", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = EpochReport.from_json(files["json"])
    assert rep.convergence_reason == "max_iterations"
    paths = rep.iterations[0].validation_report_paths
    assert paths and all(Path(p).is_file() for p in paths)
    assert Path(paths[0]).parent == files["out"].parent / "epoch_intermediate"
