"""EvalResult JSON and EvalOptions validation (spec 16 §5.1, §5.5)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polygram.errors import EvalError
from polygram.evals import EVAL_METRICS, UNSET, EvalOptions, EvalResult


def make_result(**kw: Any) -> EvalResult:
    base: dict[str, Any] = dict(
        sae_source="/x/sae",
        sae_sha256="ab" * 32,
        architecture="topk",
        model_name="gpt2",
        hook_name="blocks.6.hook_resid_pre",
        layer=6,
        hook_kind="resid_pre",
        dtype="float32",
        device="cpu",
        batch_size=8,
        context_size=128,
        prepend_bos=True,
        packing="none",
        splice_special=False,
        n_prompts=3,
        n_truncated_prompts=0,
        n_tokens=600,
        n_ce_tokens=597,
        ce_loss_without_sae=3.123456789,
        ce_loss_with_sae=3.5,
        ce_loss_with_ablation=9.0,
        ce_loss_score=0.9310344827586207,
        kl_div_with_sae=0.25,
        kl_div_with_ablation=5.0,
        kl_div_score=0.95,
        mse=12.0,
        mse_per_dim=0.02,
        fvu=0.2,
        explained_variance=0.8,
        cossim=0.9,
        l0=31.5,
        l1=100.0,
        n_dead=3,
        n_dense=2,
        dense_threshold=0.1,
        frac_alive=0.99609375,
        wall_seconds=1.23456789,
        sae_settings={"hook_name": {"value": "blocks.6.hook_resid_pre", "source": "cfg"}},
        feature_frequency=np.array([0.5, 0.0, 0.25]),
    )
    base.update(kw)
    return EvalResult(**base)


def test_json_is_compact_sorted_and_rounded() -> None:
    r = make_result()
    text = r.to_json()
    assert " " not in text
    doc = json.loads(text)
    assert list(doc) == sorted(doc)
    assert doc["ce_loss_without_sae"] == 3.12346
    assert doc["wall_seconds"] == 1.23457
    assert doc["schema_version"] == 1
    assert "feature_frequency" not in doc
    assert doc["ce_loss_with_mean_ablation"] is None


def test_non_finite_metrics_are_null_and_read_back_as_none() -> None:
    r = make_result(ce_loss_score=math.nan, kl_div_score=math.inf)
    doc = json.loads(r.to_json())
    assert doc["ce_loss_score"] is None and doc["kl_div_score"] is None
    back = EvalResult.from_json(r.to_json())
    assert back.ce_loss_score is None and math.isnan(back.metric("ce_loss_score"))


def test_round_trip_through_text_and_file(tmp_path: Path) -> None:
    r = make_result()
    p = tmp_path / "sub" / "e.json"
    r.to_json(p)
    for src in (r.to_json(), str(p), p):
        back = EvalResult.from_json(src)
        assert back.to_dict() == r.to_dict()
        assert back.feature_frequency is None
    assert EvalResult.from_json(r.to_json()) == EvalResult.from_dict(r.to_dict())


@pytest.mark.parametrize("key", ["n_tokens", "ce_loss_score", "sae_settings", "prepend_bos"])
def test_from_json_requires_every_key(key: str) -> None:
    doc = make_result().to_dict()
    del doc[key]
    with pytest.raises(ValueError, match=key):
        EvalResult.from_dict(doc)


@pytest.mark.parametrize(
    ("key", "value", "want"),
    [
        ("n_tokens", 1.5, "an integer"),
        ("n_tokens", True, "an integer"),
        ("l0", "x", "a number or null"),
        ("model_name", 3, "a string"),
        ("splice_special", None, "true or false"),
        ("sae_settings", [], "a JSON object"),
        ("wall_seconds", None, "a number"),
        ("schema_version", 2, "reads 1"),
    ],
)
def test_from_json_names_a_bad_field(key: str, value: Any, want: str) -> None:
    doc = make_result().to_dict()
    doc[key] = value
    with pytest.raises(EvalError, match=f"{key}.*{want}"):
        EvalResult.from_dict(doc)


def test_save_frequencies_writes_npy(tmp_path: Path) -> None:
    r = make_result()
    out = r.save_frequencies(tmp_path / "f.npy")
    got = np.load(out)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [0.5, 0.0, 0.25])
    with pytest.raises(EvalError, match="no feature_frequency"):
        EvalResult.from_json(r.to_json()).save_frequencies(tmp_path / "g.npy")


def test_results_are_frozen_and_compare_without_the_array() -> None:
    r = make_result()
    with pytest.raises(AttributeError):
        r.l0 = 2.0  # type: ignore[misc]
    assert r == replace(r, feature_frequency=np.zeros(3))


def test_metric_names_every_metric() -> None:
    r = make_result()
    assert r.metric("l0") == 31.5
    assert math.isnan(r.metric("ce_loss_score_mean_ablation"))
    with pytest.raises(EvalError, match="unknown metric 'ce'.*ce_loss_score"):
        r.metric("ce")
    assert set(EVAL_METRICS) <= set(r.to_dict())


# ------------------------------------------------------------------ options
def test_options_defaults() -> None:
    o = EvalOptions()
    assert (o.batch_size, o.packing, o.dtype, o.dense_threshold) == (8, "none", "auto", 0.1)
    assert o.prepend_bos is UNSET and repr(UNSET) == "UNSET"
    assert EvalOptions(prepend_bos=None).prepend_bos is None


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"batch_size": 0}, "batch_size is 0; allowed: an integer >= 1"),
        ({"batch_size": 2.0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"context_size": -1}, "context_size is -1.*or None"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"packing": "concat"}, "packing is 'concat'; allowed: none, saelens"),
        ({"dtype": "fp16"}, "dtype is 'fp16'; allowed: auto, float32, bfloat16, float16"),
        ({"prepend_bos": 1}, "prepend_bos is 1"),
        ({"dense_threshold": math.nan}, "dense_threshold"),
        ({"dense_threshold": 1.0}, r"dense_threshold is 1.0; allowed: a finite number in \[0, 1\)"),
        ({"mean_ablation": 1}, "mean_ablation"),
        ({"device": 0}, "device"),
        ({"device": "gpu"}, "device is .gpu.; allowed: auto, cpu, mps, cuda or cuda:N or None"),
    ],
)
def test_bad_options_name_field_value_and_allowed(kw: dict[str, Any], want: str) -> None:
    with pytest.raises(EvalError, match=want):
        EvalOptions(**kw)
