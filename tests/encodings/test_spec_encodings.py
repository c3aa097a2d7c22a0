"""Spec 01 §1.6–1.7 line by line: HEA_Rung2 / Rung3 fields and errors, the
Rung3 amp-branch helpers, and Grams against a gate-by-gate tensordot oracle
written here (independent of tests/oracle.py and of the Rust core)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REFERENCE
from polygram import Dictionary, Feature, HEA_Rung2, Rung3, Rung3State
from polygram.encoding import (
    RUNG3_DEFAULT_PSI_AUX,
    RUNG3_DEFAULT_THETA_AMP,
    rung3_amp_overlap,
    rung3_amp_overlap_squared,
)
from polygram.errors import DictionaryError, KnobError

# ------------------------------------------------------------------ oracle
_GATES = {
    "Rx": lambda t: np.array(
        [[math.cos(t / 2), -1j * math.sin(t / 2)], [-1j * math.sin(t / 2), math.cos(t / 2)]]
    ),
    "Ry": lambda t: np.array(
        [[math.cos(t / 2), -math.sin(t / 2)], [math.sin(t / 2), math.cos(t / 2)]], dtype=complex
    ),
    "Rz": lambda t: np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)]),
}


def _gate(psi: np.ndarray, q: int, u: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.tensordot(u, psi, axes=([1], [q])), 0, q)


def _cnot(psi: np.ndarray, c: int, t: int) -> np.ndarray:
    out = psi.copy()
    sel: list[slice | int] = [slice(None)] * psi.ndim
    sel[c] = 1
    out[tuple(sel)] = np.flip(psi[tuple(sel)], axis=t if t < c else t - 1)
    return out


def hea_oracle(theta: np.ndarray, enc: HEA_Rung2) -> np.ndarray:
    """Spec 01 §1.6 *State*: per layer, rotations in declared order on every
    qubit, then chain CNOTs (0,1)…(n−2,n−1), ring adds (n−1,0)."""
    n = enc.n_qubits
    psi = np.zeros((2,) * n, dtype=complex)
    psi[(0,) * n] = 1.0
    pairs = [(q, q + 1) for q in range(n - 1)]
    if enc.entangler == "ring" and n >= 2:
        pairs.append((n - 1, 0))
    for layer in range(enc.depth):
        for r, kind in enumerate(enc.rotations):
            for q in range(n):
                psi = _gate(psi, q, _GATES[kind](float(theta[r, layer, q])))
        for c, t in pairs:
            psi = _cnot(psi, c, t)
    return psi.reshape(-1)


def synthesised_theta(enc: HEA_Rung2, a: float, b: float, g: float, p: float) -> np.ndarray:
    """Spec 01 §1.6 *Per-feature θ* default, written out case by case."""
    th = np.zeros(enc.theta_shape)
    for q, v in enumerate((a, b, g)[: min(enc.n_qubits, 3)]):
        th[0, 0, q] = v
    if "Rz" in enc.rotations and p != 0:
        r = enc.rotations.index("Rz")
        if r == 0:
            th[0, 0, 1 if enc.n_qubits >= 2 else 0] = p
        elif enc.n_qubits >= 2:
            th[r, 0, 1] = p
    return th


angle = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)


@st.composite
def hea_dictionaries(draw: st.DrawFn) -> tuple[Dictionary, list[np.ndarray]]:
    # Repeated rotations build (only emission refuses them), so draw with repeats.
    rots = tuple(draw(st.lists(st.sampled_from(["Rx", "Ry", "Rz"]), min_size=1, max_size=3)))
    enc = HEA_Rung2(
        depth=draw(st.integers(1, 3)),
        entangler=draw(st.sampled_from(["ring", "chain"])),
        rotations=rots,
        n_qubits=draw(st.integers(1, 5)),
    )
    feats, thetas = [], []
    for i in range(draw(st.integers(1, min(4, enc.max_features)))):
        a, b, g, p = (draw(angle) for _ in range(4))
        explicit = None
        if draw(st.booleans()):
            flat = draw(st.lists(angle, min_size=enc.width, max_size=enc.width))
            explicit = np.array(flat).reshape(enc.theta_shape)
        feats.append(Feature(f"f{i}", "c", beta=b, alpha=a, gamma=g, phi=p, theta=explicit))
        thetas.append(synthesised_theta(enc, a, b, g, p) if explicit is None else explicit)
    d = Dictionary("Oracle", feats, {"c": [f.name for f in feats]}, enc)
    return d, thetas


@settings(max_examples=60, deadline=None)
@given(hea_dictionaries())
def test_hea_gram_matches_tensordot_oracle(case: tuple[Dictionary, list[np.ndarray]]) -> None:
    d, thetas = case
    states = np.array([hea_oracle(t, d.encoding) for t in thetas])  # type: ignore[arg-type]
    np.testing.assert_allclose(d.gram(), states.conj() @ states.T, atol=1e-12, rtol=0)
    for f, t in zip(d.features, thetas):
        np.testing.assert_array_equal(d.encoding.theta_of(f), t)  # type: ignore[union-attr]


def test_two_qubit_ring_applies_both_cnots() -> None:
    # n = 2 ring = chain (0,1) plus (1,0): it differs from the chain.
    theta = np.array([[[0.4, 1.3]]])
    ring, chain = HEA_Rung2(1, "ring", ("Ry",), None, 2), HEA_Rung2(1, "chain", ("Ry",), None, 2)
    f = Feature("x", "c", beta=0.0, theta=theta)
    for enc in (ring, chain):
        (state,) = Dictionary("R", [f], {"c": ["x"]}, enc).states()
        np.testing.assert_allclose(state, hea_oracle(theta, enc), atol=1e-15, rtol=0)
    c0, s0, c1, s1 = math.cos(0.2), math.sin(0.2), math.cos(0.65), math.sin(0.65)
    # Ry⊗Ry|00⟩ = (c0c1, c0s1, s0c1, s0s1); CNOT(0,1) swaps 10↔11, CNOT(1,0) swaps 01↔11.
    np.testing.assert_allclose(
        Dictionary("R", [f], {"c": ["x"]}, ring).states()[0],
        [c0 * c1, s0 * c1, s0 * s1, c0 * s1],
        atol=1e-15,
    )


# ------------------------------------------------------- encoding fields
@pytest.mark.parametrize("rotations", [None, 5, 1.5, b"Ry", "Ry", ["Ry", None], [["Ry"]]])
def test_unusable_rotations_raise_value_error(rotations: object) -> None:
    with pytest.raises(DictionaryError, match="HEA_Rung2.rotations: got .*Rx, Ry, Rz"):
        HEA_Rung2(depth=1, rotations=rotations)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, r"depth: got 0; must be an int in \[1, 1024\]"),
        ({"depth": -2}, r"depth: got -2; must be an int in \[1, 1024\]"),
        ({"depth": 2, "rotations": ("Ry", "Rq")}, "'Rq'"),
        ({"depth": 2, "rotations": ()}, "non-empty"),
        ({"depth": 2, "entangler": "all-to-all"}, "entangler"),
        ({"depth": 2, "tier_separation_bound": 1.5}, r"\[0, 1\]"),
        ({"depth": 2, "tier_separation_bound": -0.1}, r"\[0, 1\]"),
        ({"depth": 2, "n_qubits": 0}, "n_qubits"),
    ],
)
def test_hea_errors_name_field_value_and_rule(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HEA_Rung2(**kwargs)  # type: ignore[arg-type]


def test_hea_defaults_and_shape() -> None:
    e = HEA_Rung2(depth=3)
    assert (e.depth, e.entangler, e.rotations, e.tier_separation_bound, e.n_qubits) == (
        3,
        "ring",
        ("Ry", "Rz"),
        0.025,
        3,
    )
    assert e.theta_shape == (2, 3, 3) and e.max_features == 8
    assert HEA_Rung2(depth=2, rotations=("Rx", "Ry", "Rz"), n_qubits=4).theta_shape == (3, 2, 4)
    assert HEA_Rung2(depth=2, n_qubits=10).max_features == 1024
    assert HEA_Rung2(depth=2) == HEA_Rung2(depth=2) != HEA_Rung2(depth=3)


@pytest.mark.parametrize("bound", [np.float32(0.5), np.float64(0.025), np.int64(0)])
def test_numpy_tier_bound_becomes_a_plain_float(bound: object) -> None:
    enc = HEA_Rung2(depth=2, tier_separation_bound=bound)  # type: ignore[arg-type]
    assert type(enc.tier_separation_bound) is float
    assert enc.tier_separation_bound == float(bound)  # type: ignore[arg-type]
    # The runner script rebuilds the encoding from its repr.
    assert eval(repr(enc), {"HEA_Rung2": HEA_Rung2}) == enc


def test_rung3_bond_dim() -> None:
    assert Rung3().bond_dim == 2 and Rung3.max_features == 16 and Rung3().max_features == 16
    with pytest.raises(ValueError, match="bond_dim must be 2"):
        Rung3(bond_dim=3)


# ------------------------------------------------------- Rung3 helpers
def test_rung3_defaults_and_helpers() -> None:
    assert math.pi / 4 == RUNG3_DEFAULT_THETA_AMP and RUNG3_DEFAULT_PSI_AUX == 0.0
    ref = REFERENCE["rung3"]
    assert ref["defaults"] == {"theta_amp": RUNG3_DEFAULT_THETA_AMP, "psi_aux": 0.0}
    assert rung3_amp_overlap_squared(math.pi / 4, 0.0, math.pi / 4, 0.0) == pytest.approx(
        1.0, abs=1e-15
    )
    assert rung3_amp_overlap_squared(math.pi / 4, 0.0, math.pi / 4, math.pi) < 1e-30
    for case in ref["amp_overlap_cases"]:
        args = (case["theta_a"], case["psi_a"], case["theta_b"], case["psi_b"])
        a = rung3_amp_overlap(*args)
        assert abs(a - complex(*case["amp_overlap"])) < 1e-12
        assert rung3_amp_overlap_squared(*args) == pytest.approx(case["amp_overlap_sq"], abs=1e-15)
        sa = Rung3State(0.1, 0.2, 0.3, 0.4, case["theta_a"], case["psi_a"])
        sb = Rung3State.from_mps_knobs(0.0, 0.0, 0.0, 0.0, case["theta_b"], case["psi_b"])
        assert sa.amp_overlap_squared(sb) == rung3_amp_overlap_squared(*args)
    s = Rung3State.from_mps_knobs(0.1, 0.2, 0.3, 0.4)
    assert (s.alpha, s.beta, s.gamma, s.phi) == (0.1, 0.2, 0.3, 0.4)
    assert (s.theta_amp, s.psi_aux) == (RUNG3_DEFAULT_THETA_AMP, RUNG3_DEFAULT_PSI_AUX)


def test_theta_amp_zero_halves_the_overlap() -> None:
    # |a(π/4, 0; 0, 0)|² = cos²(π/4) = ½ multiplies every |G|² of that feature.
    feats = [Feature("a", "c1", beta=0.0), Feature("b", "c2", beta=0.5, alpha=0.1, gamma=0.05)]
    d = Dictionary("toy", feats, {"c1": ["a"], "c2": ["b"]}, Rung3())
    ratio = d.with_knob("b.theta_amp", 0.0).overlaps()[0, 1] / d.overlaps()[0, 1]
    assert ratio == pytest.approx(0.5, rel=1e-12)


# --------------------------------------------------- refused φ writes
def test_refused_phi_write_names_the_theta_path() -> None:
    theta = np.zeros((2, 2, 3))
    feats = [Feature("dog", "c", beta=0.1, theta=theta), Feature("cat", "c", beta=0.2)]
    d = Dictionary("D", feats, {"c": ["dog", "cat"]}, HEA_Rung2(depth=2))
    for path in ("dog.phi", "c.phi"):
        with pytest.raises(KnobError, match=r"'dog\.theta\[r,d,q\]'.*\(2, 2, 3\)"):
            d.with_knob(path, 0.3)
    # Writing the cat's φ (default θ, Rz slot [1, 0, 1]) still works.
    assert d.with_knob("cat.phi", 0.3).knob_table[1, d.encoding.flat(1, 0, 1)] == 0.3  # type: ignore[union-attr]
