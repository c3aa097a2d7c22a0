"""Gram parity with reference_values.json (``hea_rung2``, ``hea_rung2_variants``,
``rung3``) and the Rung3 factorisation ``G = G_MPS ⊙ a``.

Matrices in the reference file are rounded to 12 decimals: atol 1e-12."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from enc_helpers import (
    amp_overlap,
    animals_hea,
    complex_matrix,
    quickstart_rung3,
    variant_dictionary,
)
from hypothesis import given
from hypothesis import strategies as st

from conftest import REFERENCE, quickstart_dictionary
from oracle import gram as oracle_gram
from oracle import hea_state
from polygram import Dictionary, Feature, HEA_Rung2, MPSRung1, Rung3, Rung3State

ATOL = 1e-12
angle = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)


def test_animals_hea_gram_overlaps_tiers() -> None:
    ref = REFERENCE["hea_rung2"]
    d = animals_hea()
    np.testing.assert_allclose(d.gram(), complex_matrix(ref["gram"]), atol=ATOL, rtol=0)
    np.testing.assert_allclose(d.overlaps(), np.array(ref["overlap_sq"]), atol=ATOL, rtol=0)
    assert d.tier_separation() == pytest.approx(ref["tier_separation"], abs=1e-12)
    assert d.overlaps()[0, 2] == pytest.approx(0.768593, abs=5e-7)


@pytest.mark.parametrize(
    "case", REFERENCE["hea_rung2_variants"], ids=lambda c: c["encoding"].split("(")[1][:40]
)
def test_hea_variant_grams(case: dict[str, Any]) -> None:
    d = variant_dictionary(case)
    np.testing.assert_allclose(d.gram(), complex_matrix(case["gram"]), atol=ATOL, rtol=0)
    if "tier_separation" in case:
        assert d.tier_separation() == pytest.approx(case["tier_separation"], abs=1e-12)
    # and the independent dense oracle agrees to round-off
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2)
    states = np.array(
        [hea_state(enc.theta_of(f), enc.rotations, enc.entangler) for f in d.features]
    )
    np.testing.assert_allclose(d.gram(), oracle_gram(states), atol=1e-14, rtol=0)


def test_rz_first_variant_overwrites_beta() -> None:
    """Pinned quirk (00 quirk 9): with Rz first, φ ≠ 0 replaces β in θ[0,0,1]."""
    case = REFERENCE["hea_rung2_variants"][2]
    d = variant_dictionary(case)
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2) and enc.rotations[0] == "Rz"
    assert enc.theta_of(d.feature("p"))[0, 0, 1] == 0.9  # φ, not β = 0.4
    assert enc.theta_of(d.feature("q"))[0, 0, 1] == 0.5  # φ == 0: β stays


# ------------------------------------------------------------------------ Rung3
def test_default_rung3_gram_is_exactly_the_mps_gram() -> None:
    mps = quickstart_dictionary()
    r3 = replace(mps, encoding=Rung3())
    assert np.array_equal(r3.gram(), mps.gram())
    assert REFERENCE["rung3"]["gram_equals_mps_at_defaults"] is True
    assert REFERENCE["rung3"]["defaults"] == {"theta_amp": math.pi / 4, "psi_aux": 0.0}
    f = Feature("x", "c", beta=0.1)
    assert (f.theta_amp, f.psi_aux) == (math.pi / 4, 0.0)


@given(st.lists(st.tuples(angle, angle, angle, angle), min_size=1, max_size=8))
def test_default_rung3_gram_equals_mps_bit_for_bit(rows: list[tuple[float, ...]]) -> None:
    feats = [
        Feature(f"f{i}", "k", beta=b, alpha=a, gamma=g, phi=p)
        for i, (a, b, g, p) in enumerate(rows)
    ]
    h = {"k": [f.name for f in feats]}
    assert np.array_equal(
        Dictionary("R", feats, h, Rung3()).gram(), Dictionary("R", feats, h, MPSRung1()).gram()
    )


@pytest.mark.parametrize("case", REFERENCE["rung3"]["amp_overlap_cases"], ids=str)
def test_amp_overlap_cases(case: dict[str, Any]) -> None:
    ta, pa, tb, pb = (case[k] for k in ("theta_a", "psi_a", "theta_b", "psi_b"))
    sa = Rung3State.from_mps_knobs(0.0, 0.3, 0.0, 0.0, theta_amp=ta, psi_aux=pa)
    sb = Rung3State(0.0, 0.3, 0.0, 0.0, theta_amp=tb, psi_aux=pb)
    want = complex(*case["amp_overlap"])
    assert abs(sa.amp_overlap(sb) - want) <= ATOL
    assert sa.amp_overlap_squared(sb) == pytest.approx(case["amp_overlap_sq"], abs=1e-12)
    # Through the Rust Gram: identical MPS knobs make G_MPS = 1, so G = a.
    feats = [
        Feature("a", "k", beta=0.3, theta_amp=ta, psi_aux=pa),
        Feature("b", "k", beta=0.3, theta_amp=tb, psi_aux=pb),
    ]
    g = Dictionary("A", feats, {"k": ["a", "b"]}, Rung3()).gram()
    assert abs(g[0, 1] - want) <= ATOL
    assert abs(g[0, 1] - amp_overlap(ta, pa, tb, pb)) <= 1e-15


def test_gram_with_bird_hawk_amp_knobs() -> None:
    ref = complex_matrix(REFERENCE["rung3"]["gram_with_bird_hawk_theta_amp_0.3_psi_aux_1.0"])
    d = quickstart_rung3(bird_hawk=(0.3, 1.0))
    np.testing.assert_allclose(d.gram(), ref, atol=ATOL, rtol=0)
    # same through with_knobs from the defaults
    d2 = quickstart_rung3().with_knobs({"bird_hawk.theta_amp": 0.3, "bird_hawk.psi_aux": 1.0})
    assert np.array_equal(d2.gram(), d.gram())


def test_amp_zeroing_example() -> None:
    """θ_b = π/4, ψ_b = π against the defaults gives a = 0 (spec 01 §1.7)."""
    d = quickstart_rung3(bird_hawk=(math.pi / 4, math.pi))
    assert abs(d.gram()[0, 2]) < 1e-15


@given(
    st.lists(
        st.tuples(angle, angle, angle, angle, st.floats(0, math.pi / 2), angle),
        min_size=1,
        max_size=8,
    )
)
def test_rung3_gram_is_mps_gram_times_amp_factor(rows: list[tuple[float, ...]]) -> None:
    feats = [
        Feature(f"f{i}", "k", beta=b, alpha=a, gamma=g, phi=p, theta_amp=t, psi_aux=s)
        for i, (a, b, g, p, t, s) in enumerate(rows)
    ]
    h = {"k": [f.name for f in feats]}
    r3 = Dictionary("R", feats, h, Rung3())
    mps = Dictionary("R", feats, h, MPSRung1())
    amp = np.array(
        [
            [amp_overlap(x.theta_amp, x.psi_aux, y.theta_amp, y.psi_aux) for y in feats]
            for x in feats
        ]
    )
    np.testing.assert_allclose(r3.gram(), mps.gram() * amp, atol=1e-14, rtol=0)
    # the 16-vector states give the same Gram
    s = r3.states()
    np.testing.assert_allclose(r3.gram(), s.conj() @ s.T, atol=1e-14, rtol=0)
    # branch law: both M and V scale by |a|²
    m, v, _ = r3.branch_law()
    m0, v0, _ = mps.branch_law()
    np.testing.assert_allclose(m, m0 * np.abs(amp) ** 2, atol=1e-14, rtol=0)
    np.testing.assert_allclose(v, v0 * np.abs(amp) ** 2, atol=1e-14, rtol=0)


def test_hea_has_no_branch_law() -> None:
    with pytest.raises(NotImplementedError, match="structural floor"):
        animals_hea().branch_law()
