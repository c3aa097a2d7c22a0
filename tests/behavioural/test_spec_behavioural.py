"""Spec 10 audit: statements of the behavioural-validation spec that the other
test files did not pin, each against a hand computation or an independent
re-implementation of 0.0.1's code path."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from behavioural.beh_helpers import PANEL, PROMPTS, make_validator, validate_args, write_sae
from polygram import load_sae_safetensors
from polygram.behavioural import (
    BehaviouralValidator,
    CandidatePair,
    ClusterConfirmer,
    DecoderGeometryConfirmer,
    ValidationReport,
)
from polygram.behavioural.aggregate import aggregate_pairs, check_candidates, decoder_cos2
from polygram.behavioural.report import unmeasured_pair
from polygram.behavioural.stats import bootstrap_mean_ci, summarise
from polygram.sae import from_sae_lens

NAN = math.nan


def _cos2_loop(rows: np.ndarray) -> np.ndarray:
    """0.0.1's predict() arithmetic, one pair at a time."""
    n = rows.shape[0]
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            wa, wb = rows[a], rows[b]
            denom = float(np.dot(wa, wa)) * float(np.dot(wb, wb))
            out[a, b] = float(np.dot(wa, wb)) ** 2 / denom if denom > 0 else 0.0
    return out


# --- §3 decoder cos² -------------------------------------------------------------


def test_decoder_cos2_by_hand() -> None:
    rows = np.array([[3.0, 4.0], [4.0, -3.0], [1.0, 1.0], [0.0, 0.0]])
    c = decoder_cos2(rows)
    assert c[0, 1] == 0.0  # orthogonal
    assert c[0, 2] == pytest.approx(49.0 / 50.0, rel=1e-15)  # (3+4)² / (25·2)
    assert c[1, 2] == pytest.approx(1.0 / 50.0, rel=1e-15)  # (4−3)² / (25·2)
    assert (c[3] == 0.0).all() and (c[:, 3] == 0.0).all()  # a zero row: 0, not NaN
    np.testing.assert_array_equal(c, c.T)


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(1, 6)),
        elements=st.floats(-10, 10, allow_nan=False, width=32),
    )
)
def test_decoder_cos2_matches_the_pair_loop(rows: np.ndarray) -> None:
    c = decoder_cos2(rows)
    want = _cos2_loop(rows)
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=0)
    assert ((c >= 0) & (c <= 1 + 1e-12)).all()


# --- §4.6 candidate checks ----------------------------------------------------------


def test_unmeasured_pair_fields() -> None:
    p = unmeasured_pair(11, 2, 0.5, 0.25)
    assert (p.i, p.j, p.polygram_overlap, p.decoder_overlap) == (11, 2, 0.5, 0.25)
    floats = [f.name for f in fields(p) if f.type in ("float", float)]
    assert floats[2:] == [
        "jaccard", "pearson_activation", "kl_ablate_i", "kl_ablate_j",
        "kl_ratio_paired", "kl_log_ratio_abs",
    ]  # fmt: skip
    assert all(math.isnan(getattr(p, f)) for f in floats[2:])
    assert (p.n_fires_i, p.n_fires_j, p.n_both_fire, p.n_either_fire) == (0, 0, 0, 0)
    assert p.gate_pass is False and unmeasured_pair(1, 2, NAN, NAN, True).gate_pass is True


def test_candidate_checks_one_home() -> None:
    good = unmeasured_pair(3, 1, 0.9, 0.1)
    check_candidates([good], [1, 3])
    with pytest.raises(TypeError, match=r"candidates\[1\]: got tuple; expected CandidatePair"):
        check_candidates([good, (3, 1)], [1, 3])
    with pytest.raises(ValueError, match=r"candidates\[0\]: feature id 1 \(pair \(3, 1\)\)"):
        check_candidates([good], [3, 7])
    acts = {3: np.array([1.0, 0.0]), 7: np.array([0.0, 1.0])}
    with pytest.raises(ValueError, match=r"feature id 1 \(pair \(3, 1\)\) is not in"):
        aggregate_pairs(
            [good], acts, acts, polygram_overlap_threshold=0.7, jaccard_threshold=0.3,
            min_both_fire=1,
        )  # fmt: skip


