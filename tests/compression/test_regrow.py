"""Regrower (spec 12): residual k-means into zeroed slots, on synthetic SAEs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from polygram.compression.regrow import Regrower, RegrowReport, RegrowStrategy
from polygram.errors import CompressionError, SAEFileNotFoundError
from polygram.sae.forward import residual_stream

ZEROED = (2, 5, 9, 13)


def synth_sae(path: Path, n: int = 16, d: int = 8, seed: int = 0, zeroed=ZEROED) -> Path:
    rng = np.random.default_rng(seed)
    w_dec = rng.standard_normal((n, d)).astype(np.float32)
    w_enc = rng.standard_normal((d, n)).astype(np.float32)
    b_enc = np.zeros(n, np.float32)
    b_dec = np.zeros(d, np.float32)
    for f in zeroed:
        w_dec[f] = 0
        w_enc[:, f] = 0
    save_file(
        {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec, "extra": np.arange(3.0)},
        str(path),
    )
    return path


@pytest.fixture
def sae(tmp_path: Path) -> Path:
    return synth_sae(tmp_path / "sae.safetensors")


@pytest.fixture
def residuals() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((200, 8)).astype(np.float32)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_residual_stream_matches_the_formula_in_chunks() -> None:
    rng = np.random.default_rng(3)
    x, we, be = rng.standard_normal((37, 5)), rng.standard_normal((5, 7)), rng.standard_normal(7)
    wd, bd = rng.standard_normal((7, 5)), rng.standard_normal(5)
    want = x - (np.maximum(0, (x - bd) @ we + be) @ wd + bd)
    np.testing.assert_allclose(residual_stream(x, we, be, wd, bd, chunk=4), want, atol=1e-12)


def test_slots_are_filled_with_unit_tied_centroids(
    sae: Path, residuals: np.ndarray, tmp_path: Path
) -> None:
    before = sha(sae)
    src = load_file(str(sae))
    g = Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=residuals)
    res = g.run(tmp_path / "out.safetensors")
    assert sha(sae) == before  # the input is never modified
    out = load_file(str(res.output_checkpoint))
    assert sorted(out) == sorted(src)  # every tensor kept, dtypes too
    assert all(out[k].dtype == src[k].dtype for k in src)
    for f in ZEROED:
        assert np.linalg.norm(out["W_dec"][f]) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_array_equal(out["W_enc"][:, f], out["W_dec"][f])
        assert out["b_enc"][f] == 0
    others = [f for f in range(16) if f not in ZEROED]
    np.testing.assert_array_equal(out["W_dec"][others], src["W_dec"][others])
    np.testing.assert_array_equal(out["W_enc"][:, others], src["W_enc"][:, others])
    np.testing.assert_array_equal(out["b_dec"], src["b_dec"])
    np.testing.assert_array_equal(out["extra"], src["extra"])
    # the centroids are sklearn's k-means of the residual stream, slot k ← centroid k
    from sklearn.cluster import KMeans

    r = residual_stream(residuals, src["W_enc"], src["b_enc"], src["W_dec"], src["b_dec"])
    km = KMeans(n_clusters=4, n_init=4, random_state=0, algorithm="lloyd").fit(r)
    for k, f in enumerate(ZEROED):
        c = km.cluster_centers_[k]
        np.testing.assert_allclose(out["W_dec"][f], c / np.linalg.norm(c), atol=1e-6)
    plan = res.plan
    assert plan.zeroed_input == ZEROED and plan.n_residual_tokens == 200
    assert plan.feature_ids == tuple(range(16))
    assert [s.feature_id for s in plan.slots] == list(ZEROED)
    assert sum(s.cluster_size for s in plan.slots) == 200
    assert all(s.decoder_norm == pytest.approx(1.0) == s.encoder_norm for s in plan.slots)
    rep = res.report
    assert rep.n_slots_repopulated == 4 and rep.n_slots_left_zero == 0
    assert rep.source_checkpoint_sha256 == before
    assert rep.output_checkpoint_sha256 == sha(res.output_checkpoint)
    assert rep.output_checkpoint == str((tmp_path / "out.safetensors").resolve())
    assert rep.strategy_params == {"seed": 0, "n_init": 4} and rep.provenance == {}
    assert res.dictionary.name == "Regrown_sae" and len(res.dictionary) == 4
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_deterministic_under_a_seed(sae: Path, residuals: np.ndarray, tmp_path: Path) -> None:
    a = Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=residuals, seed=7)
    b = Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=residuals, seed=7)
    c = Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=residuals, seed=8)
    ta = load_file(str(a.run(tmp_path / "a.safetensors").output_checkpoint))
    tb = load_file(str(b.run(tmp_path / "b.safetensors").output_checkpoint))
    tc = load_file(str(c.run(tmp_path / "c.safetensors").output_checkpoint))
    assert all(np.array_equal(ta[k], tb[k]) for k in ta)
    assert not np.array_equal(ta["W_dec"], tc["W_dec"])


def test_empty_zeroed_rewrites_the_source_unchanged(
    sae: Path, residuals: np.ndarray, tmp_path: Path
) -> None:
    res = Regrower(sae, "residual_kmeans", [], cached_residuals=residuals).run(
        tmp_path / "o.safetensors"
    )
    src, out = load_file(str(sae)), load_file(str(res.output_checkpoint))
    assert all(np.array_equal(src[k], out[k]) for k in src)
    assert res.plan.slots == () and res.plan.n_residual_tokens == 200
    assert res.report.n_slots_repopulated == 0
    assert len(res.dictionary) == 8  # the first 8 features stand in


def test_guards(sae: Path, tmp_path: Path) -> None:
    few = np.ones((3, 8), np.float32)
    with pytest.raises(CompressionError, match=r"n_residual_tokens=3 is less than the K=4"):
        Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=few).plan()
    flat = tmp_path / "flat.safetensors"
    save_file(
        {
            "W_enc": np.zeros((8, 16), np.float32),
            "b_enc": np.zeros(16, np.float32),
            "W_dec": np.zeros((16, 8), np.float32),
            "b_dec": np.zeros(8, np.float32),
        },
        str(flat),
    )
    zeros = np.zeros((50, 8), np.float32)
    with pytest.raises(RuntimeError, match="no signal"):
        Regrower(flat, "residual_kmeans", ZEROED, cached_residuals=zeros).plan()
    for strategy in ("high_decoder_norm_random", "orthogonal_noise_scaled"):
        g = Regrower(sae, strategy, ZEROED, cached_residuals=np.ones((9, 8), np.float32))
        with pytest.raises(NotImplementedError, match=strategy):
            g.plan()
    with pytest.raises(CompressionError, match="width 5 but the SAE's d_in is 8"):
        Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=np.ones((9, 5))).plan()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "bogus"}, "unsupported strategy"),
        ({"zeroed": [-1]}, "non-negative"),
        ({"zeroed": [16]}, r"out of range for 16 features"),
        ({"zeroed": [1.5]}, "not an integer"),
        ({"seed": -1}, "seed"),
        ({"n_init": 0}, "n_init"),
        ({"cached_residuals": None}, "exactly one"),
        ({"prompts": ["a"]}, "exactly one"),
        ({"cached_residuals": None, "prompts": []}, "non-empty"),
        ({"cached_residuals": np.ones(8)}, "2D"),
        ({"cached_residuals": np.ones((4, 8), np.int64)}, "dtype"),
        ({"cached_residuals": np.full((4, 8), np.nan)}, "non-finite"),
        ({"cached_residuals": None, "prompts": ["a"], "layer": -1}, "layer"),
        ({"cached_residuals": None, "prompts": ["a"], "device": "tpu"}, "unsupported device"),
    ],
)
def test_constructor_errors(sae: Path, kwargs: dict, match: str) -> None:
    args = {
        "strategy": "residual_kmeans",
        "zeroed": ZEROED,
        "cached_residuals": np.ones((9, 8), np.float32),
    }
    args.update(kwargs)
    with pytest.raises(CompressionError, match=match):
        Regrower(sae, **args)


def test_missing_checkpoint_and_output_rules(
    sae: Path, residuals: np.ndarray, tmp_path: Path
) -> None:
    with pytest.raises(SAEFileNotFoundError, match="no such file"):
        Regrower(tmp_path / "nope.safetensors", "residual_kmeans", [], cached_residuals=residuals)
    g = Regrower(sae, RegrowStrategy.RESIDUAL_KMEANS, ZEROED, cached_residuals=residuals)
    assert g.strategy == "residual_kmeans"
    with pytest.raises(CompressionError, match="output_checkpoint is required"):
        g.apply()
    with pytest.raises(CompressionError, match="never rewritten in place"):
        g.apply(output_checkpoint=sae)
    other = Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=residuals, seed=3).plan()
    with pytest.raises(CompressionError, match="not produced by this Regrower"):
        g.apply(other, tmp_path / "x.safetensors")


def test_non_canonical_keys_are_kept(residuals: np.ndarray, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    p = tmp_path / "alias.safetensors"
    stored = {
        "encoder.weight": rng.standard_normal((16, 8)).astype(np.float32),
        "encoder.bias": np.full(16, -0.5, np.float32),
        "decoder.weight": rng.standard_normal((8, 16)).astype(np.float32),
        "decoder.bias": np.zeros(8, np.float32),
    }
    save_file(stored, str(p))
    res = Regrower(p, "residual_kmeans", [3], cached_residuals=residuals).run(
        tmp_path / "o.safetensors"
    )
    out = load_file(str(res.output_checkpoint))
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in stored.items()}
    u = out["decoder.weight"][:, 3]  # nn.Linear layout: slot 3 is a column
    assert np.linalg.norm(u) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(out["encoder.weight"][3], u, rtol=1e-6)
    assert out["encoder.bias"][3] == 0
    np.testing.assert_array_equal(out["decoder.weight"][:, 4:], stored["decoder.weight"][:, 4:])


def test_chained_provenance_and_json_round_trip(
    sae: Path, residuals: np.ndarray, tmp_path: Path
) -> None:
    report = SimpleNamespace(
        plan=SimpleNamespace(
            clusters=[SimpleNamespace(zeroed=(5, 2)), SimpleNamespace(zeroed=(13, 9))]
        ),
        source_checkpoint_sha256="a" * 64,
        output_checkpoint_sha256="b" * 64,
        validation_report_dictionary_name="Panel",
    )
    g = Regrower.from_compression_report(
        report, sae, strategy="residual_kmeans", cached_residuals=residuals
    )
    direct = Regrower(sae, "residual_kmeans", ZEROED, cached_residuals=residuals)
    assert g.zeroed == direct.zeroed == set(ZEROED)
    res = g.run(tmp_path / "o.safetensors")
    assert res.report.provenance == {
        "compression_report_source_sha256": "a" * 64,
        "compression_report_output_sha256": "b" * 64,
        "compression_report_dictionary_name": "Panel",
    }
    assert res.dictionary.name == "Panel"
    text = res.report.to_json(tmp_path / "r.json")
    doc = json.loads(text)
    assert doc["feature_ids"] == doc["plan"]["feature_ids"] == list(range(16))
    assert text == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    back = RegrowReport.from_json(tmp_path / "r.json")
    assert back == res.report and RegrowReport.from_json(text) == back
    assert back.to_json() == text
    del doc["provenance"]
    with pytest.raises(ValueError, match="missing required key"):
        RegrowReport.from_json(json.dumps(doc))


@pytest.mark.torch
def test_prompts_path_equals_the_cached_capture(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Capturing through the model gives exactly the run on the same residuals
    handed in as ``cached_residuals`` (same block input, same k-means)."""
    pytest.importorskip("torch")
    from behavioural.beh_helpers import D_MODEL, PROMPTS

    from polygram.runtime import capture_activations, get_model

    sae = synth_sae(tmp_path / "sae.safetensors", n=16, d=D_MODEL)
    common = {"strategy": "residual_kmeans", "zeroed": ZEROED, "seed": 1}
    live = Regrower(
        sae, prompts=PROMPTS, model_name=str(tiny_model_dir), layer=2, device="cpu", **common
    )
    x = capture_activations(
        get_model(str(tiny_model_dir), "cpu"), "blocks.2.hook_resid_pre", PROMPTS
    )
    cached = Regrower(sae, cached_residuals=x, **common)
    a = load_file(str(live.run(tmp_path / "a.safetensors").output_checkpoint))
    b = load_file(str(cached.run(tmp_path / "b.safetensors").output_checkpoint))
    assert live.plan().n_residual_tokens == x.shape[0] > len(ZEROED)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(np.linalg.norm(a["W_dec"][f]) > 0.99 for f in ZEROED)
