"""HEA and Rung3 ``.q.orca.md`` files: layout, verification through q-orca
(``polygram.verify_qorca``) and the Rung3 round trip (spec 04 §4.3.1, §4.4)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from enc_helpers import amp_overlap, animals_hea, quickstart_rung3
from hypothesis import given
from hypothesis import strategies as st

from conftest import DATA
from polygram import Dictionary, Feature, HEA_Rung2, Rung3, verify_qorca, write_qorca
from polygram.errors import EmissionError
from polygram.qorca.emit import MPS_EFFECT, literal, render_machine

EXPECTED_WARNINGS = {"SUPERPOSITION_LEAK", "BACKEND_UNAVAILABLE"}


def body(text: str) -> list[str]:
    return text[text.index("# machine") :].splitlines()


def sections(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur = ""
    for line in lines:
        if line.startswith("## "):
            cur = line
            out[cur] = []
        elif cur and line.strip() and not line.startswith(">"):
            out[cur].append(line)
    return out


# ------------------------------------------------------------------------ HEA
def test_hea_layout_matches_the_reference_example() -> None:
    ours = sections(body(render_machine(animals_hea())))
    ref = sections(body((DATA / "examples" / "AnimalsHea.q.orca.md").read_text()))
    assert list(ours) == list(ref)
    for title in ref:  # every machine-readable section, line for line
        assert ours[title] == ref[title], title
    text = render_machine(animals_hea())
    assert "rotations=['Ry', 'Rz']" in text.splitlines()[2]


def test_hea_file_verifies_with_the_tier_invariant(tmp_path: Path) -> None:
    d = animals_hea()
    path = write_qorca(d, tmp_path / "AnimalsHea.q.orca.md")
    check = verify_qorca(path, dictionary=d)
    assert check.valid, check.errors
    assert check.layout == "hea" and check.gram_checked
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12
    assert {c for c, _ in check.warnings} <= EXPECTED_WARNINGS
    assert "- concept_gram_tier_separation >= 0.025" in path.read_text()


def test_hea_bound_edited_to_0_9_is_reported(tmp_path: Path) -> None:
    d = animals_hea()
    text = write_qorca(d, tmp_path / "a.q.orca.md").read_text()
    edited = tmp_path / "b.q.orca.md"
    edited.write_text(text.replace(">= 0.025", ">= 0.9"))
    check = verify_qorca(edited, dictionary=d)
    assert not check.valid
    (code, message), *_ = check.errors
    assert code == "HEA_TIER_INVARIANT_VIOLATED"
    assert "0.222603" in message and "birds" in message and "dogs" in message
    # the Gram itself still matches: only the invariant fails
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12


def test_hea_without_bound_has_no_invariant_section() -> None:
    d = animals_hea(HEA_Rung2(depth=2, tier_separation_bound=None))
    text = render_machine(d)
    assert "## invariants" not in text
    assert verify_qorca(text, dictionary=d).valid


def test_explicit_and_written_theta_are_emitted() -> None:
    enc = HEA_Rung2(depth=2, tier_separation_bound=None)  # these writes break the tiers
    d = animals_hea(enc).with_knobs({"dogs.theta[1,1,2]": -2.5, "bird_hawk.theta[0,0,0]": 1e-05})
    text = render_machine(d)
    assert "-2.5]]] | dogs |" in text and "[[[1e-05, 0.5, 0.02]" in text
    check = verify_qorca(text, dictionary=d)
    assert check.valid and check.gram_max_abs_diff is not None
    assert check.gram_max_abs_diff <= 1e-12


@pytest.mark.parametrize(
    "encoding",
    [
        HEA_Rung2(depth=1, entangler="chain", rotations=("Rx", "Ry", "Rz")),
        HEA_Rung2(depth=3, rotations=("Ry",), tier_separation_bound=None, n_qubits=4),
        HEA_Rung2(depth=2, entangler="chain", rotations=("Rz", "Ry"), n_qubits=2),
        HEA_Rung2(depth=1, rotations=("Rx",), n_qubits=2, tier_separation_bound=None),
    ],
    ids=repr,
)
def test_hea_layouts_verify(encoding: HEA_Rung2) -> None:
    rng = np.random.default_rng(7)
    n = min(4, encoding.max_features)
    feats = [
        Feature(f"f{i}", f"k{i % 2}", beta=float(b), theta=rng.uniform(-3, 3, encoding.theta_shape))
        for i, b in enumerate(rng.uniform(-1, 1, n))
    ]
    h: dict[str, list[str]] = {}
    for f in feats:
        h.setdefault(f.cluster, []).append(f.name)
    d = Dictionary("Rand", feats, h, encoding)
    text = render_machine(d)
    qubits = ", ".join(f"q{i}" for i in range(encoding.n_qubits))
    assert f"| qubits | list<qubit> | [{qubits}]" in text
    check = verify_qorca(text, dictionary=d)
    # a random dictionary may violate the 0.025 tier bound; the Gram must match
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12
    assert {c for c, _ in check.errors} <= {"HEA_TIER_INVARIANT_VIOLATED", "HEA_TIER_UNDEFINED"}


def test_repeated_rotations_cannot_be_emitted(tmp_path: Path) -> None:
    enc = HEA_Rung2(depth=1, rotations=("Ry", "Ry"))
    d = Dictionary("Dup", [Feature("a", "c", beta=0.1)], {"c": ["a"]}, enc)
    assert d.gram().shape == (1, 1)
    with pytest.raises(EmissionError, match=r"rotations: \['Ry', 'Ry'\] repeats a rotation"):
        write_qorca(d, tmp_path / "dup.q.orca.md")
    assert not (tmp_path / "dup.q.orca.md").exists()


# ---------------------------------------------------------------------- Rung3
_CALL = re.compile(
    r"^\| idle \| prepare_(\w+) \| \| prepared_\w+ \| prepare_concept\(([^)]*)\) \|$"
)
_AMP = re.compile(r"^\| (\w+) \| (\S+) \| (\S+) \|$")


def rebuild_rung3_gram(text: str) -> tuple[np.ndarray, list[str]]:
    """Our own reader: the call sites and the amp table → ``G_MPS ⊙ a`` (01 §1.7),
    with the MPS part from the closed-form amplitudes of the call arguments."""
    from enc_helpers import mps_closed_form

    calls: list[tuple[str, list[float]]] = []
    amps: dict[str, tuple[float, float]] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line
            continue
        if section == "## transitions" and (m := _CALL.match(line)):
            calls.append((m.group(1), [float(x) for x in m.group(2).split(",")]))
        elif section == "## amp branch" and (m := _AMP.match(line)) and m.group(1) != "concept":
            amps[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    assert [c for c, _ in calls] == list(amps), "amp rows follow the call sites"
    states = np.array([mps_closed_form(*args) for _, args in calls])
    g_mps = states.conj() @ states.T
    names = [c for c, _ in calls]
    a = np.array([[amp_overlap(*amps[x], *amps[y]) for y in names] for x in names])
    return g_mps * a, names


def test_rung3_file_has_the_amp_table_and_verifies(tmp_path: Path) -> None:
    d = quickstart_rung3(bird_hawk=(0.3, 1.0))
    path = write_qorca(d, tmp_path / "r3.q.orca.md")
    text = path.read_text()
    lines = body(text)
    assert lines[2] == "Polygram-generated rung-1 MPS dictionary (4 features, 2 clusters)."
    amp = sections(lines)["## amp branch"]
    assert amp[0] == "| concept | theta_amp | psi_aux |"
    assert amp[2:] == [
        f"| dog_poodle | {literal(math.pi / 4)} | 0.0 |",
        f"| dog_beagle | {literal(math.pi / 4)} | 0.0 |",
        "| bird_hawk | 0.3 | 1.0 |",
        f"| bird_sparrow | {literal(math.pi / 4)} | 0.0 |",
    ]
    assert lines.index("## amp branch") > lines.index("## verification rules")
    assert MPS_EFFECT in text
    check = verify_qorca(path, dictionary=d)
    assert check.valid, check.errors
    assert check.layout == "rung3"
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12
    assert {c for c, _ in check.warnings} <= EXPECTED_WARNINGS
    # a dictionary with other amp knobs no longer matches the file
    other = d.with_knob("bird_hawk.psi_aux", 2.0)
    bad = verify_qorca(path, dictionary=other)
    assert not bad.valid and bad.errors[0][0] == "GRAM_MISMATCH"


def test_rung3_file_without_amp_table_reads_as_mps() -> None:
    d = quickstart_rung3(bird_hawk=(0.3, 1.0))
    text = render_machine(d)
    stripped = text[: text.index("\n## amp branch")] + "\n"
    check = verify_qorca(stripped, dictionary=d)
    assert check.layout == "mps" and not check.valid  # the amp factor is missing


angle = st.floats(-7, 7, allow_nan=False)


@given(
    st.lists(
        st.tuples(angle, angle, angle, angle, st.floats(0, math.pi / 2), angle),
        min_size=1,
        max_size=16,
    )
)
def test_rung3_round_trip(rows: list[tuple[float, ...]]) -> None:
    feats = [
        Feature(f"f{i}", f"k{i % 3}", beta=b, alpha=a, gamma=g, phi=p, theta_amp=t, psi_aux=s)
        for i, (a, b, g, p, t, s) in enumerate(rows)
    ]
    h: dict[str, list[str]] = {}
    for f in feats:
        h.setdefault(f.cluster, []).append(f.name)
    d = Dictionary("RoundTrip", feats, h, Rung3())
    text = render_machine(d)
    gram, names = rebuild_rung3_gram(text)
    assert names == [f.name for f in feats]
    np.testing.assert_allclose(gram, d.gram(), atol=1e-12, rtol=0)
    check = verify_qorca(text, dictionary=d)
    assert check.valid, check.errors
