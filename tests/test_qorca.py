"""Emitted machines: layout, literals, and verification through q-orca itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import q_orca
from hypothesis import given
from hypothesis import strategies as st

from conftest import DATA
from polygram import Dictionary, Feature, verify_qorca, write_qorca
from polygram.errors import EmissionError
from polygram.qorca.emit import literal, render_machine


def body(text: str) -> list[str]:
    return text[text.index("# machine") :].splitlines()


def section(lines: list[str], title: str) -> list[str]:
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [x for x in lines[start:end] if x]


def test_layout_matches_the_reference_file(quickstart: Dictionary) -> None:
    ours = body(render_machine(quickstart))
    ref = body((DATA / "examples" / "AnimalsInterference_defaults.q.orca.md").read_text())
    assert ours[0] == ref[0]
    # Every machine-readable section is identical; blockquote prose is ours.
    for title in (
        "## context",
        "## events",
        "## transitions",
        "## actions",
        "## verification rules",
    ):
        assert section(ours, title) == section(ref, title), title
    assert [x for x in ours if x.startswith("## ")] == [x for x in ref if x.startswith("## ")]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.5, "-0.5"),
        (1e-05, "1e-05"),
        (2.5e17, "2.5e+17"),
        (-0.0, "-0.0"),
        (1, "1.0"),
    ],
)
def test_literals_are_python_reprs(value: float, text: str) -> None:
    assert literal(value) == text


def test_written_file_verifies_and_q_orca_gram_matches(
    quickstart: Dictionary, tmp_path: Path
) -> None:
    d = quickstart.with_knobs({"bird_hawk.phi": 1e-05, "dog_beagle.phi": 2.5e17 % 7})
    path = write_qorca(d, tmp_path / "deep" / "a.q.orca.md")
    text = path.read_text()
    assert text.startswith("<!--\n") and "source dictionary: AnimalsInterference" in text
    check = verify_qorca(path, dictionary=d)
    assert check.valid, check.errors
    assert check.layout == "mps" and check.n_machines == 1
    assert {c for c, _ in check.warnings} <= {"SUPERPOSITION_LEAK", "BACKEND_UNAVAILABLE"}
    machine = q_orca.parse_q_orca_markdown(text).file.machines[0]
    theirs = np.asarray(
        q_orca.compute_concept_gram_mps(machine, concept_action_label="prepare_concept")
    )
    np.testing.assert_allclose(theirs, d.gram(), atol=1e-12, rtol=0)
    assert verify_qorca(text).valid  # text input works too


def test_a_mismatching_dictionary_is_reported(quickstart: Dictionary, tmp_path: Path) -> None:
    path = write_qorca(quickstart, tmp_path / "a.q.orca.md")
    other = quickstart.with_knob("bird_hawk.phi", 0.5)
    check = verify_qorca(path, dictionary=other)
    assert not check.valid
    assert check.errors[0][0] == "GRAM_MISMATCH"


def test_a_broken_staircase_is_invalid(quickstart: Dictionary, tmp_path: Path) -> None:
    text = render_machine(quickstart).replace("Ry(qs[2], b + c)", "Ry(qs[2], b * c)")
    check = verify_qorca(text)
    assert not check.valid
    assert {c for c, _ in check.errors} & {"PARSE_ERROR", "GRAM_CONFIGURATION"}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        verify_qorca(tmp_path / "nope.q.orca.md")


def test_names_without_letters_cannot_be_emitted() -> None:
    d = Dictionary("D", [Feature("--", "k", beta=0.0)], {"k": ["--"]})
    with pytest.raises(EmissionError, match="no letters or digits"):
        render_machine(d)


angle = st.floats(-7, 7, allow_nan=False)


@given(st.lists(st.tuples(angle, angle, angle, angle), min_size=1, max_size=8))
def test_round_trip_through_q_orca(rows: list[tuple[float, float, float, float]]) -> None:
    feats = [
        Feature(f"f{i}", "k", beta=b, alpha=a, gamma=g, phi=p)
        for i, (a, b, g, p) in enumerate(rows)
    ]
    d = Dictionary("R", feats, {"k": [f.name for f in feats]})
    check = verify_qorca(render_machine(d), dictionary=d)
    assert check.valid, check.errors
