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
