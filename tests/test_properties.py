"""Hypothesis properties of the core against an independent numpy oracle."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from oracle import gram as oracle_gram
from oracle import mps_state
from polygram import Dictionary, Experiment, Feature

angle = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)
knobs = st.tuples(angle, angle, angle, angle)


@st.composite
def dictionaries(draw: st.DrawFn, min_size: int = 2, max_size: int = 8) -> Dictionary:
    n = draw(st.integers(min_size, max_size))
    n_clusters = draw(st.integers(1, n))
    feats, hierarchy = [], {}
    for i in range(n):
        a, b, g, p = draw(knobs)
        c = f"c{i % n_clusters}"
        feats.append(Feature(f"f{i}", c, beta=b, alpha=a, gamma=g, phi=p))
        hierarchy.setdefault(c, []).append(f"f{i}")
    return Dictionary("Rand", feats, hierarchy)


@given(dictionaries())
def test_gram_is_hermitian_psd_unit_diagonal(d: Dictionary) -> None:
    g = d.gram()
    np.testing.assert_allclose(g, g.conj().T, atol=1e-15)
    np.testing.assert_allclose(np.diag(g), 1.0, atol=1e-14)
    assert np.linalg.eigvalsh(g).min() > -1e-12
    ov = d.overlaps()
    assert ov.min() >= 0.0 and ov.max() <= 1.0 + 1e-14


@given(dictionaries())
def test_closed_form_equals_dense_simulation(d: Dictionary) -> None:
    states = np.array([mps_state(f.alpha, f.beta, f.gamma, f.phi) for f in d.features])
    np.testing.assert_allclose(d.states(), states, atol=1e-14)
    np.testing.assert_allclose(d.gram(), oracle_gram(states), atol=1e-14)


@given(knobs, knobs, angle, angle)
def test_m_plus_v_cos_delta(ka: tuple, kb: tuple, pa: float, pb: float) -> None:
    fa = Feature("a", "x", beta=ka[1], alpha=ka[0], gamma=ka[2], phi=pa)
    fb = Feature("b", "y", beta=kb[1], alpha=kb[0], gamma=kb[2], phi=pb)
    d = Dictionary("P", [fa, fb], {"x": ["a"], "y": ["b"]})
    m, v, floor = (x[0, 1] for x in d.branch_law())
    assert d.overlaps()[0, 1] == np.float64(m + v * math.cos(pa - pb)) or math.isclose(
        d.overlaps()[0, 1], m + v * math.cos(pa - pb), abs_tol=1e-13
    )
    assert floor <= d.overlaps()[0, 1] + 1e-13
    assert math.isclose(floor, m - abs(v), abs_tol=1e-15) or floor == 0.0


@given(dictionaries(), st.randoms(use_true_random=False))
def test_permutation_equivariance(d: Dictionary, rnd: object) -> None:
    order = list(range(len(d.features)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    p = Dictionary("Perm", [d.features[i] for i in order], d.hierarchy)
    np.testing.assert_allclose(p.gram(), d.gram()[np.ix_(order, order)], atol=1e-15)
    assert p.tier_separation() == d.tier_separation() or math.isclose(
        p.tier_separation() or 0.0, d.tier_separation() or 0.0, abs_tol=1e-14
    )


@given(
    dictionaries(), st.lists(angle, min_size=1, max_size=6), st.lists(angle, min_size=1, max_size=6)
)
def test_sweep_equals_brute_force_and_is_deterministic(
    d: Dictionary, xs: list[float], ys: list[float]
) -> None:
    a, b = d.features[0].name, d.features[1].name
    exp = Experiment(
        name="S",
        dictionary=d,
        target_pair=(a, b),
        sweep={f"{a}.phi": xs, f"{b}.phi": ys},
        assertions=["hierarchical_ordering_preserved"],
    )
    r = exp.run()
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            dd = d.with_knobs({f"{a}.phi": x, f"{b}.phi": y})
            np.testing.assert_allclose(r.gram_matrices[i, j], dd.gram(), atol=1e-15)
            assert math.isclose(r.overlaps[i, j], dd.overlaps()[0, 1], abs_tol=1e-15)
            ok = r.assertion_pass["hierarchical_ordering_preserved"][i, j]
            assert ok == dd.hierarchical_ordering_preserved(a, b)
    again = exp.run()
    assert np.array_equal(again.gram_matrices, r.gram_matrices)
    assert np.array_equal(again.overlaps, r.overlaps)


@given(dictionaries(), angle)
def test_uniform_phase_shift_preserves_overlaps(d: Dictionary, shift: float) -> None:
    moved = d
    for c in d.hierarchy:
        moved = moved.with_knob(f"{c}.phi", 0.0)
    base = moved.overlaps()
    for c in d.hierarchy:
        moved = moved.with_knob(f"{c}.phi", shift)
    np.testing.assert_allclose(moved.overlaps(), base, atol=1e-13)
