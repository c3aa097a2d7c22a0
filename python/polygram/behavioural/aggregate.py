"""Per-pair statistics from the cached per-token arrays (spec 10 §4.6).

Pure numpy: ``validate()`` hands over, per selected feature, its SAE
activation and its ablation-KL over all ``T`` tokens, and every pair is
aggregated from those with no further model forwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from polygram.behavioural.report import CandidatePair
from polygram.behavioural.stats import pearson
from polygram.sae.records import SAEFeatureRecord

__all__ = ["aggregate_pair", "aggregate_pairs", "check_candidates", "decoder_cos2", "decoder_rows"]


def decoder_rows(records: Mapping[int, SAEFeatureRecord], ids: Sequence[int]) -> np.ndarray:
    """The decoder rows (``projection``) of ``ids``, stacked as float64."""
    return np.stack([np.asarray(records[f].projection, dtype=np.float64) for f in ids])


def decoder_cos2(rows: np.ndarray) -> np.ndarray:
    """``C[a, b] = (w_a·w_b)² / (‖w_a‖² ‖w_b‖²)`` for decoder rows ``w`` (float64),
    ``0`` where either row is zero.  Same arithmetic as 0.0.1's per-pair loop."""
    w = np.asarray(rows, dtype=np.float64)
    sq = np.einsum("ij,ij->i", w, w)
    denom = np.outer(sq, sq)
    num = (w @ w.T) ** 2
    out = np.zeros_like(num)
    np.divide(num, denom, out=out, where=denom > 0)
    return out


def check_candidates(candidates: Sequence[object], feature_ids: Sequence[int]) -> None:
    """Refuse anything but ``CandidatePair``s (TypeError) and pairs naming an
    id outside ``feature_ids`` (ValueError naming the pair)."""
    known = set(feature_ids)
    for k, c in enumerate(candidates):
        if not isinstance(c, CandidatePair):
            raise TypeError(
                f"candidates[{k}]: got {type(c).__name__}; expected CandidatePair "
                "(from BehaviouralValidator.predict())"
            )
        for fid in (c.i, c.j):
            if fid not in known:
                raise ValueError(
                    f"candidates[{k}]: feature id {fid} (pair ({c.i}, {c.j})) is not in the "
                    f"validator's feature_ids {list(feature_ids)}"
                )


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.astype(np.float64).mean()) if values.size else math.nan


def aggregate_pair(
    candidate: CandidatePair,
    acts_i: np.ndarray,
    acts_j: np.ndarray,
    kl_i: np.ndarray,
    kl_j: np.ndarray,
    *,
    polygram_overlap_threshold: float,
    jaccard_threshold: float,
    min_both_fire: int,
) -> CandidatePair:
    """``candidate`` with its behavioural fields filled in.

    ``acts_*`` are SAE activations (a feature fires where > 0) and ``kl_*``
    the ablation KL of each feature, both over the same tokens.
    ``polygram_overlap``/``decoder_overlap`` are taken from the candidate.
    """
    fi, fj = acts_i > 0, acts_j > 0
    both, either = fi & fj, fi | fj
    n_i, n_j = int(fi.sum()), int(fj.sum())
    n_both, n_either = int(both.sum()), int(either.sum())
    jaccard = n_both / max(n_either, 1)

    r = pearson(acts_i, acts_j, floor_inclusive=True)

    ratio = math.nan
    if n_both >= min_both_fire:
        mi, mj = _mean_or_nan(kl_i[both]), _mean_or_nan(kl_j[both])
        if mi > 0 and mj > 0:
            ratio = mi / mj
    log_abs = abs(math.log(ratio)) if math.isfinite(ratio) and ratio > 0 else math.nan

    gate = (
        candidate.polygram_overlap >= polygram_overlap_threshold
        and jaccard >= jaccard_threshold
        and n_both >= min_both_fire
    )
    return replace(
        candidate,
        jaccard=float(jaccard),
        pearson_activation=r,
        kl_ablate_i=_mean_or_nan(kl_i[fi]),
        kl_ablate_j=_mean_or_nan(kl_j[fj]),
        kl_ratio_paired=ratio,
        kl_log_ratio_abs=log_abs,
        n_fires_i=n_i,
        n_fires_j=n_j,
        n_both_fire=n_both,
        n_either_fire=n_either,
        gate_pass=bool(gate),
    )


def aggregate_pairs(
    candidates: Sequence[CandidatePair],
    acts: Mapping[int, np.ndarray],
    kl: Mapping[int, np.ndarray],
    *,
    polygram_overlap_threshold: float,
    jaccard_threshold: float,
    min_both_fire: int,
) -> list[CandidatePair]:
    """Aggregate every candidate, keeping their order.  ``acts``/``kl`` map
    feature id → per-token array; a candidate naming an id outside them is
    refused."""
    check_candidates(candidates, list(acts))
    return [
        aggregate_pair(
            c,
            acts[c.i],
            acts[c.j],
            kl[c.i],
            kl[c.j],
            polygram_overlap_threshold=polygram_overlap_threshold,
            jaccard_threshold=jaccard_threshold,
            min_both_fire=min_both_fire,
        )
        for c in candidates
    ]