# --- §4.7 summary ------------------------------------------------------------------


def _bootstrap_loop(values: np.ndarray) -> tuple[float, float]:
    """0.0.1's bootstrap: 1000 separate draws of size n from default_rng(0)."""
    rng = np.random.default_rng(0)
    means = np.array(
        [rng.choice(values, size=values.size, replace=True).mean() for _ in range(1000)]
    )
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 12, 16, 28, 101])
def test_bootstrap_is_bit_identical_to_the_0_0_1_loop(n: int) -> None:
    values = np.random.default_rng(n).random(n)
    assert bootstrap_mean_ci(values) == _bootstrap_loop(values)


def _pair(poly: float, jac: float) -> CandidatePair:
    p = unmeasured_pair(0, 1, poly, 0.0)
    return CandidatePair(**{**{f.name: getattr(p, f.name) for f in fields(p)}, "jaccard": jac})


def test_bucket_edges_and_nan_overlap() -> None:
    pairs = [
        _pair(0.4, 0.1),  # low: ≤ 0.4 is inclusive
        _pair(0.4000001, 0.2),  # mid
        _pair(0.6999999, 0.4),  # mid
        _pair(0.7, 0.6),  # high: ≥ 0.7 is inclusive
        _pair(NAN, 0.9),  # a NaN overlap (geometry reports): in no bucket
    ]
    b = summarise(pairs).buckets
    assert {k: v.n_pairs for k, v in b.items()} == {
        "low_overlap": 1,
        "mid_overlap": 2,
        "high_overlap": 1,
    }
    assert b["low_overlap"].jaccard_mean == 0.1
    assert b["mid_overlap"].jaccard_mean == pytest.approx(0.3, abs=1e-15)
    assert b["high_overlap"].jaccard_ci_95 == (0.6, 0.6)  # one value: every resample is it


def test_boundaries_ignore_the_gate_threshold() -> None:
    # the buckets are fixed at 0.4 / 0.7 whatever the validator's threshold was
    pairs = [_pair(0.5, 0.2), _pair(0.55, 0.3)]
    assert summarise(pairs).buckets["mid_overlap"].n_pairs == 2


# --- §6.1 JSON details ---------------------------------------------------------------


def test_negative_zero_is_written_as_zero() -> None:
    p = unmeasured_pair(1, 2, -0.0, 0.0)
    r = ValidationReport(1, "D", "m", 1, 1, 1, 0.7, 0.3, 0.01, 5, (1, 2), (p,), summarise([p]), ())
    doc = json.loads(r.to_json())
    assert doc["pairs"][0]["polygram_overlap"] == 0.0
    assert '"polygram_overlap":0.0' in r.to_json()


def test_from_json_long_non_object_text_is_not_a_path() -> None:
    text = "[" + "1," * 300 + "1]"  # longer than a file name may be
    with pytest.raises(ValueError, match="expected a JSON object"):
        ValidationReport.from_json(text)


# --- §2 constructor order ------------------------------------------------------------


_make = make_validator


def test_constructor_check_order_middle_steps(sae_ckpt: Path, tmp_path: Path) -> None:
    # 3 (thresholds) before 4 (min_both_fire) before 5 (layer < 0)
    with pytest.raises(ValueError, match="min_firing_rate"):
        _make(sae_ckpt, min_firing_rate=2.0, min_both_fire=0)
    with pytest.raises(ValueError, match="min_both_fire"):
        _make(sae_ckpt, min_both_fire=0, layer=-1)
    # 6 (layer 0 refused) before 7 (prompts) and 8 (checkpoint)
    with pytest.raises(ValueError, match="structural dead zone"):
        _make(sae_ckpt, layer=0, prompts=[], sae_checkpoint=tmp_path / "nope")
    # with the override, the warning comes and the later checks still run
    with (
        pytest.warns(RuntimeWarning, match="structural dead zone"),
        pytest.raises(ValueError, match="prompts"),
    ):
        _make(sae_ckpt, layer=0, allow_layer_zero=True, prompts=[])


