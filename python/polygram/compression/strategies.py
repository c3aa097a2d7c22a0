"""How a cluster's non-representatives are silenced (spec 11 §5).

Both strategies take the four canonical float32 arrays (``W_enc``
``(d_model, n)``, ``b_enc`` ``(n,)``, ``W_dec`` ``(n, d_model)``, ``b_dec``),
return rewritten copies (the input is never mutated) and leave ``b_dec``
alone: it is global, not per-feature.

* ``zero``: ``W_enc[:, f] = 0``, ``b_enc[f] = 0``, ``W_dec[f] = 0`` for every
  zeroed ``f``.  Zeroing only the decoder would leave a feature that still
  fires; zeroing only the encoder would leave an injectable direction; both
  keeps the index (downstream ids do not shift) but makes it inert.
* ``merge``: as ``zero``, plus the representative's decoder row is rescaled to
  the cluster's merged norm (direction kept).  Its encoder is left untouched:
  merging encoders would widen the representative's firing footprint.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np

from polygram.compression.choices import MERGE_MODES, STRATEGIES
from polygram.compression.report import CompressionPlan
from polygram.sae.checkpoint import CANONICAL_KEYS

__all__ = [
    "MERGE_MODES",
    "STRATEGIES",
    "MergeMode",
    "check_feature_ids",
    "merge_strategy",
    "zero_strategy",
]

MergeMode = Literal["freq_weighted", "simple_mean"]

_TINY = 1e-8


def check_feature_ids(
    what: str, fids: Iterable[int], n: int, source: str = "the checkpoint"
) -> None:
    """``IndexError`` naming ``what`` unless every id is in ``[0, n)`` (a
    negative id would otherwise silently index from the end)."""
    bad = [f for f in fids if not 0 <= f < n]
    if bad:
        raise IndexError(
            f"{what}: feature id(s) {bad} out of range; {source} holds features 0..{n - 1}"
        )


def _copy_checked(
    arrays: Mapping[str, np.ndarray], plan: CompressionPlan, copy: bool
) -> dict[str, np.ndarray]:
    lacking = [k for k in CANONICAL_KEYS if k not in arrays]
    if lacking:
        raise KeyError(
            f"SAE tensors {lacking} are missing; a strategy needs {list(CANONICAL_KEYS)}"
        )
    for c in plan.clusters:
        check_feature_ids(f"cluster {c.cluster_id}", c.members, arrays["W_dec"].shape[0])
    if not copy and not all(arrays[k].flags.writeable for k in CANONICAL_KEYS):
        raise ValueError("copy=False needs writeable arrays")
    return {k: np.array(arrays[k], copy=True) if copy else arrays[k] for k in CANONICAL_KEYS}


def _silence(out: dict[str, np.ndarray], fids: Iterable[int]) -> None:
    idx = np.fromiter(fids, dtype=np.int64)
    if idx.size:
        out["W_enc"][:, idx] = 0
        out["b_enc"][idx] = 0
        out["W_dec"][idx, :] = 0


def _all_zeroed(plan: CompressionPlan) -> list[int]:
    return [f for c in plan.clusters for f in c.zeroed]


def zero_strategy(
    arrays: Mapping[str, np.ndarray], plan: CompressionPlan, *, copy: bool = True
) -> dict[str, np.ndarray]:
    """Copies of ``arrays`` with every zeroed feature's encoder column,
    encoder bias and decoder row set to 0 (``copy=False``: ``arrays``
    themselves are edited, for a caller that owns freshly loaded tensors)."""
    out = _copy_checked(arrays, plan, copy)
    _silence(out, _all_zeroed(plan))
    return out


def row_norms(w_dec: np.ndarray, fids: Iterable[int]) -> np.ndarray:
    """Float64 L2 norms of the decoder rows ``fids``."""
    idx = np.fromiter(fids, dtype=np.int64)
    return np.linalg.norm(w_dec[idx].astype(np.float64), axis=1)


def merged_norm(
    norms: np.ndarray,
    members: Iterable[int],
    n_fires_by_fid: Mapping[int, int] | None,
    mode: MergeMode,
) -> float:
    """The length a cluster's representative decoder row is rescaled to."""
    if mode == "simple_mean":
        return float(np.mean(norms))
    if n_fires_by_fid is None:
        fires = np.ones(len(norms))
    else:
        fires = np.array([float(n_fires_by_fid.get(m, 0)) for m in members])
    total = float(fires.sum())
    if total <= 0:
        return float(np.mean(norms))
    return float(np.dot(norms, fires) / total)


def merge_strategy(
    arrays: Mapping[str, np.ndarray],
    plan: CompressionPlan,
    n_fires_by_fid: Mapping[int, int] | None = None,
    mode: MergeMode = "freq_weighted",
    *,
    copy: bool = True,
) -> tuple[dict[str, np.ndarray], dict[int, float]]:
    """``zero`` plus the representative's decoder row rescaled to the merged
    norm; returns the arrays and ``{cluster_id: merged_norm}``.

    ``freq_weighted``: Σ‖W_dec[m]‖·fires_m / Σ fires_m (plain mean when no
    member fired; every fires_m = 1 when ``n_fires_by_fid`` is None);
    ``simple_mean``: mean of the members' norms.
    """
    if mode not in MERGE_MODES:
        raise ValueError(f"unsupported merge_mode {mode!r}; allowed: {', '.join(MERGE_MODES)}")
    out = _copy_checked(arrays, plan, copy)
    src = arrays["W_dec"]  # with copy=False also out["W_dec"]: clusters are disjoint and each
    # cluster's norms are read before its own representative row is rescaled
    merged: dict[int, float] = {}
    for c in plan.clusters:
        norms = row_norms(src, c.members)
        m = merged_norm(norms, c.members, n_fires_by_fid, mode)
        if m <= _TINY:
            warnings.warn(
                f"merge: cluster {c.cluster_id} (members {list(c.members)}) has a degenerate "
                f"merged decoder norm {m!r} (<= 1e-8): the weighted members' decoder rows are "
                "all (near) zero",
                UserWarning,
                stacklevel=3,
            )
        rep = src[c.representative].astype(np.float64)
        rep_norm = float(np.linalg.norm(rep))
        if rep_norm > _TINY:
            out["W_dec"][c.representative] = (rep * (m / rep_norm)).astype(np.float32)
        merged[c.cluster_id] = m
    _silence(out, _all_zeroed(plan))
    return out, merged
