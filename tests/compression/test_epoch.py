"""EpochCompressor (spec 13): constructor checks, the inline panel gate, the
aggregation, the quality proxy, the report JSON and torch-free ``run()``
on a synthetic SAE with planted redundant groups (``cached_residuals``)."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from epoch_helpers import GROUP_A, GROUP_B, N_SAE, planted_sae, residuals, write_planted_sae
from epoch_helpers import make_epoch as make
from hypothesis import given
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from polygram import _io
from polygram.behavioural.report import CandidatePair, ValidationReport
from polygram.compression.epoch import (
    EpochCompressor,
    aggregate_panel_reports,
    quality_delta,
    validate_panel,
)
from polygram.compression.epoch_report import EpochIteration, EpochReport, Panel
from polygram.errors import CompressionError, PolygramDefaultWarning, SAEFileNotFoundError
from polygram.sae import from_sae_lens, load_sae
from polygram.sae.records import SAEFeatureRecord


@pytest.fixture()
def sae(tmp_path: Path) -> Path:
    return write_planted_sae(tmp_path / "src" / "sae.safetensors")


# --- constructor ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"strategy": "merge"}, "'zero' strategy"),
        ({"coverage_target": 0.0}, "coverage_target"),
        ({"coverage_target": 1.01}, "coverage_target"),
        ({"cosine_threshold": 1.5}, "cosine_threshold"),
        ({"cosine_threshold": -1.01}, "cosine_threshold"),
        ({"n_visits_per_feature": 0}, "n_visits_per_feature"),
        ({"n_panels_max": 0}, "n_panels_max"),
        ({"n_panels_max": 2.0}, "n_panels_max"),
        ({"min_firing_rate": -0.1}, "min_firing_rate"),
        ({"min_firing_rate": 1.1}, "min_firing_rate"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"quality_delta_multiplier": 0.0}, "quality_delta_multiplier"),
        ({"quality_delta_multiplier": math.nan}, "quality_delta_multiplier"),
        ({"layer": -1}, "layer"),
        ({"layer": True}, "layer"),
        ({"layer": 0}, re.escape("use layer >= 5 (recommended: 10)")),
        ({"polygram_overlap_threshold": 1.5}, "polygram_overlap_threshold"),
        ({"jaccard_threshold": -0.1}, "jaccard_threshold"),
        ({"min_both_fire": -1}, "min_both_fire"),
        ({"device": "tpu"}, "unsupported device"),
        ({"cached_residuals": np.ones(4, np.float32)}, "cached_residuals"),
        ({"cached_residuals": np.full((2, 16), np.nan, np.float32)}, "non-finite"),
    ],
)
def test_constructor_rejects(sae: Path, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(sae, **kw)


def test_constructor_checkpoint_and_prompts_first(tmp_path: Path, sae: Path) -> None:
    with pytest.raises(SAEFileNotFoundError, match="no such file"):
        EpochCompressor(tmp_path / "nope.safetensors", [], 5, strategy="merge")
    with pytest.raises(CompressionError, match="non-empty"):
        EpochCompressor(sae, [], 5, strategy="merge")  # prompts before strategy
    with pytest.raises(CompressionError, match="'zero'"):
        EpochCompressor(sae, ["a"], 5, strategy="merge", coverage_target=0)
    with pytest.raises(CompressionError, match="coverage_target"):
        EpochCompressor(sae, ["a"], -1, coverage_target=0)  # before layer


def test_constructor_defaults_and_layer_zero(sae: Path) -> None:
    e = EpochCompressor(sae, ["hello"], 10, model_name="gpt2")
    assert (e.coverage_target, e.cosine_threshold, e.n_visits_per_feature) == (0.95, 0.3, 3)
    assert (e.n_panels_max, e.min_firing_rate, e.max_iterations) == (1000, 0.01, 5)
    assert (e.quality_delta_multiplier, e.model_name, e.strategy) == (2.0, "gpt2", "zero")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # allowed layer 0 gives no warning here
        EpochCompressor(sae, ["hello"], 0, model_name="gpt2", allow_layer_zero=True)
    assert make(sae, quality_delta_multiplier=math.inf).quality_delta_multiplier == math.inf


# --- inline gate, aggregation, quality proxy ------------------------------------------


def _oracle_pair(acts: np.ndarray, a: int, b: int) -> tuple[int, int, float, float]:
    fa = [v > 0 for v in acts[:, a]]
    fb = [v > 0 for v in acts[:, b]]
    both = sum(x and y for x, y in zip(fa, fb, strict=True))
    either = sum(x or y for x, y in zip(fa, fb, strict=True))
    ja = both / either if either else 0.0
    x, y = acts[:, a].astype(float), acts[:, b].astype(float)
    if x.std() < 1e-12 or y.std() < 1e-12:
        pe = float(np.mean((x - x.mean()) * (y - y.mean())))  # std replaced by 1 → 0 here
    else:
        pe = float(np.corrcoef(x, y)[0, 1])
    return both, either, ja, pe


def test_validate_panel_matches_oracle() -> None:
    state = planted_sae()
    x = residuals(n_tokens=400)
    ids = (0, 1, 2, 5, 8, 9, 17, 23)
    state["W_enc"][:, 23] = 0.0  # never fires: Pearson 0 (not NaN), Jaccard from the other
    state["b_enc"][23] = -1.0
    r = validate_panel(
        Panel(4, 5, ids, ()),
        load_sae(state),
        x,
        model_name="m",
        layer=7,
        n_prompts=3,
        polygram_overlap_threshold=0.5,
        jaccard_threshold=0.3,
        min_both_fire=5,
    )
    acts = np.maximum((x - state["b_dec"]) @ state["W_enc"][:, ids] + state["b_enc"][list(ids)], 0)
    rows = state["W_dec"][list(ids)]
    records = {f: SAEFeatureRecord(f, f"feat_{f}", rows[k]) for k, f in enumerate(ids)}
    poly = np.abs(from_sae_lens(records, list(ids), assign_gamma=True)[0].gram()) ** 2
    assert len(r.pairs) == 28
    for p in r.pairs:
        a, b = ids.index(p.i), ids.index(p.j)
        assert p.i < p.j
        both, either, ja, pe = _oracle_pair(acts, a, b)
        assert (p.n_both_fire, p.n_either_fire) == (both, either)
        assert p.n_fires_i == int((acts[:, a] > 0).sum())
        assert p.jaccard == pytest.approx(ja)
        assert p.pearson_activation == pytest.approx(pe, abs=1e-9)
        assert not math.isnan(p.pearson_activation)
        ra, rb = rows[a].astype(float), rows[b].astype(float)
        cos = ra @ rb / (np.linalg.norm(ra) * np.linalg.norm(rb))
        assert p.decoder_overlap == pytest.approx(cos**2)
        assert p.polygram_overlap == pytest.approx(poly[a, b])
        assert math.isnan(p.kl_ablate_i) and math.isnan(p.kl_log_ratio_abs)
        assert p.gate_pass == (poly[a, b] >= 0.5 and ja >= 0.3 and both >= 5)
    assert r.confirmed == tuple(sorted((p.i, p.j) for p in r.pairs if p.gate_pass))
    assert (0, 1) in r.confirmed and (8, 9) in r.confirmed
    assert (r.dictionary_name, r.n_tokens, r.n_prompts, r.min_firing_rate) == ("Panel4", 400, 3, 0)
    assert r.summary.outcome == "epoch_inline" and r.summary.buckets == {}


def _pair(i: int, j: int, **kw: Any) -> CandidatePair:
    base: dict[str, Any] = {
        "polygram_overlap": 0.5,
        "decoder_overlap": 0.5,
        "jaccard": 0.2,
        "pearson_activation": 0.0,
        "kl_ablate_i": math.nan,
        "kl_ablate_j": math.nan,
        "kl_ratio_paired": math.nan,
        "kl_log_ratio_abs": math.nan,
        "n_fires_i": 1,
        "n_fires_j": 1,
        "n_both_fire": 0,
        "n_either_fire": 0,
        "gate_pass": False,
    }
    base.update(kw)
    return CandidatePair(i, j, **base)


def _panel_report(name: str, ids: tuple[int, ...], pairs: list[CandidatePair]) -> ValidationReport:
    r = validate_panel(
        Panel(0, ids[0], ids, ()),
        load_sae(planted_sae()),
        residuals(n_tokens=10),
        model_name="m",
        layer=5,
        n_prompts=2,
        polygram_overlap_threshold=0.7,
        jaccard_threshold=0.3,
        min_both_fire=5,
    )
    from dataclasses import replace

    return replace(r, dictionary_name=name, pairs=tuple(pairs), confirmed=())


def test_aggregation_rules() -> None:
    r1 = _panel_report(
        "Panel0",
        (1, 2, 3),
        [
            _pair(1, 2, polygram_overlap=0.6, decoder_overlap=0.9, pearson_activation=1.0,
                  n_either_fire=3, n_both_fire=2, jaccard=0.3),
            _pair(2, 3, gate_pass=True),
        ],
    )  # fmt: skip
    r2 = _panel_report(
        "Panel1",
        (1, 2, 7),
        [
            _pair(1, 2, polygram_overlap=0.8, decoder_overlap=0.1, pearson_activation=0.0,
                  n_either_fire=0, n_both_fire=1, jaccard=0.1, gate_pass=True),
            _pair(1, 7),
        ],
    )  # fmt: skip
    s = aggregate_panel_reports([r1, r2], "EpochSynth_x")
    assert [(p.i, p.j) for p in s.pairs] == [(1, 2), (1, 7), (2, 3)]
    p12 = s.pairs[0]
    assert p12.polygram_overlap == 0.8 and p12.jaccard == 0.3 and p12.n_both_fire == 2
    assert p12.decoder_overlap == 0.9  # the first panel's
    assert p12.pearson_activation == pytest.approx((3 * 1.0 + 1 * 0.0) / 4)  # weights max(1, n)
    assert p12.gate_pass and math.isnan(p12.kl_ablate_j)
    assert s.confirmed == ((1, 2), (2, 3))
    assert s.feature_ids == (1, 2, 3, 7)
    assert s.dictionary_name == "EpochSynth_x" and s.summary.outcome == "epoch_synthesized"
    assert (s.n_prompts, s.layer, s.model_name) == (2, 5, "m")
    with pytest.raises(CompressionError, match="no panel reports"):
        aggregate_panel_reports([], "x")


def test_quality_delta_matches_oracle() -> None:
    before = planted_sae()
    after = {k: v.copy() for k, v in before.items()}
    after["W_dec"][[1, 2]] = 0
    after["W_enc"][:, [1, 2]] = 0
    x = residuals(n_tokens=60)

    def recon(s: dict[str, np.ndarray], t: np.ndarray) -> list[float]:
        z = np.maximum((t - s["b_dec"]) @ s["W_enc"] + s["b_enc"], 0) @ s["W_dec"] + s["b_dec"]
        m = max(z)
        e = [math.exp(v - m) for v in z]
        return [v / sum(e) for v in e]

    total = 0.0
    for t in x:
        p, q = recon(before, t), recon(after, t)
        total += sum((a - b) ** 2 for a, b in zip(p, q, strict=True))
    a, b = load_sae(before), load_sae(after)
    assert quality_delta(x, a, b) == pytest.approx(total / len(x), rel=1e-6)
    assert quality_delta(x, a, a) == 0.0
    assert 0 < quality_delta(x, a, b) <= 2


# --- report JSON ---------------------------------------------------------------------


def _report() -> EpochReport:
    it = EpochIteration(
        0,
        (Panel(0, 3, (1, 3, 4), (0.5, -0.25)),),
        ("a.json",),
        2,
        1,
        (4,),
        math.nan,
        "continuing",
    )
    return EpochReport("s", "ab", "/o", "cd", "max_iterations", 1, 1, 0.5, 1.25, (it,))


def test_report_json_round_trip_and_nulls(tmp_path: Path) -> None:
    r = _report()
    text = r.to_json(tmp_path / "r.json")
    doc = json.loads(text)
    assert list(doc) == sorted(doc) and " " not in text
    assert doc["iterations"][0]["cross_entropy_delta"] is None
    assert EpochReport.from_json(text) == r  # NaN-aware
    assert EpochReport.from_json(tmp_path / "r.json") == r
    doc["iterations"][0]["panels"][0]["cosines_to_anchor"] = [None, 0.5]
    back = EpochReport.from_json(json.dumps(doc))
    assert back.iterations[0].panels[0].cosines_to_anchor == (0.0, 0.5)
    del doc["wall_seconds"]
    with pytest.raises(ValueError, match="missing required key"):
        EpochReport.from_json(json.dumps(doc))
    assert r != EpochReport.from_json(r.to_json().replace('"max_iterations"', '"x"'))


def test_report_rounds_to_six_significant_figures() -> None:
    r = _report()
    from dataclasses import replace

    doc = json.loads(replace(r, wall_seconds=1.23456789, coverage_achieved=1 / 3).to_json())
    assert doc["wall_seconds"] == 1.23457 and doc["coverage_achieved"] == 0.333333


# --- run() ------------------------------------------------------------------------------


def _leftovers(*dirs: Path) -> list[str]:
    return [p.name for d in dirs for p in d.iterdir() if p.name.startswith(".")]


def test_run_compresses_planted_groups(sae: Path, tmp_path: Path) -> None:
    src_sha = _io.sha256_file(sae)
    out = tmp_path / "out" / "sae.epoch.safetensors"
    e = make(sae)
    res = e.run(out)
    rep = res.report
    assert _io.sha256_file(sae) == src_sha  # source untouched
    assert rep.source_checkpoint == str(sae) and rep.source_checkpoint_sha256 == src_sha
    assert rep.output_checkpoint == str(out.resolve()) == str(res.output_checkpoint)
    assert rep.output_checkpoint_sha256 == _io.sha256_file(out)
    first = rep.iterations[0]
    zeroed = set(first.features_zeroed_this_iteration)
    assert zeroed == (set(GROUP_A) - {0}) | (set(GROUP_B) - {8})  # reps: tied counts → lowest id
    assert first.confirmed_pair_count == 6 + 3 and first.clusters_compressed == 2
    assert first.cross_entropy_delta > 0
    for it in rep.iterations[1:]:  # zeroed features never return
        assert not zeroed & {f for p in it.panels for f in p.feature_ids}
    assert rep.convergence_reason == "stable_clusters"
    assert rep.iterations[-1].convergence_state == "stable_clusters"
    assert rep.n_features_zeroed_total == len(zeroed)
    assert rep.n_panels_total == sum(len(it.panels) for it in rep.iterations)
    written = load_file(str(out))
    assert sorted(written) == ["W_dec", "W_enc", "b_dec", "b_enc"]
    for f in zeroed:
        assert not written["W_dec"][f].any() and not written["W_enc"][:, f].any()
        assert written["b_enc"][f] == 0
    src = planted_sae()
    keep = [f for f in range(N_SAE) if f not in zeroed]
    np.testing.assert_array_equal(written["W_dec"][keep], src["W_dec"][keep])
    assert _leftovers(out.parent, sae.parent) == []
    assert res.final_dictionary.name == "Epoch_sae"
    assert len(res.final_dictionary.features) == len(zeroed)
    for p in first.panels:
        assert p.feature_ids == tuple(sorted(p.feature_ids)) and p.anchor in p.feature_ids
        assert len(p.cosines_to_anchor) == len(p.feature_ids) - 1
    # the quality proxy is the oracle's on source → output for a single iteration
    e1 = make(sae, max_iterations=1)
    r1 = e1.run(tmp_path / "one.safetensors").report
    assert r1.convergence_reason == "max_iterations"
    one = load_file(str(tmp_path / "one.safetensors"))
    ce = r1.iterations[0].cross_entropy_delta
    assert ce == pytest.approx(quality_delta(residuals(), load_sae(src), load_sae(one)), rel=1e-5)


def test_run_is_repeatable_on_one_instance(sae: Path, tmp_path: Path) -> None:
    # 0.0.1 kept the zeroed set across run() calls; here each run starts afresh
    e = make(sae)
    a = e.run(tmp_path / "a.safetensors").report
    b = e.run(tmp_path / "b.safetensors").report
    assert a.iterations == b.iterations
    assert a.output_checkpoint_sha256 == b.output_checkpoint_sha256


def test_run_one_panel_per_iteration_then_breach_reverts(sae: Path, tmp_path: Path) -> None:
    kw = {"n_panels_max": 1, "n_visits_per_feature": 1}
    ok = make(sae, **kw).run(tmp_path / "ok.safetensors").report
    assert [it.features_zeroed_this_iteration for it in ok.iterations[:2]] == [(1, 2, 3), (9, 10)]
    assert [it.convergence_state for it in ok.iterations] == [
        "continuing",
        "continuing",
        "stable_clusters",
    ]
    capped = make(sae, max_iterations=2, **kw).run(tmp_path / "c.safetensors").report
    assert capped.convergence_reason == "max_iterations"
    assert capped.n_features_zeroed_total == 5

    out = tmp_path / "breach.safetensors"
    e = make(sae, quality_delta_multiplier=1e-6, **kw)
    rep = e.run(out).report
    assert rep.convergence_reason == "quality_bound_breached"
    assert len(rep.iterations) == 2
    assert rep.iterations[1].convergence_state == "quality_bound_breached"
    assert rep.iterations[1].features_zeroed_this_iteration == (9, 10)  # listed, but reverted
    assert rep.n_features_zeroed_total == 3
    written = load_file(str(out))
    assert written["W_dec"][[9, 10]].any(axis=1).all()  # reverted: B untouched
    assert not written["W_dec"][[1, 2, 3]].any()
    # the kept state is exactly the first iteration's output
    first_only = make(sae, max_iterations=1, **kw).run(tmp_path / "first.safetensors")
    assert rep.output_checkpoint_sha256 == first_only.report.output_checkpoint_sha256


def test_run_nothing_eligible_rewrites_source(tmp_path: Path) -> None:
    sae = write_planted_sae(tmp_path / "sae.safetensors", extra=True)
    out = tmp_path / "o" / "x.safetensors"
    rep = make(sae, min_firing_rate=1.0).run(out).report
    assert rep.convergence_reason == "no_more_priority_candidates"
    assert rep.iterations == () and rep.n_panels_total == 0 and rep.coverage_achieved == 1.0
    written, src = load_file(str(out)), load_file(str(sae))
    assert sorted(written) == sorted(src)  # all keys and dtypes kept
    for k in src:
        assert written[k].dtype == src[k].dtype
        np.testing.assert_array_equal(written[k], src[k])


def test_run_nothing_confirmed_records_the_iteration(sae: Path, tmp_path: Path) -> None:
    rep = make(sae, jaccard_threshold=1.0, min_both_fire=10**6).run(tmp_path / "o.st").report
    assert rep.convergence_reason == "no_more_priority_candidates"
    (it,) = rep.iterations
    assert it.panels and it.confirmed_pair_count == 0 and it.cross_entropy_delta == 0.0
    assert it.features_zeroed_this_iteration == ()
    assert it.convergence_state == "no_more_priority_candidates"


def test_run_single_eligible_feature_warns(tmp_path: Path) -> None:
    state = planted_sae()
    state["b_enc"][5] = 10.0  # fires on every token; nothing else does
    sae = tmp_path / "one.safetensors"
    save_file(state, str(sae))
    with pytest.warns(RuntimeWarning, match="feature 5 is the only eligible feature"):
        rep = make(sae, min_firing_rate=1.0).run(tmp_path / "o.safetensors").report
    assert [p.feature_ids for p in rep.iterations[0].panels] == [(5,)]
    assert rep.convergence_reason == "no_more_priority_candidates"


def test_run_intermediate_reports(sae: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "x.safetensors"
    rep = make(sae, save_intermediate_reports=True).run(out).report
    paths = rep.iterations[0].validation_report_paths
    assert len(paths) == len(rep.iterations[0].panels)
    assert paths[0] == str(out.parent / "epoch_intermediate" / "iter0_panel0.json")
    r = ValidationReport.from_json(Path(paths[0]))
    assert r.dictionary_name == "Panel0" and r.summary.outcome == "epoch_inline"


def test_run_refuses_output_equal_to_source(sae: Path) -> None:
    with pytest.raises(CompressionError, match="never rewritten in place"):
        make(sae).run(sae)


def test_run_rejects_width_mismatch(sae: Path, tmp_path: Path) -> None:
    e = make(sae, cached_residuals=np.ones((5, 3), np.float32))
    with pytest.raises(CompressionError, match="d_in is 16"):
        e.run(tmp_path / "o.safetensors")


def test_run_prints_progress(sae: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make(sae, progress=True, max_iterations=1).run(tmp_path / "o.safetensors")
    err = capsys.readouterr().err
    assert "iteration 0:" in err and "confirmed pairs" in err and "zeroed" in err
    assert "delta" in err


# --- the model pre-pass (torch) ---------------------------------------------------------


@pytest.mark.torch
def test_run_with_prompts_equals_cached_capture(tiny_model_dir: Path, tmp_path: Path) -> None:
    from behavioural.beh_helpers import PROMPTS, write_sae

    from polygram.runtime import HookPoint, capture_activations, get_model

    sae = tmp_path / "sae.safetensors"
    write_sae(sae, n_sae=24, d_model=32, seed=3)
    common: dict[str, Any] = {
        "model_name": str(tiny_model_dir),
        "device": "cpu",
        "polygram_overlap_threshold": 0.0,
        "min_both_fire": 2,
        "progress": False,
        "quality_metric": "upstream_proxy",  # the cached run has no model
    }
    # eval_prompts given: every prompt feeds the pre-pass (no 75/25 split)
    live = EpochCompressor(sae, PROMPTS, 2, eval_prompts=PROMPTS, **common)
    a = live.run(tmp_path / "a.safetensors").report
    x = capture_activations(get_model(tiny_model_dir, "cpu"), HookPoint(2), PROMPTS)
    assert live.debug["n_tokens"] == x.shape[0] > 0
    cached = EpochCompressor(sae, [], 2, cached_residuals=x, **common)
    b = cached.run(tmp_path / "b.safetensors").report
    assert a.iterations == b.iterations and a.iterations
    assert a.output_checkpoint_sha256 == b.output_checkpoint_sha256
    assert a.iterations[0].confirmed_pair_count > 0
    assert a.convergence_reason in {
        "stable_clusters",
        "max_iterations",
        "quality_bound_breached",
        "no_more_priority_candidates",
    }


def test_seed_readme_constructor(sae: Path) -> None:
    """The seed README's EpochCompressor snippet, up to the run (which needs gpt2)."""
    with pytest.warns(PolygramDefaultWarning, match="using --model gpt2"):
        epoch = EpochCompressor(
            sae_checkpoint=str(sae),
            prompts=["The cat sat on the mat."],
            layer=10,
            coverage_target=0.95,
            cosine_threshold=0.30,
            n_visits_per_feature=3,
            max_iterations=5,
            quality_delta_multiplier=2.0,
        )
    assert epoch.sae.source.path == sae and epoch.layer == 10
    assert epoch.sae.settings.model_name.to_dict() == {"value": "gpt2", "source": "default"}


