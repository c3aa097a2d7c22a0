"""Spec 15 §7: ``polygram.config`` — defaults equal the constructors',
``to_dict`` / ``from_dict`` round trips, unknown keys, refusals."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spec15_cases import CASES

import polygram
from polygram import config as cfgmod
from polygram.config import (
    CancellationConfig,
    CompressionConfig,
    EpochCompressionConfig,
    RegrowConfig,
    SAEImportConfig,
    ValidationConfig,
    config_of,
    pick,
)
from polygram.errors import ConfigError

CLASSES = {
    "ValidationConfig": ValidationConfig,
    "CancellationConfig": CancellationConfig,
    "CompressionConfig": CompressionConfig,
    "EpochCompressionConfig": EpochCompressionConfig,
    "SAEImportConfig": SAEImportConfig,
    "RegrowConfig": RegrowConfig,
}


def _default(name: str) -> Any:
    cls = CLASSES[name]
    return cls(model_name="gpt2", layer=10) if cls is RegrowConfig else cls()


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_defaults_to_dict_case(name: str) -> None:
    want = CASES["config_defaults_to_dict"]["expected"][name]
    got = _default(name).to_dict()
    assert got == want
    assert json.loads(json.dumps(got)) == got  # JSON-safe


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_round_trip(name: str) -> None:
    c = _default(name)
    assert type(c).from_dict(c.to_dict()) == c
    assert type(c).from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_upstream_defaults_differ_where_the_case_says() -> None:
    upstream = CASES["config_defaults_to_dict"]["upstream_0_15_defaults"]
    for name, fields in upstream.items():
        ours = _default(name).to_dict()
        differing = [k for k, v in fields.items() if k in ours and ours[k] != v]
        assert differing, name


def test_default_configs_equal_the_constructor_defaults() -> None:
    """A default config is a no-op: a consumer built without one resolves
    every tuning field to the config class's default."""
    from conftest import quickstart_dictionary
    from polygram.cancellation import Cancellation

    c = Cancellation(quickstart_dictionary(), ("dog_poodle", "bird_hawk"))
    want = CancellationConfig()
    assert c.tolerance == want.tolerance and c.preserve_tiers == want.preserve_tiers
    assert c.optimize == want.optimize and c.grid_outer == want.grid_outer
    assert c.min_amp_overlap == want.min_amp_overlap