def test_cap_checked_before_thresholds(tmp_path: Path) -> None:
    # a 9-feature HEA dictionary on 3 qubits (cap 8): the cap refusal wins
    from polygram import Dictionary, Feature, HEA_Rung2

    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    feats = [Feature(f"f{k}", "c", beta=0.1 * k) for k in range(8)]
    d = Dictionary("Eight", feats, {"c": [f.name for f in feats]}, HEA_Rung2(1, n_qubits=3))
    object.__setattr__(d, "features", [*d.features, Feature("f8", "c", beta=0.9)])
    with pytest.raises(ValueError, match="exceed the per-dictionary cap of 8"):
        BehaviouralValidator(d, ckpt, list(range(9)), ["x"], layer=1, jaccard_threshold=5.0)


def test_cap_is_the_encodings_own(tmp_path: Path) -> None:
    # HEA on 2 qubits holds 4 features: a 5-id panel is refused even though 5 <= 8
    from polygram import Dictionary, Feature, HEA_Rung2

    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    feats = [Feature(f"f{k}", "c", beta=0.1 * k) for k in range(4)]
    d = Dictionary("Four", feats, {"c": [f.name for f in feats]}, HEA_Rung2(1, n_qubits=2))
    object.__setattr__(d, "features", [*d.features, Feature("f4", "c", beta=0.5)])
    with pytest.raises(ValueError, match="exceed the per-dictionary cap of 4"):
        BehaviouralValidator(d, ckpt, list(range(5)), ["x"], layer=1, model_name="gpt2")


# --- §9 geometry confirmers -----------------------------------------------------------


