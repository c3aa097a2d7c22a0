"""Summary statistics against scipy (no ties) and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from polygram.behavioural.report import CandidatePair
from polygram.behavioural.stats import (
    bootstrap_mean_ci,
    outcome_for,
    pearson,
    spearman_ordinal,
    summarise,
)

NAN = math.nan


def pair(poly: float, dec: float, jac: float, logkl: float = NAN) -> CandidatePair:
    return CandidatePair(
        i=0, j=1, polygram_overlap=poly, decoder_overlap=dec, jaccard=jac,
        pearson_activation=NAN, kl_ablate_i=NAN, kl_ablate_j=NAN, kl_ratio_paired=NAN,
        kl_log_ratio_abs=logkl, n_fires_i=0, n_fires_j=0, n_both_fire=0, n_either_fire=0,
        gate_pass=False,
    )  # fmt: skip


def test_spearman_matches_scipy_without_ties() -> None:
    rng = np.random.default_rng(7)
    for n in (2, 3, 10, 28):
        x, y = rng.normal(size=n), rng.normal(size=n)
        assert spearman_ordinal(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_ordinal_ranks_with_ties() -> None:
    # ranks by argsort(argsort): [0, 0, 1] → ranks (0, 1, 2) (stable on this input)
    x, y = [0.0, 0.0, 1.0], [3.0, 1.0, 2.0]
    rx = np.array([0.0, 1.0, 2.0])
    ry = np.array([2.0, 0.0, 1.0])
    assert spearman_ordinal(x, y) == pytest.approx(np.corrcoef(rx, ry)[0, 1])
    assert spearman_ordinal(x, y) != pytest.approx(sps.spearmanr(x, y).statistic)


def test_degenerate_correlations_are_nan() -> None:
    assert math.isnan(spearman_ordinal([1.0], [2.0]))
    assert math.isnan(spearman_ordinal([], []))
    assert math.isnan(pearson([1.0], [2.0]))
    assert math.isnan(pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))


def test_pearson_by_hand() -> None:
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0]
    # mean 2.5 each; deviations (-1.5,-.5,.5,1.5)·(-.5,-1.5,1.5,.5) = 3; Σdx² = Σdy² = 5
    assert pearson(x, y) == pytest.approx(3.0 / 5.0)
    assert spearman_ordinal(x, y) == pytest.approx(0.6)  # the values are their ranks + 1


def test_bootstrap_ci_independent_loop() -> None:
    vals = [0.1, 0.5, 0.2, 0.9, 0.3]
    rng = np.random.default_rng(0)
    means = []
    for _ in range(1000):
        idx = rng.choice(len(vals), size=len(vals), replace=True)
        means.append(sum(vals[k] for k in idx) / len(vals))
    means.sort()

    # numpy "linear" quantile: position q·(n−1)
    def q(p: float) -> float:
        pos = p * (len(means) - 1)
        lo = math.floor(pos)
        return means[lo] + (means[lo + 1] - means[lo]) * (pos - lo)

    lo, hi = bootstrap_mean_ci(vals)
    assert lo == pytest.approx(q(0.025), abs=1e-12) and hi == pytest.approx(q(0.975), abs=1e-12)
    assert lo < np.mean(vals) < hi
    assert bootstrap_mean_ci([0.25]) == (0.25, 0.25)
    assert all(math.isnan(v) for v in bootstrap_mean_ci([]))


@pytest.mark.parametrize(
    ("s", "want"),
    [
        (NAN, "undefined"),
        (0.6, "high_spearman_loop_unblocked"),
        (0.95, "high_spearman_loop_unblocked"),
        (0.5999, "medium_spearman_loop_needs_calibration"),
        (0.3, "medium_spearman_loop_needs_calibration"),
        (0.2999, "low_spearman_loop_blocked"),
        (-1.0, "low_spearman_loop_blocked"),
    ],
)
def test_outcome_thresholds(s: float, want: str) -> None:
    assert outcome_for(s) == want


def test_bucket_boundaries_and_summary() -> None:
    pairs = [
        pair(0.4, 0.1, 0.05),  # low (inclusive)
        pair(0.1, 0.2, 0.15),  # low
        pair(0.41, 0.3, 0.2, logkl=0.5),  # mid
        pair(0.69, 0.5, 0.3, logkl=0.1),  # mid
        pair(0.7, 0.4, 0.6, logkl=0.3),  # high (inclusive)
        pair(0.9, 0.6, 0.8),  # high
    ]
    s = summarise(pairs)
    assert list(s.buckets) == ["low_overlap", "mid_overlap", "high_overlap"]
    b = s.buckets
    assert [b[k].n_pairs for k in b] == [2, 2, 2]
    assert b["low_overlap"].polygram_range == "≤ 0.4"
    assert b["mid_overlap"].polygram_range == "(0.4, 0.7)"
    assert b["high_overlap"].polygram_range == "≥ 0.7"
    assert b["low_overlap"].jaccard_mean == pytest.approx(0.1)
    assert b["high_overlap"].jaccard_mean == pytest.approx(0.7)
    assert b["mid_overlap"].jaccard_ci_95 == bootstrap_mean_ci([0.2, 0.3])
    poly = [p.polygram_overlap for p in pairs]
    dec = [p.decoder_overlap for p in pairs]
    jac = [p.jaccard for p in pairs]
    assert s.spearman_polygram_jaccard == pytest.approx(sps.spearmanr(poly, jac).statistic)
    assert s.spearman_decoder_jaccard == pytest.approx(sps.spearmanr(dec, jac).statistic)
    assert s.pearson_polygram_jaccard == pytest.approx(sps.pearsonr(poly, jac).statistic)
    assert s.pearson_decoder_jaccard == pytest.approx(sps.pearsonr(dec, jac).statistic)
    # log-KL Spearman only over the three finite pairs: poly (0.41, 0.69, 0.7) vs (0.5, 0.1, 0.3)
    assert s.spearman_polygram_log_kl_abs == pytest.approx(
        sps.spearmanr([0.41, 0.69, 0.7], [0.5, 0.1, 0.3]).statistic
    )
    assert s.outcome == "high_spearman_loop_unblocked"


def test_one_finite_log_kl_is_nan() -> None:
    s = summarise([pair(0.1, 0.1, 0.1, logkl=1.0), pair(0.9, 0.2, 0.5)])
    assert math.isnan(s.spearman_polygram_log_kl_abs)
    assert s.buckets["mid_overlap"].n_pairs == 0
    assert math.isnan(s.buckets["mid_overlap"].jaccard_mean)


def test_empty_summary() -> None:
    s = summarise([])
    for v in (
        s.spearman_polygram_jaccard,
        s.spearman_decoder_jaccard,
        s.spearman_polygram_log_kl_abs,
        s.pearson_polygram_jaccard,
        s.pearson_decoder_jaccard,
    ):
        assert math.isnan(v)
    assert {k: b.n_pairs for k, b in s.buckets.items()} == {
        "low_overlap": 0,
        "mid_overlap": 0,
        "high_overlap": 0,
    }
    assert s.outcome == "undefined"


# --- tie-averaged Spearman (issue 12, spec 18 §1) ----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from polygram.behavioural.stats import spearman  # noqa: E402

_tied = st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.25, 0.5, 1.0]), min_size=2, max_size=40)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_spearman_is_scipys_with_ties(data: st.DataObject) -> None:
    y = data.draw(_tied)
    x = data.draw(st.lists(st.floats(-1, 1), min_size=len(y), max_size=len(y)))
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # scipy warns and gives NaN
        assert math.isnan(spearman(x, y))
    else:
        assert spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_averages_tied_ranks_by_hand() -> None:
    # y's average ranks are (1.5, 1.5, 3.5, 3.5): ρ = 4 / (√5 · 2)
    assert spearman([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(4 / (2 * math.sqrt(5)))
    assert spearman_ordinal([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(1.0)
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(spearman([1, 2, 3], [0, 0, 0]))  # constant side


def test_summary_verdict_uses_average_ranks() -> None:
    # 12 pairs that never co-fire (Jaccard 0, tied) listed in falling overlap,
    # then 4 that do: ordinal ranks order the tie by position — against the
    # overlaps — and pull ρ below 0.6; average ranks do not.
    poly = [0.9 - 0.05 * i for i in range(12)] + [0.6, 0.7, 0.8, 0.95]
    jac = [0.0] * 12 + [0.3, 0.4, 0.6, 0.8]
    ordinal = spearman_ordinal(poly, jac)
    s = summarise([pair(p, 0.5, j) for p, j in zip(poly, jac)])
    assert s.spearman_polygram_jaccard == pytest.approx(sps.spearmanr(poly, jac).statistic)
    assert ordinal < 0.3 <= s.spearman_polygram_jaccard
    assert outcome_for(ordinal) == "low_spearman_loop_blocked"
    assert s.outcome == outcome_for(s.spearman_polygram_jaccard) != outcome_for(ordinal)
