"""Spec 15 §8 (``CancellationResult.at_structural_floor``) and §7.3
(``Cancellation(config=CancellationConfig)``)."""

from __future__ import annotations

import math
import warnings

import pytest
from spec15_cases import CASES

from conftest import REFERENCE, dictionary_from_spec, quickstart_dictionary
from polygram import Cancellation


def test_quickstart_is_at_its_floor_and_efficiency_stays_none() -> None:
    want = CASES["at_structural_floor"]["expected"]["quickstart"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the port does not warn here (0.15 did)
        r = Cancellation(quickstart_dictionary(), ("dog_poodle", "bird_hawk")).run()
    assert r.before_overlap == pytest.approx(want["before_overlap"], abs=1e-9)
    assert r.after_overlap == pytest.approx(want["after_overlap"], abs=1e-9)
    assert r.structural_floor == pytest.approx(want["structural_floor"], abs=1e-9)
    assert r.at_structural_floor is want["at_structural_floor"] is True
    assert r.cancellation_efficiency is want["cancellation_efficiency"] is None


def test_gap_pair_is_not_at_its_floor() -> None:
    want = CASES["at_structural_floor"]["expected"]["gap_pair"]
    d = dictionary_from_spec(REFERENCE["cancellation_gap_case"]["dictionary"])
    r = Cancellation(d, ("a1", "b1")).run()
    assert r.before_overlap == pytest.approx(want["before_overlap"], abs=1e-9)
    assert r.after_overlap == pytest.approx(want["after_overlap"], abs=1e-9)
    assert r.structural_floor == pytest.approx(want["structural_floor"], abs=1e-9)
    assert r.at_structural_floor is False
    assert r.cancellation_efficiency == pytest.approx(want["cancellation_efficiency"], abs=1e-9)


@pytest.mark.parametrize(
    ("before", "after", "floor", "flag"),
    [
        (0.5, 0.5, 0.5, True),
        (0.5 + 9e-7, 0.5 - 9e-7, 0.5, True),
        (0.5 + 2e-6, 0.5, 0.5, False),
        (0.5, 0.5 + 2e-6, 0.5, False),
        (0.5, 0.5, math.nan, False),
        (0.5, 0.5, math.inf, False),
    ],
)
def test_flag_rule(before: float, after: float, floor: float, flag: bool) -> None:
    r = Cancellation(quickstart_dictionary(), ("dog_poodle", "bird_hawk")).run()
    from dataclasses import replace

    r2 = replace(r, before_overlap=before, after_overlap=after, structural_floor=floor)
    assert r2.at_structural_floor is flag
    assert type(r2.at_structural_floor) is bool


def test_config_precedence() -> None:
    from polygram.config import CancellationConfig

    d = quickstart_dictionary()
    pair = ("dog_poodle", "bird_hawk")
    plain = Cancellation(d, pair)
    assert (plain.tolerance, plain.preserve_tiers, plain.grid_outer, plain.min_amp_overlap) == (
        0.05,
        True,
        (5, 5),
        0.0,
    )
    assert plain.optimize == {"method": "grid", "max_steps": 50}
    cfg = CancellationConfig(tolerance=0.2, preserve_tiers=False, optimize={"max_steps": 7})
    c = Cancellation(d, pair, config=cfg)
    assert (c.tolerance, c.preserve_tiers, c.max_steps) == (0.2, False, 7)
    c = Cancellation(
        d, pair, tolerance=0.3, optimize={"method": "grid", "max_steps": 4}, config=cfg
    )
    assert (c.tolerance, c.preserve_tiers, c.max_steps) == (0.3, False, 4)
    # the resolved search is the same as spelling the values out
    a = Cancellation(d, pair, config=cfg).run()
    b = Cancellation(d, pair, tolerance=0.2, preserve_tiers=False, optimize={"max_steps": 7}).run()
    assert a.after_overlap == b.after_overlap and a.optimized_knobs == b.optimized_knobs
    with pytest.raises(TypeError, match="CancellationConfig"):
        Cancellation(d, pair, config={"tolerance": 0.2})  # type: ignore[arg-type]