def test_cluster_confirmer_follows_0_0_1(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    panel = [9, 4, 12, 1, 6]
    records = load_sae_safetensors(ckpt, feature_ids=panel)
    labels = {9: "x", 4: "y", 12: "x", 1: "x", 6: "z"}  # z is a singleton
    _, sel = from_sae_lens(records, panel, cluster_assignments=labels)
    r = ClusterConfirmer(sel, ckpt, records).run()
    # cluster x first (first appearance), ids ascending: 1, 9, 12; y and z: no pair
    assert [(p.i, p.j) for p in r.pairs] == [(1, 9), (1, 12), (9, 12)]
    assert r.confirmed == ((1, 9), (1, 12), (9, 12))
    assert r.feature_ids == (1, 4, 6, 9, 12)
    assert all(p.gate_pass and math.isnan(p.polygram_overlap) for p in r.pairs)
    assert (r.dictionary_name, r.layer, r.n_prompts, r.n_tokens) == ("imported_sae", 0, 0, 0)
    assert (r.polygram_overlap_threshold, r.jaccard_threshold, r.min_firing_rate) == (0, 0, 0)
    assert r.min_both_fire == 0 and r.summary.buckets == {}


def test_decoder_geometry_inclusive_threshold(tmp_path: Path) -> None:
    # decoder rows with cos² exactly 0.5 (45°) and 0 (90°): threshold 0.5 keeps the first
    from polygram.sae import SAEFeatureRecord

    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    recs = {
        1: SAEFeatureRecord(1, "a", [1.0, 0.0]),
        2: SAEFeatureRecord(2, "b", [1.0, 1.0]),
        3: SAEFeatureRecord(3, "c", [0.0, 2.0]),
    }
    r = DecoderGeometryConfirmer(recs, ckpt, [2, 1, 3], threshold=0.5).run()
    assert [(p.i, p.j) for p in r.pairs] == [(2, 1), (2, 3), (1, 3)]  # panel order
    assert [p.decoder_overlap for p in r.pairs] == pytest.approx([0.5, 0.5, 0.0], abs=1e-15)
    assert r.confirmed == ((2, 1), (2, 3))


# --- §7 CLI -----------------------------------------------------------------------------


def test_cli_non_default_model_is_not_warned_about(inputs: dict[str, Path]) -> None:
    code = (
        "import sys\nsys.modules['torch'] = None\n"
        "from polygram.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    args = validate_args(inputs, model="EleutherAI/pythia-70m")
    r = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert "warn" not in r.stderr.lower()
    assert "polygram[behavioural]" in r.stderr
    assert r.stdout == ""
    assert not (inputs["dir"] / "out").exists()


# --- seed README: the BehaviouralValidator section as written ------------------------


@pytest.mark.torch
def test_readme_section_runs(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("torch")
    from polygram import BehaviouralValidator as BV
    from polygram import from_sae_lens as fsl
    from polygram import load_sae_safetensors as lss

    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    ids = PANEL
    records = lss(str(ckpt), feature_ids=ids)
    dictionary, _ = fsl(records, ids, assign_gamma=True)
    validator = BV(
        dictionary=dictionary,
        sae_checkpoint=str(ckpt),
        feature_ids=ids,
        prompts=PROMPTS,
        layer=2,
        model_name=str(tiny_model_dir),
        device="cpu",
        min_firing_rate=0.0,
        progress=False,
    )
    report = validator.run()
    report.to_json(tmp_path / "validation_report.json")
    report.to_csv(tmp_path / "validation_pairs.csv")
    assert isinstance(report.confirmed, tuple)
    assert ValidationReport.from_json(tmp_path / "validation_report.json").confirmed == (
        report.confirmed
    )
    # the documented defaults
    assert (validator.polygram_overlap_threshold, validator.jaccard_threshold) == (0.7, 0.3)


# --- §4.5 KL of one row ------------------------------------------------------------------


@pytest.mark.torch
def test_kl_rows_by_hand_and_zero_probability_tokens() -> None:
    torch = pytest.importorskip("torch")
    from polygram.behavioural.sweeps import kl_rows

    p = torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float32)
    q = torch.tensor([[0.25, 0.25, 0.5]], dtype=torch.float32)
    got = float(kl_rows(torch, p.log(), q.log() + 3.0)[0])  # logits: any shift
    want = 0.5 * math.log(2.0) + 0.25 * math.log(0.5)  # Σ p ln(p/q)
    assert got == pytest.approx(want, rel=1e-6)
    # p = 0 where q = 0 too (both −inf logits): contributes 0, not NaN
    base = torch.tensor([[0.0, -math.inf, 0.0]]).log_softmax(-1)
    abl = torch.tensor([[1.0, -math.inf, 0.0]])
    got2 = float(kl_rows(torch, base, abl)[0])
    pa = [0.5, 0.5]
    qa = [math.e / (math.e + 1), 1 / (math.e + 1)]
    assert got2 == pytest.approx(sum(a * math.log(a / b) for a, b in zip(pa, qa)), rel=1e-6)
    # identical distributions: exactly 0 after the clamp
    same = torch.randn(4, 9)
    assert (kl_rows(torch, same.log_softmax(-1), same) >= 0).all()


@pytest.mark.torch
def test_cli_unwritable_report_exits_1(
    inputs: dict[str, Path], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a run that succeeds but whose --output sits under a regular file: one line, exit 1
    pytest.importorskip("torch")
    from polygram.cli import main

    blocker = inputs["dir"] / "not_a_dir"
    blocker.write_text("x")
    args = validate_args(
        inputs,
        model=str(tiny_model_dir),
        device="cpu",
        min_firing_rate="0",
        output=str(blocker / "report.json"),
    )
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 1
    assert err.splitlines()[-1].startswith("polygram validate: failed: ")
    assert "not_a_dir" in err.splitlines()[-1]


def test_std_floor_is_inclusive_per_pair_and_strict_in_the_summary() -> None:
    # std([0, 2e-12]) is exactly 1e-12: §4.6 (activations, "std ≤ 1e-12") gives NaN,
    # §4.7 (summary, "std < 1e-12") still correlates
    from polygram.behavioural.aggregate import aggregate_pair
    from polygram.behavioural.stats import pearson

    x = np.array([0.0, 2e-12])
    assert x.std() == 1e-12
    assert pearson(x, [0.0, 1.0]) == pytest.approx(1.0)
    assert math.isnan(pearson(x, [0.0, 1.0], floor_inclusive=True))
    p = aggregate_pair(
        unmeasured_pair(1, 2, 0.5, 0.5), x, np.array([0.0, 1.0]), np.zeros(2), np.zeros(2),
        polygram_overlap_threshold=0.7, jaccard_threshold=0.3, min_both_fire=1,
    )  # fmt: skip
    assert math.isnan(p.pearson_activation)
    assert p.jaccard == 1.0 and (p.n_both_fire, p.n_either_fire) == (1, 1)  # both fire at t=1


def _aggregate_oracle(
    ai: list[float], aj: list[float], ki: list[float], kj: list[float], poly: float, mbf: int
) -> dict[str, Any]:
    """§4.6 in plain Python loops."""
    t = len(ai)
    fi = [a > 0 for a in ai]
    fj = [a > 0 for a in aj]
    both = [x and y for x, y in zip(fi, fj)]
    either = [x or y for x, y in zip(fi, fj)]
    n_both, n_either = sum(both), sum(either)

    def mean(vals: list[float]) -> float:
        return sum(vals) / len(vals) if vals else NAN

    ratio = NAN
    if n_both >= mbf:
        mi = mean([ki[k] for k in range(t) if both[k]])
        mj = mean([kj[k] for k in range(t) if both[k]])
        if mi > 0 and mj > 0:
            ratio = mi / mj
    jac = n_both / max(n_either, 1)
    return {
        "n_fires_i": sum(fi),
        "n_fires_j": sum(fj),
        "n_both_fire": n_both,
        "n_either_fire": n_either,
        "jaccard": jac,
        "kl_ablate_i": mean([ki[k] for k in range(t) if fi[k]]),
        "kl_ablate_j": mean([kj[k] for k in range(t) if fj[k]]),
        "kl_ratio_paired": ratio,
        "kl_log_ratio_abs": abs(math.log(ratio)) if math.isfinite(ratio) else NAN,
        "gate_pass": poly >= 0.7 and jac >= 0.3 and n_both >= mbf,
    }


_act = st.one_of(st.just(0.0), st.floats(0.0625, 8.0, width=32))
_kl = st.one_of(st.just(0.0), st.floats(1 / 1024, 2.0, width=32))


@settings(max_examples=150, deadline=None)
@given(
    data=st.integers(1, 12).flatmap(
        lambda t: st.tuples(
            st.lists(_act, min_size=t, max_size=t),
            st.lists(_act, min_size=t, max_size=t),
            st.lists(_kl, min_size=t, max_size=t),
            st.lists(_kl, min_size=t, max_size=t),
        )
    ),
    poly=st.sampled_from([0.0, 0.69999, 0.7, 1.0]),
    mbf=st.integers(1, 4),
)
def test_aggregate_pair_matches_the_loop_oracle(
    data: tuple[list[float], list[float], list[float], list[float]], poly: float, mbf: int
) -> None:
    from polygram.behavioural.aggregate import aggregate_pair

    ai, aj, ki, kj = data
    got = aggregate_pair(
        unmeasured_pair(4, 2, poly, 0.1),
        *(np.array(v, dtype=np.float32) for v in (ai, aj, ki, kj)),
        polygram_overlap_threshold=0.7,
        jaccard_threshold=0.3,
        min_both_fire=mbf,
    )
    want = _aggregate_oracle(ai, aj, ki, kj, poly, mbf)
    for key, w in want.items():
        g = getattr(got, key)
        if isinstance(w, float) and math.isnan(w):
            assert math.isnan(g), key
        elif isinstance(w, float):
            assert g == pytest.approx(w, rel=1e-6, abs=1e-12), key
        else:
            assert g == w, key
    assert (got.i, got.j, got.polygram_overlap, got.decoder_overlap) == (4, 2, poly, 0.1)
