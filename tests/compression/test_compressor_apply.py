"""Compressor.apply(): the rewritten checkpoint, hashes, norm statistics,
strategies and the debugging Dictionary (spec 11 §§4–5)."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
from compression_fixtures import build_report, synth_sae
from safetensors.numpy import load_file, save_file

from polygram.compression import ClusterPlan, CompressionPlan, Compressor
from polygram.compression.strategies import merge_strategy, zero_strategy
from polygram.errors import CompressionError
from polygram.sae import SAE, load_sae

CONFIRMED = [(2, 3), (5, 6), (6, 7), (5, 7)]  # reps 3 and 7 (n_fires rule)
NORMS = {2: 1.0, 3: 3.0, 5: 2.0, 6: 2.0, 7: 4.0}
KEYS = {"W_enc", "b_enc", "W_dec", "b_dec"}


def fingerprint(p: Path) -> tuple[str, int, int]:
    st = os.stat(p)
    return hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns


@pytest.fixture
def sae(tmp_path: Path) -> Path:
    return synth_sae(tmp_path / "sae.safetensors", row_norms=NORMS, biases=True)


def test_zero_pattern_is_exact_and_source_untouched(sae: Path, tmp_path: Path) -> None:
    before = fingerprint(sae)
    src = load_file(str(sae))
    res = Compressor(build_report(8, CONFIRMED), sae).run(tmp_path / "out" / "c.safetensors")
    assert fingerprint(sae) == before
    out = load_file(str(res.output_checkpoint))
    assert set(out) == KEYS
    assert all(v.dtype == np.float32 for v in out.values())
    zeroed = [2, 5, 6]
    kept = [f for f in range(16) if f not in zeroed]
    assert not out["W_enc"][:, zeroed].any()
    assert not out["b_enc"][zeroed].any()
    assert not out["W_dec"][zeroed].any()
    for k in ("W_enc",):
        assert out[k][:, kept].tobytes() == np.ascontiguousarray(src[k][:, kept]).tobytes()
    assert out["b_enc"][kept].tobytes() == src["b_enc"][kept].tobytes()
    assert out["W_dec"][kept].tobytes() == src["W_dec"][kept].tobytes()
    assert out["b_dec"].tobytes() == src["b_dec"].tobytes()


def test_report_fields_and_hashes(
    sae: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = Compressor(build_report(8, CONFIRMED), Path("sae.safetensors")).run("c.safetensors")
    r = res.report
    assert r.source_checkpoint == "sae.safetensors"  # as given
    assert r.output_checkpoint == str((tmp_path / "c.safetensors").resolve())
    assert res.output_checkpoint == tmp_path / "c.safetensors"
    assert r.source_checkpoint_sha256 == hashlib.sha256(sae.read_bytes()).hexdigest()
    out_bytes = (tmp_path / "c.safetensors").read_bytes()
    assert r.output_checkpoint_sha256 == hashlib.sha256(out_bytes).hexdigest()
    assert (r.n_features_zeroed, r.n_features_kept, r.n_clusters) == (3, 2, 2)
    assert r.strategy == "zero" and r.schema_version == 2
    assert r.output_layout == "file" and r.decoder_row_kept is False
    assert r.sae_settings is not None
    assert r.sae_settings["architecture"] == {"value": "standard", "source": "inferred"}
    assert (tmp_path / "c.cfg.json").is_file()  # the sidecar cfg
    assert r.validation_report_dictionary_name == "SynthDict"
    assert r.validation_report_schema_version == 1
    assert res.plan == r.plan
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_norm_stats_and_zero_ratio_by_hand(sae: Path, tmp_path: Path) -> None:
    res = Compressor(build_report(8, CONFIRMED), sae).run(tmp_path / "c.safetensors")
    a, b = res.plan.clusters
    # norms (1, 3): mean 2, population std 1; (2, 2, 4): mean 8/3, std √(8/9)
    assert a.cluster_norm_mean == pytest.approx(2.0, rel=1e-6)
    assert a.cluster_norm_std == pytest.approx(1.0, rel=1e-6)
    assert b.cluster_norm_mean == pytest.approx(8 / 3, rel=1e-6)
    assert b.cluster_norm_std == pytest.approx(math.sqrt(8 / 9), rel=1e-6)
    assert a.merged_norm is None and b.merged_norm is None
    # kept reps 3 and 7: (3 + 4) / (1 + 3 + 2 + 2 + 4); singletons ignored
    assert res.report.scale_compression_ratio == pytest.approx(7 / 12, rel=1e-6)


def test_output_must_differ_from_source(sae: Path, tmp_path: Path) -> None:
    c = Compressor(build_report(8, CONFIRMED), sae)
    with pytest.raises(CompressionError, match="never rewritten in place"):
        c.run(sae)
    os.symlink(sae, tmp_path / "alias.safetensors")
    with pytest.raises(CompressionError, match="never rewritten in place"):
        c.run(tmp_path / "alias.safetensors")
    with pytest.raises(CompressionError, match="output_checkpoint is required"):
        c.apply()


def test_apply_with_an_explicit_plan_and_out_of_range(sae: Path, tmp_path: Path) -> None:
    c = Compressor(build_report(8, CONFIRMED), sae)
    plan = CompressionPlan((ClusterPlan(0, (0, 1), 0, (1,)),), tuple(range(8)))
    res = c.apply(plan, tmp_path / "c.safetensors")
    out = load_file(str(res.output_checkpoint))
    assert not out["W_dec"][1].any() and out["W_dec"][2].any()
    bad = CompressionPlan((ClusterPlan(0, (0, 99), 0, (99,)),), ())
    with pytest.raises(IndexError, match=r"\[99\] out of range"):
        c.apply(bad, tmp_path / "d.safetensors")
    assert not (tmp_path / "d.safetensors").exists()


def test_no_clusters_copies_and_ratio_one(sae: Path, tmp_path: Path) -> None:
    res = Compressor(build_report(8, []), sae).run(tmp_path / "c.safetensors")
    assert res.report.scale_compression_ratio == 1.0
    assert res.report.n_clusters == 0
    src, out = load_file(str(sae)), load_file(str(res.output_checkpoint))
    assert all(src[k].tobytes() == out[k].tobytes() for k in KEYS)


def test_non_canonical_source_keeps_its_names_orientation_and_dtypes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    w_enc = rng.standard_normal((8, 16)).astype(np.float32)
    w_dec = rng.standard_normal((16, 8)).astype(np.float32)
    src = tmp_path / "lin.safetensors"
    stored = {
        "encoder.weight": np.ascontiguousarray(w_enc.T).astype(np.float16),
        "encoder.bias": np.ones(16, np.float32),
        "decoder.weight": np.ascontiguousarray(w_dec.T),
        "decoder.bias": np.zeros(8, np.float64),
        "threshold": np.full(16, -1.0, np.float32),
    }
    save_file(stored, str(src))
    res = Compressor(build_report(4, [(0, 1)]), src).run(tmp_path / "c.safetensors")
    out = load_file(str(res.output_checkpoint))
    assert {k: (v.dtype, v.shape) for k, v in out.items()} == {
        k: (v.dtype, v.shape) for k, v in stored.items()
    }  # names, nn.Linear orientation, F16 / F64 and the threshold all kept
    zeroed = list(res.plan.clusters[0].zeroed)
    assert not out["encoder.weight"][zeroed].any() and not out["encoder.bias"][zeroed].any()
    assert not out["decoder.weight"][:, zeroed].any()
    np.testing.assert_array_equal(out["threshold"], stored["threshold"])  # kept (spec 16 §1.6)
    np.testing.assert_array_equal(out["encoder.weight"][2:], stored["encoder.weight"][2:])
    assert res.report.sae_settings["architecture"]["value"] == "jumprelu"


def _arrays(norms: list[float]) -> SAE:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((len(norms), 3))
    w = w / np.linalg.norm(w, axis=1, keepdims=True) * np.array(norms)[:, None]
    return load_sae(
        {
            "W_enc": rng.standard_normal((3, len(norms))).astype(np.float32),
            "b_enc": np.ones(len(norms), np.float32),
            "W_dec": w.astype(np.float32),
            "b_dec": np.ones(3, np.float32),
        }
    )


PLAN = CompressionPlan((ClusterPlan(0, (0, 1, 2), 1, (0, 2)),), (0, 1, 2))


def test_merge_fire_weights_fallbacks() -> None:
    arr = _arrays([1.0, 2.0, 6.0])
    _, m = merge_strategy(arr, PLAN, None, "freq_weighted")  # every weight 1
    assert m[0] == pytest.approx(3.0, rel=1e-6)
    _, m = merge_strategy(arr, PLAN, {0: 0, 1: 0}, "freq_weighted")  # no fires → mean
    assert m[0] == pytest.approx(3.0, rel=1e-6)
    _, m = merge_strategy(arr, PLAN, {2: 4}, "freq_weighted")  # only 2 weighs
    assert m[0] == pytest.approx(6.0, rel=1e-6)


def test_merge_degenerate_cluster_warns() -> None:
    arr = _arrays([1.0, 1.0, 1.0])
    arr = arr.replace_tensors(W_dec=np.zeros((3, 3)))
    with pytest.warns(UserWarning, match="degenerate merged decoder norm"):
        out, m = merge_strategy(arr, PLAN, None, "simple_mean")
    assert m[0] == 0.0 and not out.tensors["W_dec"].any()


def test_strategies_return_new_saes_and_check_inputs() -> None:
    arr = _arrays([1.0, 2.0, 3.0])
    snapshot = {k: v.copy() for k, v in arr.tensors.items()}
    out = zero_strategy(arr, PLAN)
    merge_strategy(arr, PLAN, None, "freq_weighted")
    assert all(np.array_equal(arr.tensors[k], snapshot[k]) for k in snapshot)  # not mutated
    assert out.tensors["b_enc"].tolist() == [0.0, 1.0, 0.0]
    assert out.tensors["b_dec"].tolist() == [1.0] * 3
    far = CompressionPlan((ClusterPlan(0, (1, 3), 1, (3,)),), ())
    with pytest.raises(IndexError, match=r"\[3\] out of range"):
        zero_strategy(arr, far)
    with pytest.raises(IndexError, match=r"\[3\] out of range"):
        merge_strategy(arr, far)
    with pytest.raises(ValueError, match="unsupported merge_mode 'x'"):
        merge_strategy(arr, PLAN, None, "x")  # type: ignore[arg-type]


def test_a_decoder_only_sae_has_only_its_tensors_edited() -> None:
    full = _arrays([1.0, 2.0, 3.0])
    dec = load_sae({"W_dec": full.tensors["W_dec"]}, partial=True)
    out = zero_strategy(dec, PLAN)
    assert set(out.tensors) == {"W_dec"} and not out.tensors["W_dec"][[0, 2]].any()
    np.testing.assert_array_equal(out.tensors["W_dec"][1], full.tensors["W_dec"][1])


def test_compressing_the_output_again_changes_nothing(sae: Path, tmp_path: Path) -> None:
    report = build_report(8, CONFIRMED)
    once = Compressor(report, sae).run(tmp_path / "once.safetensors")
    twice = Compressor(report, once.output_checkpoint).run(tmp_path / "twice.safetensors")
    assert twice.plan.clusters[0].members == once.plan.clusters[0].members
    a, b = load_file(str(once.output_checkpoint)), load_file(str(twice.output_checkpoint))
    assert all(a[k].tobytes() == b[k].tobytes() for k in KEYS)
    assert once.report.output_checkpoint_sha256 == twice.report.output_checkpoint_sha256
