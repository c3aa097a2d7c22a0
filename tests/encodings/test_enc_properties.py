"""Hypothesis properties of random HEA_Rung2 and Rung3 dictionaries: normalised
states, Hermitian PSD unit-diagonal Grams, overlaps in [0, 1]."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from polygram import Dictionary, Experiment, Feature, HEA_Rung2, Rung3

angle = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)


def hierarchy_of(feats: list[Feature]) -> dict[str, list[str]]:
    h: dict[str, list[str]] = {}
    for f in feats:
        h.setdefault(f.cluster, []).append(f.name)
    return h


@st.composite
def hea_dictionaries(draw: st.DrawFn) -> Dictionary:
    rots = tuple(draw(st.permutations(["Rx", "Ry", "Rz"]))[: draw(st.integers(1, 3))])
    enc = HEA_Rung2(
        depth=draw(st.integers(1, 3)),
        entangler=draw(st.sampled_from(["ring", "chain"])),
        rotations=rots,
        n_qubits=draw(st.integers(1, 4)),
    )
    n = draw(st.integers(1, min(6, enc.max_features)))
    k = draw(st.integers(1, n))
    feats = []
    for i in range(n):
        a, b, g, p = (draw(angle) for _ in range(4))
        theta = None
        if draw(st.booleans()):
            flat = draw(st.lists(angle, min_size=enc.width, max_size=enc.width))
            theta = np.array(flat).reshape(enc.theta_shape)
        feats.append(Feature(f"f{i}", f"c{i % k}", beta=b, alpha=a, gamma=g, phi=p, theta=theta))
    return Dictionary("RandHea", feats, hierarchy_of(feats), enc)


@st.composite
def rung3_dictionaries(draw: st.DrawFn) -> Dictionary:
    n = draw(st.integers(1, 16))
    k = draw(st.integers(1, n))
    feats = []
    for i in range(n):
        a, b, g, p, s = (draw(angle) for _ in range(5))
        t = draw(st.floats(-math.pi, math.pi, allow_nan=False))  # outside [0, π/2] too
        feats.append(
            Feature(f"f{i}", f"c{i % k}", beta=b, alpha=a, gamma=g, phi=p, theta_amp=t, psi_aux=s)
        )
    return Dictionary("RandR3", feats, hierarchy_of(feats), Rung3())


def check_gram(d: Dictionary) -> None:
    states = d.states()
    np.testing.assert_allclose(np.linalg.norm(states, axis=1), 1.0, atol=1e-13)
    g = d.gram()
    np.testing.assert_allclose(g, g.conj().T, atol=1e-15)
    np.testing.assert_allclose(np.diag(g), 1.0, atol=1e-13)
    assert np.linalg.eigvalsh(g).min() > -1e-12
    np.testing.assert_allclose(g, states.conj() @ states.T, atol=1e-13)
    ov = d.overlaps()
    assert ov.min() >= 0.0 and ov.max() <= 1.0 + 1e-13
    rank = np.linalg.matrix_rank(g, tol=1e-9)
    assert rank <= states.shape[1]


@given(hea_dictionaries())
def test_random_hea_dictionaries(d: Dictionary) -> None:
    check_gram(d)
    sep = d.tier_separation()
    assert sep is None or -1.0 - 1e-12 <= sep <= 1.0 + 1e-12


@given(rung3_dictionaries())
def test_random_rung3_dictionaries(d: Dictionary) -> None:
    check_gram(d)


@given(rung3_dictionaries(), st.lists(st.floats(0, math.pi / 2), min_size=1, max_size=4))
def test_rung3_sweep_overlaps_are_in_unit_interval(d: Dictionary, values: list[float]) -> None:
    names = d.feature_names
    if len(names) < 2:
        return
    e = Experiment("S", d, (names[0], names[-1]), {f"{names[-1]}.theta_amp": values})
    r = e.run()
    assert r.overlaps.min() >= 0.0 and r.overlaps.max() <= 1.0 + 1e-13
    for i, v in enumerate(values):
        w = d.with_knob(f"{names[-1]}.theta_amp", v)
        np.testing.assert_allclose(r.gram_matrices[i], w.gram(), atol=1e-14, rtol=0)
