"""The console script, through real subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import polygram

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polygram.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=300,
    )


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"polygram {polygram.__version__}"


def test_help_and_missing_subcommand() -> None:
    assert "run" in cli("--help").stdout
    r = cli()
    assert r.returncode == 2 and "usage" in r.stderr


def test_run_animals_walk(tmp_path: Path) -> None:
    r = cli(
        "run", str(ROOT / "examples" / "animals_interference.py"), "--output-dir", str(tmp_path)
    )
    assert r.returncode == 0, r.stderr
    assert f"→ {tmp_path}" in r.stdout
    for name in (
        "AnimalsInterference.q.orca.md",
        "AnimalsInterference_summary.md",
        "AnimalsInterference_result.csv",
        "AnimalsInterference_overlap.png",
        "AnimalsInterference_overlap_2d_24x24.png",
        "run_AnimalsInterference.py",
    ):
        assert (tmp_path / name).is_file(), name
    assert "100%" in (tmp_path / "AnimalsInterference_summary.md").read_text()
    assert len((tmp_path / "AnimalsInterference_result.csv").read_text().splitlines()) == 41


def test_run_passes_n_points_when_accepted(tmp_path: Path) -> None:
    r = cli(
        "run",
        str(ROOT / "examples" / "animals_interference.py"),
        "--output-dir",
        str(tmp_path),
        "--n-points",
        "7",
    )
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "AnimalsInterference_result.csv").read_text().splitlines()) == 8


def test_run_module_callable_and_retry_without_n_points(tmp_path: Path) -> None:
    mod = tmp_path / "mywalk.py"
    mod.write_text(
        "from pathlib import Path\n"
        "def go(output_dir):\n"
        "    Path(output_dir, 'done.txt').write_text('ok')\n"
    )
    out = tmp_path / "o"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "polygram.cli",
            "run",
            "mywalk:go",
            "--output-dir",
            str(out),
            "--n-points",
            "3",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    assert (out / "done.txt").read_text() == "ok"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.py", "no such file"),
        ("notes.txt", "expected a .py file"),
        ("nomain.py", "defines no main"),
        ("boom.py", "failed: RuntimeError: boom"),
        ("nosuchmodule:main", "cannot import"),
    ],
)
def test_run_failures_exit_1(tmp_path: Path, target: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "nomain.py").write_text("x = 1\n")
    (tmp_path / "boom.py").write_text("def main(output_dir):\n    raise RuntimeError('boom')\n")
    r = cli("run", target, "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 1
    assert "polygram: " in r.stderr and message in r.stderr


def test_bad_flag_type_exits_2() -> None:
    r = cli("run", "x.py", "--n-points", "many")
    assert r.returncode == 2


def test_run_toy_sae_walk(tmp_path: Path) -> None:
    r = cli("run", str(ROOT / "examples" / "import_from_sae.py"), "--output-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (
        "cancel dog_poodle × hawk_red: 0.5763 → 0.5763 (floor 0.5763, efficiency n/a)" in r.stdout
    )
    assert r.stdout.count("valid (Gram max |diff|") == 3
    for name in (
        "triage_report.md",
        "ToySAEAnimals4.q.orca.md",
        "ToySAEAnimals4_result.csv",
        "ToySAEAnimals4_overlap.png",
        "ToySAEAnimals4_overlap_2d_24x24.png",
        "dog_poodle_x_hawk_red/ToySAEAnimals4_at_optimum_summary.md",
        "dog_poodle_x_hawk_red/grid.png",
    ):
        assert (tmp_path / name).is_file(), name