@given(
    st.integers(2, 8),
    st.integers(1, 40),
    st.integers(0, 2**32 - 1),
    st.sampled_from([-3.0, -0.5, 0.0, 2.0]),
)
def test_validate_panel_counts_property(n: int, t: int, seed: int, bias: float) -> None:
    """Random panels: counts, Jaccard and Pearson against the oracle; never NaN."""
    rng = np.random.default_rng(seed)
    d = 5
    state = {
        "W_enc": rng.standard_normal((d, n)).astype(np.float32),
        "b_enc": np.full(n, bias, np.float32),
        "W_dec": rng.standard_normal((n, d)).astype(np.float32),
        "b_dec": np.zeros(d, np.float32),
    }
    x = rng.standard_normal((t, d)).astype(np.float32)
    ids = tuple(range(n))
    r = validate_panel(
        Panel(0, 0, ids, ()),
        load_sae(state),
        x,
        model_name="m",
        layer=5,
        n_prompts=1,
        polygram_overlap_threshold=0.0,
        jaccard_threshold=0.0,
        min_both_fire=0,
    )
    acts = np.maximum((x - state["b_dec"]) @ state["W_enc"] + state["b_enc"], 0)
    assert len(r.pairs) == n * (n - 1) // 2
    for p in r.pairs:
        both, either, ja, pe = _oracle_pair(acts, p.i, p.j)
        assert (p.n_both_fire, p.n_either_fire) == (both, either)
        assert p.jaccard == pytest.approx(ja)
        assert p.pearson_activation == pytest.approx(pe, abs=1e-9)
        assert -1 - 1e-9 <= p.pearson_activation <= 1 + 1e-9
        assert p.gate_pass  # all-zero gates pass everything


