"""Spec 04 audit: emitted files byte for byte (from ``# machine`` on), the
provenance header, ``build_machine`` and ``verify_qorca`` on bad input."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, REFERENCE, dictionary_from_spec, quickstart_dictionary
from polygram import (
    Cancellation,
    Dictionary,
    Experiment,
    Feature,
    HEA_Rung2,
    MPSRung1,
    Rung3,
    verify_qorca,
    write_qorca,
)
from polygram.errors import EmissionError
from polygram.qorca import emit
from polygram.qorca.emit import build_machine, render_machine, render_machine_markdown

sys.path.insert(0, str(Path(__file__).parent / "encodings"))
from enc_helpers import animals_hea, quickstart_rung3

EXAMPLES = DATA / "examples"


def body(text: str) -> str:
    return text[text.index("# machine") :]


def renamed(d: Dictionary, name: str) -> Dictionary:
    return Dictionary(name, list(d.features), d.hierarchy, d.encoding)


def gap_pair() -> Dictionary:
    return dictionary_from_spec(REFERENCE["cancellation_gap_case"]["dictionary"])


EXPECTED = {
    "AnimalsInterference_defaults.q.orca.md": lambda: quickstart_dictionary(),
    "qorca/AnimalsInterference_sweep_midpoint.q.orca.md": lambda: quickstart_dictionary().with_knob(
        "bird_hawk.phi", float(np.linspace(0, math.pi, 40)[20])
    ),
    "qorca/AnimalsInterference_at_optimum.q.orca.md": lambda: renamed(
        quickstart_dictionary().with_knobs(
            {"dog_poodle.phi": 4.569589314312426, "bird_hawk.phi": 4.569589314312426}
        ),
        "AnimalsInterference_at_optimum",
    ),
    "qorca/GapPair_at_optimum.q.orca.md": lambda: renamed(
        gap_pair().with_knobs({"a1.phi": 5.385587406153931, "b1.phi": 2.3081088883516845}),
        "GapPair_at_optimum",
    ),
    "AnimalsHea.q.orca.md": lambda: animals_hea(),
    "qorca/AnimalsHea_at_optimum.q.orca.md": lambda: renamed(
        animals_hea().with_knobs(
            {"dogs.theta[0,0,0]": -1.9991953250116865, "birds.theta[0,0,0]": 1.4279966607226333}
        ),
        "AnimalsHea_at_optimum",
    ),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_machine_text_is_the_spec_example_byte_for_byte(name: str, tmp_path: Path) -> None:
    d = EXPECTED[name]()
    ref = body((EXAMPLES / name).read_text(encoding="utf-8"))
    assert render_machine(d) == ref
    assert body(write_qorca(d, tmp_path / "x.q.orca.md").read_text(encoding="utf-8")) == ref
    check = verify_qorca(tmp_path / "x.q.orca.md", dictionary=d)
    assert check.valid, check.errors
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12


def test_experiment_materialize_writes_the_midpoint_example(tmp_path: Path) -> None:
    exp = Experiment(
        "AnimalsInterference_sweep_midpoint",
        quickstart_dictionary(),
        ("dog_poodle", "bird_hawk"),
        {"bird_hawk.phi": np.linspace(0, math.pi, 40)},
    )
    files = exp.materialize(tmp_path / "out")
    assert files["machine"] == tmp_path / "out" / "AnimalsInterference_sweep_midpoint.q.orca.md"
    ref = (EXAMPLES / "qorca" / "AnimalsInterference_sweep_midpoint.q.orca.md").read_text()
    assert body(files["machine"].read_text()) == body(ref)


def test_cancellation_materialize_writes_the_hea_optimum_example(tmp_path: Path) -> None:
    r = Cancellation(
        animals_hea(),
        ("dog_poodle", "bird_hawk"),
        knobs=["dogs.theta[0,0,0]", "birds.theta[0,0,0]"],
        optimize={"method": "grid", "max_steps": 12},
    ).run()
    files = r.materialize(tmp_path)
    assert files["machine"] == tmp_path / "AnimalsHea_at_optimum.q.orca.md"
    ref = (EXAMPLES / "qorca" / "AnimalsHea_at_optimum.q.orca.md").read_text()
    assert body(files["machine"].read_text()) == body(ref)


# ------------------------------------------------------------ provenance header
def header_lines(text: str) -> list[str]:
    return text[: text.index("# machine")].splitlines()


def test_header_has_the_seven_spec_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repo above tmp_path
    d = quickstart_dictionary()
    lines = header_lines(write_qorca(d, tmp_path / "a" / "b" / "x.q.orca.md").read_text())
    assert len(lines) == 7
    assert lines[0] == "<!--" and lines[6] == "-->"
    assert lines[1] == "  Polygram-generated artifact. Do not hand-edit."
    assert lines[2] == "  source dictionary: AnimalsInterference"
    assert lines[3] == "  features:          4 in 2 clusters"
    assert re.fullmatch(r"  generated:         \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[4])
    assert lines[5] == "  git rev:           unversioned"


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_rev_is_read_in_the_output_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True)
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(tmp_path)  # the working directory is not the repository
    path = write_qorca(quickstart_dictionary(), repo / "new" / "x.q.orca.md")
    assert header_lines(path.read_text())[5] == f"  git rev:           {rev}"


def test_git_missing_gives_unversioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = write_qorca(quickstart_dictionary(), tmp_path / "x.q.orca.md")
    assert header_lines(path.read_text())[5] == "  git rev:           unversioned"


def test_write_qorca_refuses_a_non_dictionary(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="write_qorca: dictionary is a str"):
        write_qorca("AnimalsInterference", tmp_path / "x.q.orca.md")  # type: ignore[arg-type]


# ------------------------------------------------------------------- Rung3
def test_rung3_file_is_the_mps_file_plus_the_amp_table() -> None:
    r3 = quickstart_rung3(bird_hawk=(0.3, 1.0))
    mps = Dictionary(r3.name, list(r3.features), r3.hierarchy, MPSRung1())
    text = render_machine(r3)
    head, amp = text.split("\n## amp branch\n")
    assert head == render_machine(mps)
    assert amp.splitlines()[:2] == [
        "| concept | theta_amp | psi_aux |",
        "|---------|-----------|---------|",
    ]
    assert amp.splitlines()[4] == "| bird_hawk | 0.3 | 1.0 |"


# ---------------------------------------------------------- build_machine
def test_build_machine_returns_the_parsed_machine() -> None:
    assert render_machine_markdown is render_machine
    m = build_machine(quickstart_dictionary())
    assert m.name == "AnimalsInterference"
    assert build_machine(animals_hea()).encoding is not None


def test_build_machine_raises_runtime_error_on_parse_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = render_machine(quickstart_dictionary()).replace(
        "prepare_concept(0.0, 0.5, 0.0, 0.0)", "prepare_concept(foo, 0.5, 0.0, 0.0)"
    )
    monkeypatch.setattr(emit, "render_machine", lambda d: broken)
    with pytest.raises(RuntimeError, match=r"(?s)could not parse.*prepare_concept\(foo"):
        build_machine(quickstart_dictionary())


def test_hea_cluster_with_a_pipe_cannot_be_emitted() -> None:
    feats = [Feature("a", "x|y", beta=0.1), Feature("b", "z", beta=0.2)]
    d = Dictionary("P", feats, {"x|y": ["a"], "z": ["b"]}, HEA_Rung2(depth=1))
    with pytest.raises(EmissionError, match=r"cluster 'x\|y' contains '\|'"):
        render_machine(d)


# ------------------------------------------------------------- verify_qorca
def test_result_lists_and_fields(tmp_path: Path) -> None:
    d = quickstart_dictionary()
    check = verify_qorca(write_qorca(d, tmp_path / "x.q.orca.md"), dictionary=d)
    assert check.valid and check.errors == []
    assert isinstance(check.warnings, list)
    assert {c for c, _ in check.warnings} <= {"SUPERPOSITION_LEAK", "BACKEND_UNAVAILABLE"}
    assert check.n_machines == 1 and check.gram_checked
    with pytest.raises(AttributeError):
        check.valid = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("| bird_hawk | x | 1.0 |", "expected two float literals"),
        ("| bird_hawk | nan | 1.0 |", "expected finite numbers"),
        ("| bird_hawk | 0.3 | inf |", "expected finite numbers"),
        ("| bird_hawk | 0.3 |", "has 2 cells; expected 3"),
        ("| bird_hawk | 0.3 | 1.0 | 2.0 |", "has 4 cells; expected 3"),
        ("| bird_hawq | 0.3 | 1.0 |", "the call sites, in order"),
    ],
)
def test_bad_amp_rows_are_errors_not_crashes(row: str, needle: str) -> None:
    d = quickstart_rung3(bird_hawk=(0.3, 1.0))
    text = render_machine(d).replace("| bird_hawk | 0.3 | 1.0 |", row)
    check = verify_qorca(text, dictionary=d)
    assert not check.valid and check.layout == "rung3"
    (code, message), *_ = check.errors
    assert code == "AMP_TABLE" and needle in message
    assert not check.gram_checked


def test_a_nan_knob_in_the_file_is_an_error() -> None:
    text = render_machine(quickstart_dictionary()).replace(
        "prepare_concept(0.0, 0.5, 0.0, 0.0)", "prepare_concept(nan, 0.5, 0.0, 0.0)"
    )
    check = verify_qorca(text)
    assert not check.valid
    assert "GRAM_NONFINITE" in {c for c, _ in check.errors}, check.errors


def test_a_tier_invariant_on_an_mps_file_does_not_crash() -> None:
    text = render_machine(quickstart_dictionary())
    text += "\n## invariants\n- concept_gram_tier_separation >= 0.1\n"
    check = verify_qorca(text, dictionary=quickstart_dictionary())
    assert check.gram_checked and check.gram_max_abs_diff is not None
    assert check.gram_max_abs_diff <= 1e-12


def test_verify_qorca_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path_or_text is a bytes"):
        verify_qorca(b"# machine X\n")  # type: ignore[arg-type]
    path = write_qorca(quickstart_dictionary(), tmp_path / "x.q.orca.md")
    with pytest.raises(TypeError, match="dictionary is a dict"):
        verify_qorca(path, dictionary={})  # type: ignore[arg-type]


def test_no_machine_is_invalid() -> None:
    check = verify_qorca("just prose\nno machine here\n")
    assert not check.valid and check.n_machines == 0
    assert check.errors[0][0] == "MACHINE_COUNT"


def test_rung3_round_trip_via_verify_multiplies_the_amp_factor() -> None:
    d = quickstart_rung3(bird_hawk=(0.3, 1.0), dog_beagle=(1.1, -2.0))
    check = verify_qorca(render_machine(d), dictionary=d)
    assert check.valid and check.layout == "rung3"
    assert check.gram is not None
    np.testing.assert_allclose(check.gram, d.gram(), atol=1e-12, rtol=0)
    ref = REFERENCE["rung3"]["gram_with_bird_hawk_theta_amp_0.3_psi_aux_1.0"]
    one = quickstart_rung3(bird_hawk=(0.3, 1.0))
    g = verify_qorca(render_machine(one)).gram
    assert g is not None
    np.testing.assert_allclose(
        g, np.array([[complex(*x) for x in row] for row in ref]), atol=1e-12, rtol=0
    )
    assert isinstance(one.encoding, Rung3)
