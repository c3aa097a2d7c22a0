"""Per-pair aggregation (spec 10 §4.6) on hand-made activation/KL vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polygram.behavioural.aggregate import aggregate_pair, aggregate_pairs
from polygram.behavioural.report import CandidatePair

NAN = math.nan


def cand(i: int = 3, j: int = 1, poly: float = 0.8, dec: float = 0.2) -> CandidatePair:
    return CandidatePair(
        i=i, j=j, polygram_overlap=poly, decoder_overlap=dec, jaccard=NAN,
        pearson_activation=NAN, kl_ablate_i=NAN, kl_ablate_j=NAN, kl_ratio_paired=NAN,
        kl_log_ratio_abs=NAN, n_fires_i=0, n_fires_j=0, n_both_fire=0, n_either_fire=0,
        gate_pass=False,
    )  # fmt: skip


def agg(c: CandidatePair, ai: list[float], aj: list[float], ki: list[float], kj: list[float],
        poly_t: float = 0.7, jac_t: float = 0.3, mbf: int = 2) -> CandidatePair:  # fmt: skip
    return aggregate_pair(
        c,
        np.array(ai, dtype=np.float32),
        np.array(aj, dtype=np.float32),
        np.array(ki, dtype=np.float32),
        np.array(kj, dtype=np.float32),
        polygram_overlap_threshold=poly_t,
        jaccard_threshold=jac_t,
        min_both_fire=mbf,
    )


AI = [1.0, 2.0, 0.0, 3.0, 0.0, 0.5]
AJ = [0.5, 1.0, 1.0, 0.0, 0.0, 2.0]
KI = [0.2, 0.4, 0.0, 0.6, 0.0, 0.1]
KJ = [0.1, 0.1, 0.3, 0.0, 0.0, 0.4]


def test_counts_and_means_by_hand() -> None:
    p = agg(cand(), AI, AJ, KI, KJ)
    # i fires at {0,1,3,5}, j at {0,1,2,5}: both {0,1,5}, either {0,1,2,3,5}
    assert (p.n_fires_i, p.n_fires_j, p.n_both_fire, p.n_either_fire) == (4, 4, 3, 5)
    assert p.jaccard == pytest.approx(3 / 5)
    assert p.kl_ablate_i == pytest.approx((0.2 + 0.4 + 0.6 + 0.1) / 4)  # self-fire mean
    assert p.kl_ablate_j == pytest.approx((0.1 + 0.1 + 0.3 + 0.4) / 4)
    ratio = ((0.2 + 0.4 + 0.1) / 3) / ((0.1 + 0.1 + 0.4) / 3)  # both-fire means
    assert p.kl_ratio_paired == pytest.approx(ratio, rel=1e-6)
    assert p.kl_log_ratio_abs == pytest.approx(abs(math.log(ratio)), rel=1e-5)
    assert p.pearson_activation == pytest.approx(np.corrcoef(AI, AJ)[0, 1], rel=1e-6)
    assert (p.i, p.j, p.polygram_overlap, p.decoder_overlap) == (3, 1, 0.8, 0.2)
    assert p.gate_pass is True


@pytest.mark.parametrize(
    ("poly", "poly_t", "jac_t", "mbf", "want"),
    [
        (0.7, 0.7, 0.6, 3, True),  # every comparison inclusive (jaccard = 0.6 exactly)
        (0.6999, 0.7, 0.3, 2, False),  # polygram below
        (0.9, 0.7, 0.61, 2, False),  # jaccard below
        (0.9, 0.7, 0.3, 4, False),  # n_both = 3 < 4
        (0.0, 0.0, 0.0, 1, True),
    ],
)
def test_gate(poly: float, poly_t: float, jac_t: float, mbf: int, want: bool) -> None:
    p = agg(cand(poly=poly), AI, AJ, KI, KJ, poly_t=poly_t, jac_t=jac_t, mbf=mbf)
    assert p.gate_pass is want


def test_ratio_nan_below_min_both_fire() -> None:
    p = agg(cand(), AI, AJ, KI, KJ, mbf=4)
    assert math.isnan(p.kl_ratio_paired) and math.isnan(p.kl_log_ratio_abs)
    assert not math.isnan(p.kl_ablate_i)  # self-fire means do not need both-fire


def test_ratio_nan_when_a_mean_is_zero() -> None:
    p = agg(cand(), AI, AJ, KI, [0.0] * 6)
    assert math.isnan(p.kl_ratio_paired) and math.isnan(p.kl_log_ratio_abs)
    assert p.kl_ablate_j == 0.0


def test_equal_means_give_zero_log_ratio() -> None:
    p = agg(cand(), AI, AJ, KI, KI)
    assert p.kl_ratio_paired == pytest.approx(1.0) and p.kl_log_ratio_abs == pytest.approx(0.0)


def test_silent_feature() -> None:
    z = [0.0] * 6
    p = agg(cand(), AI, z, KI, z)
    assert (p.n_fires_j, p.n_both_fire, p.n_either_fire) == (0, 0, 4)
    assert p.jaccard == 0.0
    assert math.isnan(p.kl_ablate_j) and math.isnan(p.pearson_activation)
    assert p.gate_pass is False
    both_silent = agg(cand(), z, z, z, z)
    assert both_silent.jaccard == 0.0 and both_silent.n_either_fire == 0  # n_either floored at 1


def test_pearson_degenerate() -> None:
    assert math.isnan(agg(cand(), [1.0], [1.0], [0.0], [0.0], mbf=1).pearson_activation)
    const = agg(cand(), [2.0] * 6, AJ, KI, KJ)
    assert math.isnan(const.pearson_activation)


def test_aggregate_pairs_keeps_order_and_refuses_unknown_ids() -> None:
    acts = {3: np.array(AI), 1: np.array(AJ), 8: np.array(AI)}
    kl = {3: np.array(KI), 1: np.array(KJ), 8: np.array(KI)}
    kw = dict(polygram_overlap_threshold=0.7, jaccard_threshold=0.3, min_both_fire=2)
    out = aggregate_pairs([cand(8, 3), cand(3, 1), cand(1, 8)], acts, kl, **kw)  # type: ignore[arg-type]
    assert [(p.i, p.j) for p in out] == [(8, 3), (3, 1), (1, 8)]
    assert out[0].jaccard == 1.0  # identical activations
    with pytest.raises(ValueError, match="feature id 9"):
        aggregate_pairs([cand(3, 9)], acts, kl, **kw)  # type: ignore[arg-type]
