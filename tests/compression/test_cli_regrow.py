"""``polygram regrow`` through real subprocesses (spec 12 §6), chained after a
compression like a user would run it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from compression_fixtures import build_report, synth_sae
from safetensors.numpy import load_file

from polygram.compression import Compressor, RegrowReport


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polygram.cli", "regrow", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    sae = synth_sae(tmp_path / "sae.safetensors", biases=True)
    comp = Compressor(build_report(8, [(2, 3), (5, 6), (6, 7)]), sae)
    compressed = comp.run(tmp_path / "compressed.safetensors")
    compressed.report.to_json(tmp_path / "compression.json")
    d = load_file(str(sae))["W_dec"].shape[1]
    np.save(tmp_path / "x.npy", np.random.default_rng(2).standard_normal((120, d)))
    return {
        "sae": compressed.output_checkpoint,
        "report": tmp_path / "compression.json",
        "x": tmp_path / "x.npy",
        "out": tmp_path / "regrown.safetensors",
        "json": tmp_path / "regrow.json",
    }


def base(f: dict[str, Path]) -> list[str]:
    return [
        "--sae-checkpoint", str(f["sae"]),
        "--output-checkpoint", str(f["out"]),
        "--output", str(f["json"]),
        "--strategy", "residual_kmeans",
    ]  # fmt: skip


def test_regrow_after_compress(files: dict[str, Path]) -> None:
    before = hashlib.sha256(files["sae"].read_bytes()).hexdigest()
    r = cli(*base(files), "--compression-report", str(files["report"]),
            "--cached-residuals", str(files["x"]), "--seed", "3")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = RegrowReport.from_json(files["json"])
    assert rep.plan.zeroed_input == (2, 5, 6) and rep.n_slots_repopulated == 3
    assert rep.strategy_params == {"seed": 3, "n_init": 4}
    assert rep.provenance["compression_report_output_sha256"] == before
    assert hashlib.sha256(files["sae"].read_bytes()).hexdigest() == before
    assert "3 slots repopulated" in r.stderr and before[:12] in r.stderr
    out = load_file(str(files["out"]))
    for f in (2, 5, 6):
        assert np.linalg.norm(out["W_dec"][f]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--zeroed-list", "1,x", "--cached-residuals", "X"], "not one"),
        (["--zeroed-list", "99", "--cached-residuals", "X"], "out of range"),
        (["--zeroed-list", "1", "--cached-residuals", "missing.npy"], "file not found"),
        (["--zeroed-list", "1", "--prompts", "missing.txt"], "file not found"),
        (["--compression-report", "missing.json", "--cached-residuals", "X"], "file not found"),
    ],
)
def test_errors_exit_2(files: dict[str, Path], extra: list[str], match: str) -> None:
    extra = [str(files["x"]) if e == "X" else e for e in extra]
    r = cli(*base(files), *extra)
    assert r.returncode == 2 and r.stderr.startswith("polygram regrow: ")
    assert match in r.stderr


def test_xor_groups_and_reserved_strategies(files: dict[str, Path], tmp_path: Path) -> None:
    both = cli(*base(files), "--zeroed-list", "1", "--compression-report", str(files["report"]),
               "--cached-residuals", str(files["x"]))  # fmt: skip
    assert both.returncode == 2 and "not allowed with" in both.stderr
    neither = cli(*base(files), "--zeroed-list", "1")
    assert neither.returncode == 2 and "one of the arguments" in neither.stderr
    args = base(files)
    args[args.index("residual_kmeans")] = "orthogonal_noise_scaled"
    r = cli(*args, "--zeroed-list", "1", "--cached-residuals", str(files["x"]))
    assert r.returncode == 2 and "orthogonal_noise_scaled" in r.stderr
    np.save(tmp_path / "bad.npy", np.ones(4))
    r = cli(*base(files), "--zeroed-list", "1", "--cached-residuals", str(tmp_path / "bad.npy"))
    assert r.returncode == 2 and "expected a 2-D float array" in r.stderr
    same = base(files)
    same[same.index(str(files["out"]))] = str(files["sae"])
    r = cli(*same, "--zeroed-list", "1", "--cached-residuals", str(files["x"]))
    assert r.returncode == 2 and "must differ" in r.stderr