@given(st.integers(0, 2**32 - 1), st.sampled_from([-0.1, 0.2, 0.5]))
def test_restricted_graph_equals_recomputed(seed: int, thr: float) -> None:
    from polygram.compression.epoch import _restricted_graph
    from polygram.compression.panels import cosine_pair_graph

    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(200, size=60, replace=False)).astype(np.int64)
    rows = rng.standard_normal((60, 6)).astype(np.float32)
    prev = (ids, rows, cosine_pair_graph(rows, thr))
    keep = np.sort(rng.choice(60, size=int(rng.integers(0, 61)), replace=False))
    got = _restricted_graph(prev, ids[keep], rows[keep])
    assert got is not None
    np.testing.assert_array_equal(got, cosine_pair_graph(rows[keep], thr).reshape(-1, 2))
    changed = rows[keep].copy()
    if len(keep):
        changed[0, 0] += 1.0
        assert _restricted_graph(prev, ids[keep], changed) is None
    assert _restricted_graph(prev, np.array([1000]), rows[:1]) is None  # not a subset
    assert _restricted_graph(None, ids, rows) is None


def test_run_reuses_the_graph_after_the_first_iteration(sae: Path, tmp_path: Path) -> None:
    e = make(sae, cosine_threshold=0.1)
    e.run(tmp_path / "o.safetensors")
    its = e.debug["iterations"]
    assert len(its) >= 2 and not its[0]["graph_reused"] and its[1]["graph_reused"]
    assert its[1]["n_edges"] <= its[0]["n_edges"]


