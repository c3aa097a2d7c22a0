"""Summary statistics of a pair list (spec 10 §4.7): Spearman with tied
values given their average rank (scipy's ``rankdata``; spec 18 §1), Pearson,
the three fixed polygram-overlap buckets with bootstrap CIs, and the
``outcome`` verdict.  0.0.1's ordinal-rank Spearman stays available as
:func:`spearman_ordinal` for comparisons; the summary no longer uses it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from polygram.behavioural.report import BucketStats, CandidatePair, ValidationSummary
from polygram.errors import missing

__all__ = [
    "BUCKETS",
    "bootstrap_mean_ci",
    "outcome_for",
    "pearson",
    "spearman",
    "spearman_ordinal",
    "summarise",
]

_STD_FLOOR = 1e-12
_N_RESAMPLES = 1000

#: bucket name → its label.  Hard-coded boundaries (≤ 0.4, (0.4, 0.7), ≥ 0.7),
#: independent of the gate's ``polygram_overlap_threshold`` (as in 0.0.1).
BUCKETS: dict[str, str] = {
    "low_overlap": "≤ 0.4",
    "mid_overlap": "(0.4, 0.7)",
    "high_overlap": "≥ 0.7",
}


def _bucket_masks(poly: np.ndarray) -> dict[str, np.ndarray]:
    # NaN overlaps fail every comparison and belong to no bucket
    return {
        "low_overlap": poly <= 0.4,
        "mid_overlap": (poly > 0.4) & (poly < 0.7),
        "high_overlap": poly >= 0.7,
    }


def pearson(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    floor_inclusive: bool = False,
) -> float:
    """Pearson r; NaN if fewer than 2 points or either std < 1e-12 (``<=``
    with ``floor_inclusive``, the per-pair activation rule of spec 10 §4.6)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.size < 2:
        return math.nan
    sa, sb = a.std(), b.std()
    flat = (
        (sa <= _STD_FLOOR or sb <= _STD_FLOOR)
        if floor_inclusive
        else (sa < _STD_FLOOR or sb < _STD_FLOOR)
    )
    if flat:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's ρ: Pearson of the average ranks (ties share the mean of the
    ranks they span, as ``scipy.stats.spearmanr``); NaN if fewer than 2 points
    or either side is constant.  Jaccard values tie often (every pair that never
    co-fires is 0), and ordinal ranks would order such ties arbitrarily."""
    try:
        from scipy.stats import rankdata
    except ImportError:
        raise missing("scipy", "behavioural", "Spearman correlation") from None
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.size < 2:
        return math.nan
    return pearson(rankdata(a), rankdata(b))


def spearman_ordinal(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson of ordinal ranks (``argsort(argsort(v))``, numpy's default
    sort).  Ties are not averaged, so with ties this differs from scipy's
    Spearman; without ties the two agree."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.size < 2:
        return math.nan
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    return pearson(ra, rb)


def bootstrap_mean_ci(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean: ``default_rng(0)``, 1000
    resamples of size n drawn with ``Generator.choice``, linear quantiles.
    ``(nan, nan)`` for no values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(0)
    # one (1000, n) draw: the same index stream and row means, bit for bit, as
    # 0.0.1's loop of 1000 draws of size n (int64 bounded draws are unbuffered)
    means = rng.choice(v, size=(_N_RESAMPLES, v.size), replace=True).mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return (float(lo), float(hi))


def outcome_for(spearman_polygram_jaccard: float) -> str:
    """The verdict from Spearman(polygram, Jaccard): fixed 0.6 / 0.3 cut-offs."""
    s = spearman_polygram_jaccard
    if math.isnan(s):
        return "undefined"
    if s >= 0.6:
        return "high_spearman_loop_unblocked"
    if s >= 0.3:
        return "medium_spearman_loop_needs_calibration"
    return "low_spearman_loop_blocked"


def summarise(pairs: Sequence[CandidatePair]) -> ValidationSummary:
    """The :class:`ValidationSummary` of ``pairs`` (empty → all NaN, empty
    buckets, ``"undefined"``)."""
    poly = np.array([p.polygram_overlap for p in pairs], dtype=np.float64)
    dec = np.array([p.decoder_overlap for p in pairs], dtype=np.float64)
    jac = np.array([p.jaccard for p in pairs], dtype=np.float64)
    logkl = np.array([p.kl_log_ratio_abs for p in pairs], dtype=np.float64)
    finite = np.isfinite(logkl)

    buckets: dict[str, BucketStats] = {}
    for name, mask in _bucket_masks(poly).items():
        vals = jac[mask]
        buckets[name] = BucketStats(
            polygram_range=BUCKETS[name],
            n_pairs=int(vals.size),
            jaccard_mean=float(vals.mean()) if vals.size else math.nan,
            jaccard_ci_95=bootstrap_mean_ci(vals),
        )
    s_pj = spearman(poly, jac)
    return ValidationSummary(
        spearman_polygram_jaccard=s_pj,
        spearman_decoder_jaccard=spearman(dec, jac),
        spearman_polygram_log_kl_abs=spearman(poly[finite], logkl[finite]),
        pearson_polygram_jaccard=pearson(poly, jac),
        pearson_decoder_jaccard=pearson(dec, jac),
        buckets=buckets,
        outcome=outcome_for(s_pj),
    )
