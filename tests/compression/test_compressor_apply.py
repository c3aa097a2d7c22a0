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
    assert r.strategy == "zero" and r.schema_version == 1
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
    with pytest.raises(CompressionError, match="must differ"):
        c.run(sae)
    os.symlink(sae, tmp_path / "alias.safetensors")
    with pytest.raises(CompressionError, match="must differ"):
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


def test_non_canonical_source_is_normalised(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    w_enc = rng.standard_normal((8, 16)).astype(np.float32)
    w_dec = rng.standard_normal((16, 8)).astype(np.float32)
    src = tmp_path / "lin.safetensors"
    save_file(
        {
            "encoder.weight": np.ascontiguousarray(w_enc.T).astype(np.float16),
            "encoder.bias": np.ones(16, np.float32),
            "decoder.weight": np.ascontiguousarray(w_dec.T),
            "decoder.bias": np.zeros(8, np.float64),
            "threshold": np.ones(16, np.float32),
        },
        str(src),
    )
    res = Compressor(build_report(4, [(0, 1)]), src).run(tmp_path / "c.safetensors")
    out = load_file(str(res.output_checkpoint))
    assert set(out) == KEYS  # threshold dropped, names canonical
    assert out["W_enc"].shape == (8, 16) and out["W_dec"].shape == (16, 8)
    assert all(v.dtype == np.float32 for v in out.values())
    np.testing.assert_array_equal(out["W_enc"][:, 2:], w_enc.astype(np.float16)[:, 2:])
    np.testing.assert_array_equal(out["W_dec"][1:], w_dec[1:])
    assert not out["W_dec"][0].any()


def test_debugging_dictionary(sae: Path, tmp_path: Path) -> None:
    res = Compressor(build_report(16, CONFIRMED), sae).run(tmp_path / "c.safetensors")
    d = res.dictionary
    assert d is not None
    assert d.name == "SynthDict"
    assert len(d.features) == 8  # first min(8, 16) report ids, zeroed ones included
    small = Compressor(build_report(3, [(0, 1)]), sae).run(tmp_path / "s.safetensors")
    assert small.dictionary is not None and len(small.dictionary.features) == 3
    empty = build_report(0, [])
    assert Compressor(empty, sae).run(tmp_path / "e.safetensors").dictionary is None


# --- merge ------------------------------------------------------------------


def test_merge_freq_weighted_by_hand(sae: Path, tmp_path: Path) -> None:
    src = load_file(str(sae))
    res = Compressor(build_report(8, CONFIRMED), sae, strategy="merge").run(
        tmp_path / "m.safetensors"
    )
    out = load_file(str(res.output_checkpoint))
    # every fid sits in 7 pairs of the 8-feature report: fires ∝ (fid + 1)
    want_a = (1.0 * 3 + 3.0 * 4) / 7  # cluster (2, 3), rep 3
    want_b = (2.0 * 6 + 2.0 * 7 + 4.0 * 8) / 21  # cluster (5, 6, 7), rep 7
    a, b = res.plan.clusters
    assert a.merged_norm == pytest.approx(want_a, rel=1e-6)
    assert b.merged_norm == pytest.approx(want_b, rel=1e-6)
    for rep, want in ((3, want_a), (7, want_b)):
        row = out["W_dec"][rep].astype(np.float64)
        assert np.linalg.norm(row) == pytest.approx(want, rel=1e-6)
        s = src["W_dec"][rep].astype(np.float64)
        cos = row @ s / (np.linalg.norm(row) * np.linalg.norm(s))
        assert cos == pytest.approx(1.0, abs=1e-6)  # direction kept
        assert (
            out["W_enc"][:, rep].tobytes() == np.ascontiguousarray(src["W_enc"][:, rep]).tobytes()
        )
        assert out["b_enc"][rep] == src["b_enc"][rep]
    assert not out["W_dec"][[2, 5, 6]].any() and not out["b_enc"][[2, 5, 6]].any()
    ratio = (want_a * 2 + want_b * 3) / 12
    assert res.report.scale_compression_ratio == pytest.approx(ratio, rel=1e-6)
    assert res.report.strategy == "merge"


def test_merge_uses_correct_attribution_with_i_greater_than_j(tmp_path: Path) -> None:
    sae = synth_sae(tmp_path / "s.safetensors", row_norms={1: 1.0, 3: 5.0})
    # panel 3, 1 → stored pair (3, 1): n_fires_i belongs to 3
    report = build_report(4, [(3, 1)], n_fires={3: 9, 1: 1}, feature_ids=[3, 1])
    res = Compressor(report, sae, strategy="merge").run(tmp_path / "m.safetensors")
    assert res.plan.clusters[0].merged_norm == pytest.approx((5.0 * 9 + 1.0 * 1) / 10, rel=1e-6)


def test_merge_simple_mean_preserves_mass(sae: Path, tmp_path: Path) -> None:
    res = Compressor(
        build_report(8, CONFIRMED), sae, strategy="merge", merge_mode="simple_mean"
    ).run(tmp_path / "m.safetensors")
    a, b = res.plan.clusters
    assert a.merged_norm == pytest.approx(2.0, rel=1e-6)
    assert b.merged_norm == pytest.approx(8 / 3, rel=1e-6)
    assert res.report.scale_compression_ratio == pytest.approx(1.0, rel=1e-6)


def _arrays(norms: list[float]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((len(norms), 3))
    w = w / np.linalg.norm(w, axis=1, keepdims=True) * np.array(norms)[:, None]
    return {
        "W_enc": rng.standard_normal((3, len(norms))).astype(np.float32),
        "b_enc": np.ones(len(norms), np.float32),
        "W_dec": w.astype(np.float32),
        "b_dec": np.ones(3, np.float32),
    }


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
    arr["W_dec"][:] = 0
    with pytest.warns(UserWarning, match="degenerate merged decoder norm"):
        out, m = merge_strategy(arr, PLAN, None, "simple_mean")
    assert m[0] == 0.0 and not out["W_dec"].any()


def test_strategies_copy_and_check_inputs() -> None:
    arr = _arrays([1.0, 2.0, 3.0])
    snapshot = {k: v.copy() for k, v in arr.items()}
    out = zero_strategy(arr, PLAN)
    merge_strategy(arr, PLAN, None, "freq_weighted")
    assert all(np.array_equal(arr[k], snapshot[k]) for k in arr)  # not mutated
    assert out["b_enc"].tolist() == [0.0, 1.0, 0.0] and out["b_dec"].tolist() == [1.0] * 3
    with pytest.raises(KeyError, match=r"\['b_dec'\] are missing"):
        zero_strategy({k: v for k, v in arr.items() if k != "b_dec"}, PLAN)
    far = CompressionPlan((ClusterPlan(0, (1, 3), 1, (3,)),), ())
    with pytest.raises(IndexError, match=r"\[3\] out of range"):
        zero_strategy(arr, far)
    with pytest.raises(IndexError, match=r"\[3\] out of range"):
        merge_strategy(arr, far)
    with pytest.raises(ValueError, match="unsupported merge_mode 'x'"):
        merge_strategy(arr, PLAN, None, "x")  # type: ignore[arg-type]


def test_in_place_strategies_give_the_copying_result() -> None:
    """``copy=False`` (what ``Compressor.apply`` uses on freshly loaded
    tensors) edits the arrays themselves and gives the same values."""
    for strategy in (zero_strategy, lambda a, p, **kw: merge_strategy(a, p, None, **kw)[0]):
        arr = _arrays([1.0, 2.0, 3.0])
        want = strategy(arr, PLAN)
        got = strategy(arr, PLAN, copy=False)
        assert all(got[k] is arr[k] for k in got)
        assert all(np.array_equal(got[k], want[k]) for k in want)
    frozen = _arrays([1.0, 2.0, 3.0])
    frozen["W_dec"].flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        zero_strategy(frozen, PLAN, copy=False)


def test_compressing_the_output_again_changes_nothing(sae: Path, tmp_path: Path) -> None:
    report = build_report(8, CONFIRMED)
    once = Compressor(report, sae).run(tmp_path / "once.safetensors")
    twice = Compressor(report, once.output_checkpoint).run(tmp_path / "twice.safetensors")
    assert twice.plan.clusters[0].members == once.plan.clusters[0].members
    a, b = load_file(str(once.output_checkpoint)), load_file(str(twice.output_checkpoint))
    assert all(a[k].tobytes() == b[k].tobytes() for k in KEYS)
    assert once.report.output_checkpoint_sha256 == twice.report.output_checkpoint_sha256
