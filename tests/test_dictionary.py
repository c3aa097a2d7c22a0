"""Feature / Dictionary construction rules, knob paths and immutability."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polygram import Dictionary, Feature, HEA_Rung2, MPSRung1, Rung3
from polygram.errors import (
    CapacityError,
    DictionaryError,
    KnobError,
    PolygramError,
    UnknownFeatureError,
)


def two(**kw: object) -> Dictionary:
    feats = [Feature("a", "x", beta=0.1), Feature("b", "y", beta=-0.2)]
    return Dictionary("D", feats, {"x": ["a"], "y": ["b"]}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["beta", "alpha", "gamma", "phi", "theta_amp", "psi_aux"])
def test_non_finite_knobs_are_refused_with_the_field(field: str, value: float) -> None:
    kw = {"beta": 0.0, field: value}
    with pytest.raises(DictionaryError, match=field):
        Feature("a", "x", **kw)  # type: ignore[arg-type]


def test_feature_validation() -> None:
    with pytest.raises(DictionaryError, match="Feature.name"):
        Feature("", "x", beta=0.0)
    with pytest.raises(DictionaryError, match="beta"):
        Feature("a", "x", beta="0.5")  # type: ignore[arg-type]
    with pytest.raises(DictionaryError, match="theta"):
        Feature("a", "x", beta=0.0, theta=np.array([[[np.nan]]]))
    f = Feature("a", "x", -0.5)  # positional: name, cluster, beta
    assert f.beta == -0.5 and f.theta_amp == pytest.approx(math.pi / 4)
    assert f != Feature("a", "x", -0.5)  # identity equality
    with pytest.raises(AttributeError):
        f.beta = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "features", "hierarchy", "match"),
    [
        ("1bad", [("a", "x")], {"x": ["a"]}, "Dictionary.name"),
        ("a-b", [("a", "x")], {"x": ["a"]}, "Dictionary.name"),
        ("D", [], {}, "no features"),
        ("D", [("a", "x"), ("a", "x")], {"x": ["a"]}, r"duplicate feature names \['a'\]"),
        ("D", [("x", "x")], {"x": ["x"]}, "both as feature and cluster"),
        ("D", [("a", "x"), ("b", "y")], {"x": ["a"], "y": ["a", "b"]}, "both 'x' and 'y'"),
        ("D", [("a", "z")], {"x": ["a"]}, "not a hierarchy key"),
        ("D", [("a", "x"), ("b", "x")], {"x": ["a"]}, "not listed under its cluster"),
        ("D", [("a", "x")], {"x": ["a", "ghost"]}, "unknown feature"),
        ("D", [("a_b", "x"), ("A_B", "x")], {"x": ["a_b", "A_B"]}, "share the emitted name"),
    ],
)
def test_dictionary_validation(
    name: str, features: list[tuple[str, str]], hierarchy: dict[str, list[str]], match: str
) -> None:
    feats = [Feature(n, c, beta=0.0) for n, c in features]
    with pytest.raises(DictionaryError, match=match):
        Dictionary(name, feats, hierarchy)


def test_capacity_is_enforced_per_encoding() -> None:
    nine = [Feature(f"f{i}", "k", beta=0.1 * i) for i in range(9)]
    with pytest.raises(CapacityError, match=r"9 features exceed the capacity of MPSRung1 \(8"):
        Dictionary("Big", nine, {"k": [f.name for f in nine]})
    big = Dictionary("Big", nine, {"k": [f.name for f in nine]}, Rung3())
    assert big.gram().shape == (9, 9)
    with pytest.raises(CapacityError, match="HEA_Rung2"):
        Dictionary("Big", nine[:5], {"k": [f.name for f in nine[:5]]}, HEA_Rung2(1, n_qubits=2))
    assert isinstance(CapacityError("x"), ValueError)


def test_encoding_fields_are_validated() -> None:
    with pytest.raises(DictionaryError, match="bond_dim"):
        MPSRung1(bond_dim=3)
    with pytest.raises(DictionaryError, match="depth"):
        HEA_Rung2(depth=0)
    with pytest.raises(DictionaryError, match="entangler"):
        HEA_Rung2(depth=1, entangler="star")
    with pytest.raises(DictionaryError, match="rotations"):
        HEA_Rung2(depth=1, rotations=("Ry", "Rq"))
    with pytest.raises(DictionaryError, match="tier_separation_bound"):
        HEA_Rung2(depth=1, tier_separation_bound=1.5)
    with pytest.raises(DictionaryError, match="theta shape"):
        Dictionary(
            "H",
            [Feature("a", "x", beta=0.0, theta=np.zeros((1, 1, 3)))],
            {"x": ["a"]},
            HEA_Rung2(depth=2),
        )


@pytest.mark.parametrize(
    "path",
    [
        "a.phi\n",
        " a.phi",
        "a.Phi",
        "a.phi.x",
        "a.theta[0,0]",
        "a.theta[-1,0,0]",
        "a.theta[0, 0, 0]",
        "1a.phi",
        "a",
        "",
        ".phi",
    ],
)
def test_malformed_knob_paths(path: str) -> None:
    with pytest.raises(KnobError, match="malformed"):
        two().with_knob(path, 0.1)


def test_knob_writes(quickstart: Dictionary) -> None:
    d = quickstart.with_knob("bird_hawk.phi", 0.7)
    assert d.feature("bird_hawk").phi == 0.7
    assert quickstart.feature("bird_hawk").phi == 0.0  # the original is untouched
    shared = quickstart.with_knob("dogs.phi", 1.25)
    assert [f.phi for f in shared.features] == [1.25, 1.25, 0.0, 0.0]
    # A uniform cluster rotation leaves the sibling overlap exactly unchanged.
    assert shared.overlaps()[0, 1] == pytest.approx(1.0, abs=1e-15)
    assert quickstart.with_phi("dog_poodle", 0.3).feature("dog_poodle").phi == 0.3
    with pytest.raises(KnobError, match="neither a feature nor a cluster"):
        quickstart.with_knob("cats.phi", 0.1)
    with pytest.raises(KnobError, match="no effect on MPSRung1"):
        quickstart.with_knob("dog_poodle.theta_amp", 0.1)
    with pytest.raises(KnobError, match="needs an HEA_Rung2"):
        quickstart.with_knob("dog_poodle.theta[0,0,0]", 0.1)
    with pytest.raises(DictionaryError, match="finite"):
        quickstart.with_knob("dog_poodle.phi", math.nan)
    assert quickstart.knob_slots("birds.phi") == [2 * 4 + 3, 3 * 4 + 3]


def test_lookup_errors(quickstart: Dictionary) -> None:
    with pytest.raises(UnknownFeatureError, match="unknown feature 'cat'") as e:
        quickstart.feature_index("cat")
    assert isinstance(e.value, KeyError) and isinstance(e.value, PolygramError)
    assert quickstart.feature_index("bird_hawk") == 2
    assert len(quickstart) == 4


def test_knob_table_is_read_only(quickstart: Dictionary) -> None:
    with pytest.raises(ValueError):
        quickstart.knob_table[0, 0] = 1.0
    with pytest.raises(AttributeError):
        quickstart.name = "x"  # type: ignore[misc]


def test_tier_separation_none_for_singletons() -> None:
    d = two()
    assert d.tier_separation() is None
    assert math.isnan(d.tier_stats()["sibling"])
    assert d.hierarchical_ordering_preserved("a", "b")
