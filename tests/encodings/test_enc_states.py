"""Rust-simulator states, through ``Dictionary.states()``, against closed forms
and an independent dense-matrix oracle."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from enc_helpers import (
    amp_vector,
    animals_hea,
    complex_matrix,
    hea_from_repr,
    mps_closed_form,
    schmidt_rank_oracle,
    variant_dictionary,
)
from hypothesis import given
from hypothesis import strategies as st

from conftest import REFERENCE
from oracle import cnot, hea_state, on, ry
from polygram import Dictionary, Feature, HEA_Rung2, MPSRung1, Rung3

angle = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)
amp_theta = st.floats(0.0, math.pi / 2, allow_nan=False)
mps_knobs = st.tuples(angle, angle, angle, angle)


def one(f: Feature, encoding: Any) -> Dictionary:
    return Dictionary("One", [f], {f.cluster: [f.name]}, encoding)


@pytest.mark.parametrize(
    "case", REFERENCE["mps_rung1_statevectors"], ids=lambda c: str(c["inputs"])
)
def test_closed_form_table_matches_reference(case: dict[str, Any]) -> None:
    i = case["inputs"]
    want = np.array([complex(*x) for x in case["amplitudes"]])
    state = mps_closed_form(i["alpha"], i["beta"], i["gamma"], i["phi"])
    np.testing.assert_allclose(state, want, atol=1e-12, rtol=0)


@given(mps_knobs, amp_theta, angle)
def test_rung3_state_is_mps_times_amp_branch(k: tuple[float, ...], th: float, ps: float) -> None:
    a, b, g, p = k
    f = Feature("x", "c", beta=b, alpha=a, gamma=g, phi=p, theta_amp=th, psi_aux=ps)
    (state,) = one(f, Rung3()).states()
    # Compact 16-vector: index 2·k + j, k the MPS basis index, j ∈ {|00⟩, |11⟩}.
    np.testing.assert_allclose(
        state, np.kron(mps_closed_form(a, b, g, p), amp_vector(th, ps)), atol=1e-14, rtol=0
    )
    assert math.isclose(np.vdot(state, state).real, 1.0, abs_tol=1e-14)


@given(mps_knobs, amp_theta, angle)
def test_rung3_state_matches_a_dense_five_qubit_circuit(
    k: tuple[float, ...], th: float, ps: float
) -> None:
    a, b, g, p = k
    (compact,) = one(
        Feature("x", "c", beta=b, alpha=a, gamma=g, phi=p, theta_amp=th, psi_aux=ps), Rung3()
    ).states()
    # q0..q2: the MPS; q3, q4: Ry(2θ) on q3, CNOT(3→4), phase e^{iψ} on q3 = 1.
    s = np.kron(mps_closed_form(a, b, g, p), np.eye(4)[0])
    phase = np.diag([1.0, complex(math.cos(ps), math.sin(ps))])
    for gate in (on(5, 3, ry(2 * th)), cnot(5, 3, 4), on(5, 3, phase)):
        s = gate @ s
    full = np.zeros(32, dtype=complex)
    full[0::4] = compact[0::2]  # q3 q4 = 00
    full[3::4] = compact[1::2]  # q3 q4 = 11
    np.testing.assert_allclose(full, s, atol=1e-14, rtol=0)


@st.composite
def hea_cases(draw: st.DrawFn) -> tuple[HEA_Rung2, np.ndarray]:
    rots = draw(st.permutations(["Rx", "Ry", "Rz"]).map(tuple))
    rots = rots[: draw(st.integers(1, 3))]
    enc = HEA_Rung2(
        depth=draw(st.integers(1, 3)),
        entangler=draw(st.sampled_from(["ring", "chain"])),
        rotations=rots,
        n_qubits=draw(st.integers(1, 4)),
    )
    theta = np.array(draw(st.lists(angle, min_size=enc.width, max_size=enc.width)))
    return enc, theta.reshape(enc.theta_shape)


@given(hea_cases())
def test_hea_state_matches_the_dense_oracle(case: tuple[HEA_Rung2, np.ndarray]) -> None:
    enc, theta = case
    (state,) = one(Feature("x", "c", beta=0.0, theta=theta), enc).states()
    want = hea_state(theta, enc.rotations, enc.entangler)
    np.testing.assert_allclose(state, want, atol=1e-13, rtol=0)
    assert math.isclose(np.vdot(state, state).real, 1.0, abs_tol=1e-13)


def test_hea_default_theta_examples() -> None:
    ref = REFERENCE["hea_rung2"]
    d = animals_hea()
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2)
    assert list(enc.theta_shape) == ref["theta_shape"]
    np.testing.assert_array_equal(
        enc.default_theta(d.feature("dog_poodle")), ref["default_theta_dog_poodle"]
    )
    ex = ref["default_theta_with_phi_example"]
    f = Feature("x", "c", **{k: ex["feature"][k] for k in ("alpha", "beta", "gamma", "phi")})
    np.testing.assert_array_equal(HEA_Rung2(depth=2).default_theta(f), ex["theta"])


@pytest.mark.parametrize(
    "case",
    [c for c in REFERENCE["hea_rung2_variants"] if "default_thetas" in c],
    ids=lambda c: c["encoding"],
)
def test_hea_variant_default_thetas(case: dict[str, Any]) -> None:
    d = variant_dictionary(case)
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2)
    for name, theta in case["default_thetas"].items():
        np.testing.assert_array_equal(enc.default_theta(d.feature(name)), theta, err_msg=name)
        (state,) = one(d.feature(name), enc).states()
        want = hea_state(np.array(theta), enc.rotations, enc.entangler)
        np.testing.assert_allclose(state, want, atol=1e-14, rtol=0)


def test_hea_explicit_theta_variant_state() -> None:
    case = REFERENCE["hea_rung2_variants"][3]
    d = variant_dictionary(case)
    # q has an all-zero default θ, so ψ_q = |000⟩ and G[q][p] = ⟨000|ψ_p⟩.
    states = d.states()
    np.testing.assert_allclose(states[1], np.eye(8)[0], atol=0)
    np.testing.assert_allclose(states[0][0], complex_matrix(case["gram"])[1][0], atol=1e-12, rtol=0)


# ------------------------------------------------------------------ Schmidt ranks
@pytest.mark.parametrize("case", REFERENCE["schmidt_rank_cases"], ids=lambda c: str(c["inputs"]))
@pytest.mark.parametrize("encoding", [MPSRung1(), Rung3()], ids=["mps", "rung3"])
def test_schmidt_rank_cases(case: dict[str, Any], encoding: Any) -> None:
    i = case["inputs"]
    f = Feature("x", "c", beta=i["beta"], alpha=i["alpha"], gamma=i["gamma"], phi=i["phi"])
    d = one(f, encoding)
    assert d.schmidt_ranks().tolist() == [case["rank"]]
    # Rung3: the amp branch is a product factor on q3 q4, so any amp knobs agree.
    if isinstance(encoding, Rung3):
        d2 = d.with_knobs({"x.theta_amp": 0.4, "x.psi_aux": 2.0})
        assert d2.schmidt_ranks().tolist() == [case["rank"]]


@given(mps_knobs, amp_theta, angle)
def test_schmidt_rank_closed_form(k: tuple[float, ...], th: float, ps: float) -> None:
    a, b, g, p = k
    want = int(abs(math.cos(a / 2)) > 1e-9) + int(abs(math.sin(a / 2)) > 1e-9)
    f = Feature("x", "c", beta=b, alpha=a, gamma=g, phi=p, theta_amp=th, psi_aux=ps)
    assert one(f, MPSRung1()).schmidt_ranks().tolist() == [want]
    assert one(f, Rung3()).schmidt_ranks().tolist() == [want]


@given(hea_cases())
def test_hea_schmidt_rank_uses_the_hea_state(case: tuple[HEA_Rung2, np.ndarray]) -> None:
    """HEA ranks: the q0 | q1…q(n−1) cut of the actual HEA state (01 §1.4 [free])."""
    enc, theta = case
    d = one(Feature("x", "c", beta=0.0, theta=theta), enc)
    rank = int(d.schmidt_ranks()[0])
    sv = np.linalg.svd(d.states()[0].reshape(2, -1), compute_uv=False)
    if enc.n_qubits == 1:
        assert rank == 1
    elif np.all(np.abs(sv - 1e-9) > 1e-11):  # skip values on the threshold
        assert rank == schmidt_rank_oracle(d.states()[0])


def test_hea_schmidt_rank_can_be_two() -> None:
    # Ry(π/2) on q0 then CNOT(0→1): a Bell pair across the q0 | rest cut.
    enc = HEA_Rung2(depth=1, entangler="chain", rotations=("Ry",), n_qubits=2)
    theta = np.array([[[math.pi / 2, 0.0]]])
    d = one(Feature("x", "c", beta=0.0, theta=theta), enc)
    assert d.schmidt_ranks().tolist() == [2]
    assert hea_from_repr(repr(enc)) == enc