@pytest.mark.parametrize("key", ["a", "b", "c", "d"])
def test_from_dict_case(key: str) -> None:
    case = CASES["config_from_dict"]
    inp, want = case["inputs"][key], case["expected"][key]
    cls = CLASSES[inp["cls"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = cls.from_dict(inp["data"])
    assert len(caught) == want["warnings"]
    for w in caught:
        assert issubclass(w.category, UserWarning)
        assert str(w.message).startswith(f"{cls.__name__}.from_dict: ignoring")
    if "warned_keys" in want:
        assert [
            k for k in want["warned_keys"] if any(repr(k) in str(w.message) for w in caught)
        ] == want["warned_keys"]
    for k, v in want.items():
        if k in ("warnings", "warned_keys", "grid_outer_type"):
            continue
        got = getattr(c, k)
        if k == "validation":
            got = got.to_dict()
        assert (list(got) if isinstance(got, tuple) else got) == v
    if "grid_outer_type" in want:
        assert type(c.grid_outer).__name__ == want["grid_outer_type"]


def test_unknown_key_message() -> None:
    with pytest.warns(
        UserWarning, match=r"^ValidationConfig.from_dict: ignoring unknown key 'colour'$"
    ):
        ValidationConfig.from_dict({"colour": "red"})


def test_from_dict_refusals() -> None:
    with pytest.raises(TypeError, match="mapping"):
        ValidationConfig.from_dict([("min_both_fire", 2)])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_both_fire"):
        ValidationConfig.from_dict({"min_both_fire": 0})
    with pytest.raises(TypeError, match="validation"):
        EpochCompressionConfig.from_dict({"validation": 3})


BAD: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
    (
        ValidationConfig,
        {"polygram_overlap_threshold": 1.5},
        ConfigError,
        r"polygram_overlap_threshold.*1\.5.*\[0\.0, 1\.0\]",
    ),
    (ValidationConfig, {"jaccard_threshold": math.nan}, ConfigError, "jaccard_threshold"),
    (ValidationConfig, {"min_firing_rate": "0.1"}, TypeError, "min_firing_rate"),
    (ValidationConfig, {"min_both_fire": 0}, ConfigError, "min_both_fire.*>= 1"),
    (ValidationConfig, {"min_both_fire": 2.0}, TypeError, "min_both_fire"),
    (ValidationConfig, {"allow_layer_zero": 1}, TypeError, "allow_layer_zero"),
    (CancellationConfig, {"tolerance": -0.1}, ConfigError, "tolerance"),
    (
        CancellationConfig,
        {"optimize": {"method": "adam"}},
        ConfigError,
        r"method.*'adam'.*grid.*scipy",
    ),
    (CancellationConfig, {"optimize": {"steps": 3}}, ConfigError, "unknown key"),
    (CancellationConfig, {"optimize": "grid"}, TypeError, "optimize"),
    (CancellationConfig, {"grid_outer": (5,)}, TypeError, "grid_outer"),
    (CancellationConfig, {"grid_outer": (5, 0)}, ConfigError, r"grid_outer\[1\]"),
    (CancellationConfig, {"min_amp_overlap": 2}, ConfigError, "min_amp_overlap"),
    (CancellationConfig, {"preserve_tiers": "yes"}, TypeError, "preserve_tiers"),
    (CompressionConfig, {"strategy": "prune"}, ConfigError, r"strategy.*'prune'.*zero"),
    (CompressionConfig, {"rep_selection": "best"}, ConfigError, "rep_selection"),
    (CompressionConfig, {"merge_mode": 1}, TypeError, "merge_mode"),
    (CompressionConfig, {"target_n_features_kept": 0}, ConfigError, "target_n_features_kept"),
    (CompressionConfig, {"target_n_features_kept": True}, TypeError, "target_n_features_kept"),
    (CompressionConfig, {"score_field": "kl"}, ConfigError, r"score_field.*decoder_overlap"),
    (EpochCompressionConfig, {"coverage_target": 0.0}, ConfigError, r"coverage_target.*\(0, 1\]"),
    (EpochCompressionConfig, {"cosine_threshold": -2}, ConfigError, "cosine_threshold"),
    (EpochCompressionConfig, {"n_visits_per_feature": 0}, ConfigError, "n_visits_per_feature"),
    (EpochCompressionConfig, {"max_iterations": 0}, ConfigError, "max_iterations"),
    (
        EpochCompressionConfig,
        {"quality_delta_multiplier": math.nan},
        ConfigError,
        "quality_delta_multiplier",
    ),
    (
        EpochCompressionConfig,
        {"quality_delta_multiplier": 0},
        ConfigError,
        "quality_delta_multiplier",
    ),
    (EpochCompressionConfig, {"validation": {"min_both_fire": 2}}, TypeError, "validation"),
    (RegrowConfig, {"model_name": ""}, ConfigError, "model_name"),
    (RegrowConfig, {"model_name": 3}, TypeError, "model_name"),
    (RegrowConfig, {"layer": -1}, ConfigError, "layer"),
    (RegrowConfig, {"n_init": 0}, ConfigError, "n_init"),
    (RegrowConfig, {"top_k": -1}, ConfigError, r"top_k.*-1.*>= 0"),
    (RegrowConfig, {"strategy": "magic"}, ConfigError, "strategy"),
    (RegrowConfig, {"prompts": "one prompt"}, TypeError, "prompts"),
    (SAEImportConfig, {"gamma_range": (0.5, -0.5)}, ConfigError, "gamma_range"),
    (SAEImportConfig, {"gamma_range": 0.5}, TypeError, "gamma_range"),
    (SAEImportConfig, {"n_clusters": 0}, ConfigError, "n_clusters"),
    (SAEImportConfig, {"profile": 3}, TypeError, "profile"),
    (SAEImportConfig, {"assign_gamma": None}, TypeError, "assign_gamma"),
]


@pytest.mark.parametrize(("cls", "kwargs", "exc", "match"), BAD)
def test_refusals(cls: Any, kwargs: dict[str, Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        cls(**kwargs)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, polygram.errors.PolygramError)


def test_regrow_config_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        RegrowConfig("gpt2", 10)  # type: ignore[misc]
    assert RegrowConfig(prompts=["a", "b"]).prompts == ("a", "b")


def test_cancellation_optimize_is_completed_and_copied() -> None:
    mine = {"method": "scipy"}
    c = CancellationConfig(optimize=mine)
    assert c.optimize == {"method": "scipy", "max_steps": 50}
    assert mine == {"method": "scipy"}
    d = c.to_dict()
    d["optimize"]["max_steps"] = 3
    assert c.optimize["max_steps"] == 50


def test_pick_and_config_of() -> None:
    c = ValidationConfig(min_both_fire=3)
    assert pick(None, c, "min_both_fire") == 3
    assert pick(7, c, "min_both_fire") == 7
    assert pick(0, c, "min_both_fire") == 0  # falsy but explicit
    assert config_of(ValidationConfig, None, "X") == ValidationConfig()
    with pytest.raises(
        TypeError, match=r"X: config got CompressionConfig; expected a ValidationConfig"
    ):
        config_of(ValidationConfig, CompressionConfig(), "X")


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(1, 1000), st.booleans())
def test_validation_round_trip_property(p: float, j: float, m: float, b: int, z: bool) -> None:
    c = ValidationConfig(p, j, m, b, z)
    assert ValidationConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_top_level_exports() -> None:
    for name in CLASSES:
        assert getattr(polygram, name) is getattr(cfgmod, name)


def test_choice_lists_match_their_classes() -> None:
    from polygram.compression.choices import REGROW_STRATEGIES
    from polygram.compression.regrow import RegrowStrategy

    assert tuple(s.value for s in RegrowStrategy) == REGROW_STRATEGIES
