"""Cancellation against an independent numpy oracle (spec 03 §3.2, §3.3, §3.6):
statevectors from dense gates (tests/oracle.py), the feasibility rule of
02 §2.4 written out, the first-index tie-break, the anchor-based structural
floor and the efficiency rule — plus input checks found in the spec audit."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import quickstart_dictionary
from oracle import gram, mps_state
from polygram import Cancellation, Dictionary, Feature, Rung3
from polygram.errors import ExperimentError, GridTooLargeError

PAIR = ("dog_poodle", "bird_hawk")
angles = st.floats(-1.5, 1.5, allow_nan=False)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[tuple[str, str, list[float]]], dict[str, list[str]]]:
    """1–3 clusters of 1–3 features (≤ 8), random α/β/γ/φ."""
    feats: list[tuple[str, str, list[float]]] = []
    hierarchy: dict[str, list[str]] = {}
    for c in range(draw(st.integers(1, 3))):
        size = draw(st.integers(1, min(3, 8 - len(feats)) if c == 2 else 3))  # MPSRung1 holds 8
        names = [f"c{c}f{i}" for i in range(size)]
        hierarchy[f"c{c}"] = names
        for name in names:
            p = [draw(angles), draw(angles), draw(angles), draw(st.floats(0, 2 * math.pi))]
            feats.append((name, f"c{c}", p))
    return feats, hierarchy


def oracle_overlaps(params: list[list[float]]) -> np.ndarray:
    return np.asarray(np.abs(gram(np.array([mps_state(*p) for p in params]))) ** 2)


def oracle_feasible(
    ov: np.ndarray,
    ia: int,
    ib: int,
    clusters: list[str],
    hierarchy: dict[str, list[str]],
    names: list[str],
) -> bool:
    """02 §2.4: every sibling S of A (resp. B) has |G_AS|² + 1e-12 ≥ |G_AB|²."""
    c = ov[ia, ib]
    for x in (ia, ib):
        for s in hierarchy[clusters[x]]:
            j = names.index(s)
            if j != x and not ov[x, j] + 1e-12 >= c:
                return False
    return True


@settings(max_examples=60, deadline=None)
@given(layouts(), st.integers(1, 8), st.booleans(), st.data())
def test_grid_against_statevector_oracle(
    layout: tuple[list[tuple[str, str, list[float]]], dict[str, list[str]]],
    n: int,
    tiers: bool,
    data: st.DataObject,
) -> None:
    feats, hierarchy = layout
    names = [f[0] for f in feats]
    if len(names) < 2:
        return
    # any two distinct features: same cluster, singleton clusters and all
    ia, ib = data.draw(
        st.tuples(st.integers(0, len(names) - 1), st.integers(0, len(names) - 1)).filter(
            lambda t: t[0] != t[1]
        )
    )
    d = Dictionary(
        "Rand",
        [Feature(nm, c, beta=p[1], alpha=p[0], gamma=p[2], phi=p[3]) for nm, c, p in feats],
        hierarchy,
    )
    r = Cancellation(
        d, (names[ia], names[ib]), preserve_tiers=tiers, optimize={"max_steps": n}
    ).run()
    params = [list(p) for _, _, p in feats]
    clusters = [c for _, c, _ in feats]
    axis = np.linspace(0.0, 2 * math.pi, n)
    want_ov, want_ok = [], []
    for x, y in itertools.product(axis, axis):
        q = [list(p) for p in params]
        q[ia][3], q[ib][3] = x, y
        ov = oracle_overlaps(q)
        want_ov.append(ov[ia, ib])
        ok = oracle_feasible(ov, ia, ib, clusters, hierarchy, names) if tiers else True
        want_ok.append(ok)
    ovs, oks = np.array(want_ov), np.array(want_ok)
    assert r.trajectory is not None
    np.testing.assert_allclose(r.trajectory[:, 2], ovs, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(r.trajectory[:, :2], list(itertools.product(axis, axis)))
    # feasibility may differ only where a sibling sits on the 1e-12 slack boundary
    for i in np.flatnonzero(r.feasible_mask != oks):
        q = [list(p) for p in params]
        q[ia][3], q[ib][3] = r.trajectory[i, 0], r.trajectory[i, 1]
        ov = oracle_overlaps(q)
        gaps = [
            abs(ov[x, names.index(s)] + 1e-12 - ov[ia, ib])
            for x in (ia, ib)
            for s in hierarchy[clusters[x]]
            if names.index(s) != x
        ]
        assert min(gaps) < 1e-11
    pool = np.flatnonzero(r.feasible_mask) if r.feasible_mask.any() else np.arange(n * n)
    assert r.after_overlap == pytest.approx(ovs[pool].min(), abs=1e-12)
    assert r.feasible_count == int(r.feasible_mask.sum())
    # structural floor: anchor a = φ_A, min over (a, a) and (a, a + π)
    a = params[ia][3]
    at = []
    for y in (a, a + math.pi):
        q = [list(p) for p in params]
        q[ib][3] = y
        q[ia][3] = a
        at.append(oracle_overlaps(q)[ia, ib])
    floor = min(at)
    before = oracle_overlaps(params)[ia, ib]
    assert r.structural_floor == pytest.approx(floor, abs=1e-12)
    assert r.before_overlap == pytest.approx(before, abs=1e-12)
    if before - floor < 1e-9 - 1e-12:
        assert r.cancellation_efficiency is None
    elif before - floor > 1e-9 + 1e-12:
        want = float(np.clip((before - r.after_overlap) / (before - floor), 0, 1))
        # 1e-12 errors in before/floor are amplified by 1 / gap
        assert r.cancellation_efficiency == pytest.approx(want, abs=1e-9 + 4e-12 / (before - floor))


# ------------------------------------------------------------ input checks
@pytest.mark.parametrize("encoding", [["mps"], {"mps": 1}, b"mps", 3])
def test_non_string_encoding_is_a_value_error(encoding: Any) -> None:
    with pytest.raises(
        ExperimentError, match=r"Cancellation.encoding: got .*allowed \['hea', 'mps', 'rung3'\]"
    ):
        Cancellation(quickstart_dictionary(), PAIR, encoding=encoding)


def rung3_quickstart() -> Dictionary:
    d = quickstart_dictionary()
    return Dictionary("R3", list(d.features), d.hierarchy, Rung3())


def test_grid_outer_accepts_a_numpy_pair() -> None:
    pytest.importorskip("scipy")
    c = Cancellation(
        rung3_quickstart(), PAIR, grid_outer=np.array([2, 3]), optimize={"max_steps": 3}
    )
    assert c.grid_outer == (2, 3) and all(type(x) is int for x in c.grid_outer)
    t = Cancellation(rung3_quickstart(), PAIR, grid_outer=(2, 3), optimize={"max_steps": 3})
    assert c.run().after_overlap == t.run().after_overlap
    for bad in (np.array([[2, 3]]), np.array([2, 3, 4]), np.array([2.5, 3])):
        with pytest.raises(ExperimentError, match="grid_outer"):
            Cancellation(rung3_quickstart(), PAIR, grid_outer=bad)


def test_rung3_outer_grid_is_refused_before_allocating() -> None:
    """A huge grid_outer (each cell one inner point) is refused at construction
    with the byte count, instead of allocating M·N-cell arrays."""
    with pytest.raises(GridTooLargeError, match=r"10,000,000,000,000 cells .* smaller grid_outer"):
        Cancellation(rung3_quickstart(), PAIR, grid_outer=(10**7, 10**6), optimize={"max_steps": 1})
    with pytest.raises(GridTooLargeError, match="12,800 bytes"):
        Cancellation(
            rung3_quickstart(),
            PAIR,
            grid_outer=(10, 10),
            optimize={"max_steps": 1},
            max_grid_bytes=12_799,
        )
    Cancellation(
        rung3_quickstart(),
        PAIR,
        grid_outer=(10, 10),
        optimize={"max_steps": 1},
        max_grid_bytes=12_800,
    )
    # and by the search itself (the budget may change after construction)
    pytest.importorskip("scipy")
    from polygram._rung3_joint import run_rung3_joint

    with pytest.raises(GridTooLargeError, match="cells"):
        run_rung3_joint(
            rung3_quickstart(), PAIR, max_steps=1, grid_outer=(10, 10), max_grid_bytes=12_799
        )