@st.composite
def panel_reports(draw: st.DrawFn) -> list[ValidationReport]:
    reports = []
    for k in range(draw(st.integers(1, 4))):
        ids = tuple(sorted(draw(st.sets(st.integers(0, 9), min_size=1, max_size=5))))
        pairs = []
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                n_i, n_j = draw(st.integers(0, 20)), draw(st.integers(0, 20))
                both = draw(st.integers(0, min(n_i, n_j)))
                pairs.append(
                    _pair(
                        ids[a],
                        ids[b],
                        polygram_overlap=draw(st.floats(0, 1)),
                        decoder_overlap=draw(st.floats(0, 1)),
                        jaccard=draw(st.floats(0, 1)),
                        pearson_activation=draw(st.floats(-1, 1)),
                        n_fires_i=n_i,
                        n_fires_j=n_j,
                        n_both_fire=both,
                        n_either_fire=n_i + n_j - both,
                        gate_pass=draw(st.booleans()),
                    )
                )
        reports.append(_panel_report(f"Panel{k}", ids, pairs))
    return reports


@given(panel_reports())
def test_aggregation_matches_dict_oracle(reports: list[ValidationReport]) -> None:
    s = aggregate_panel_reports(reports, "EpochSynth_t")
    groups: dict[tuple[int, int], list[CandidatePair]] = {}
    for r in reports:
        for p in r.pairs:
            groups.setdefault((p.i, p.j), []).append(p)
    assert [(p.i, p.j) for p in s.pairs] == sorted(groups)
    for p in s.pairs:
        g = groups[(p.i, p.j)]
        assert p.polygram_overlap == max(q.polygram_overlap for q in g)
        assert p.jaccard == max(q.jaccard for q in g)
        assert p.decoder_overlap == g[0].decoder_overlap
        assert p.n_either_fire == max(q.n_either_fire for q in g)
        w = [max(1, q.n_either_fire) for q in g]
        want = sum(wi * q.pearson_activation for wi, q in zip(w, g, strict=True)) / sum(w)
        assert p.pearson_activation == pytest.approx(want, abs=1e-12)
        assert p.gate_pass == any(q.gate_pass for q in g)
    assert s.confirmed == tuple(sorted(k for k, g in groups.items() if any(q.gate_pass for q in g)))
    assert s.feature_ids == tuple(sorted({f for r in reports for f in r.feature_ids}))
