"""``polygram compress`` through real subprocesses (spec 11 §8)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from compression_fixtures import build_report, synth_sae
from safetensors.numpy import load_file

from polygram.cli.compress import _CompressError, parse_representatives
from polygram.compression import CompressionReport

CONFIRMED = [(2, 3), (5, 6), (6, 7), (5, 7)]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polygram.cli", "compress", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=120,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    sae = synth_sae(tmp_path / "sae.safetensors", biases=True)
    rep = tmp_path / "validation.json"
    build_report(8, CONFIRMED).to_json(rep)
    return {"sae": sae, "report": rep, "out": tmp_path / "c.safetensors",
            "json": tmp_path / "compression.json"}  # fmt: skip


def base_args(f: dict[str, Path], **over: str) -> list[str]:
    flags = {
        "--validation-report": str(f["report"]),
        "--sae-checkpoint": str(f["sae"]),
        "--output-checkpoint": str(f["out"]),
        "--output": str(f["json"]),
    }
    flags.update(over)
    return [x for kv in flags.items() for x in kv]


def test_compress_zero(files: dict[str, Path]) -> None:
    before = hashlib.sha256(files["sae"].read_bytes()).hexdigest()
    r = cli(*base_args(files))
    assert r.returncode == 0, r.stderr
    rep = CompressionReport.from_json(files["json"])
    assert rep.strategy == "zero" and rep.n_clusters == 2 and rep.n_features_zeroed == 3
    assert hashlib.sha256(files["sae"].read_bytes()).hexdigest() == before
    assert rep.source_checkpoint_sha256 == before
    assert before[:12] in r.stderr and rep.output_checkpoint_sha256[:12] in r.stderr
    assert "2 clusters, 3 features zeroed, 2 kept" in r.stderr
    out = load_file(str(files["out"]))
    assert not out["W_dec"][[2, 5, 6]].any()


def test_compress_merge_with_options(files: dict[str, Path]) -> None:
    r = cli(
        *base_args(files),
        "--strategy", "merge", "--merge-mode", "simple_mean",
        "--rep-selection", "n_fires", "--representatives", "1=6, 0=2",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(files["json"].read_text())
    assert doc["strategy"] == "merge"
    assert [c["representative"] for c in doc["clusters"]] == [2, 6]
    assert all(c["merged_norm"] is not None for c in doc["clusters"])
    assert doc["scale_compression_ratio"] == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"--representatives": "0-3"}, "not of the form cluster_id=feature_id"),
        ({"--representatives": "0=x"}, "needs two integers"),
        ({"--representatives": "0=2,0=3"}, "cluster_id 0 is given twice"),
        ({"--representatives": "9=2"}, "cluster_id=9"),
        ({"--representatives": "0=5"}, "is not a member of cluster 0"),
        ({"--sae-checkpoint": "missing.safetensors"}, "--sae-checkpoint: file not found"),
        ({"--validation-report": "missing.json"}, "--validation-report: file not found"),
    ],
)
def test_errors_exit_2(files: dict[str, Path], over: dict[str, str], match: str) -> None:
    r = cli(*base_args(files, **over), cwd=files["sae"].parent)
    assert r.returncode == 2
    assert r.stderr.startswith("polygram compress: ") and match in r.stderr
    assert "Traceback" not in r.stderr
    assert not files["out"].exists()


def test_output_equal_to_source_and_bad_report(files: dict[str, Path], tmp_path: Path) -> None:
    r = cli(*base_args(files, **{"--output-checkpoint": str(files["sae"])}))
    assert r.returncode == 2 and "must differ" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1}')
    r = cli(*base_args(files, **{"--validation-report": str(bad)}))
    assert r.returncode == 2 and "missing required key" in r.stderr
    # a plan member the checkpoint does not hold: an IndexError during the run
    build_report(20, [(3, 18)]).to_json(files["report"])
    r = cli(*base_args(files))
    assert r.returncode == 2 and "out of range" in r.stderr and "Traceback" not in r.stderr


def test_argparse_choices() -> None:
    r = cli("--strategy", "prune")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_parse_representatives() -> None:
    assert parse_representatives(" 0=12, 3 = 40,") == {0: 12, 3: 40}
    with pytest.raises(_CompressError, match="holds no"):
        parse_representatives(" , ")
