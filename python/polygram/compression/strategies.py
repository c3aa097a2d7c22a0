"""How a cluster's non-representatives are silenced (spec 11 §5, spec 16 §1.6).

Both strategies take an :class:`~polygram.sae.SAE` and return a new one
(SAEs are immutable); ``b_dec`` is left alone: it is global, not per-feature.

* ``zero`` (per architecture): ``W_enc[:, f] = 0``, ``W_dec[f] = 0`` and every
  per-feature encoder bias (``b_enc[f]``; gated ``b_gate[f]``, ``b_mag[f]``)
  ``= 0``; ``threshold`` and ``r_mag`` are kept.  Then ``z_f = 0`` (gated
  ``g_f = 0``) and the feature never fires, whatever its threshold.  Zeroing
  only the decoder would leave a feature that still fires; zeroing only the
  encoder an injectable direction; both keep the index but make it inert.
  TopK with ``rescale_acts_by_decoder_norm`` keeps ``W_dec[f]``: the forward
  divides by its norm, so a zero row would make every reconstruction NaN.
* ``merge``: as ``zero``, plus the representative's decoder row is rescaled to
  the cluster's merged norm (direction kept).  Its encoder is left untouched:
  merging encoders would widen the representative's firing footprint.
  Refused for rescaled TopK, where the row norm cancels out of the forward.

A decoder-only SAE (``load_sae(partial=True)``) has only the tensors it
holds edited.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np

from polygram.compression.choices import MERGE_MODES, STRATEGIES
from polygram.compression.report import CompressionPlan
from polygram.errors import CompressionError
from polygram.sae.value import SAE

__all__ = [
    "MERGE_MODES",
    "STRATEGIES",
    "MergeMode",
    "check_feature_ids",
    "decoder_row_kept",
    "merge_strategy",
    "silence",
    "zero_strategy",
]

MergeMode = Literal["freq_weighted", "simple_mean"]

_TINY = 1e-8
#: Per-feature encoder-side tensors zeroed with the encoder column.
_ENCODER_BIASES = ("b_enc", "b_gate", "b_mag")


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


def decoder_row_kept(sae: SAE) -> bool:
    """Whether zeroing keeps the decoder row (TopK rescaled by its norm)."""
    return sae.architecture == "topk" and sae.rescale_acts_by_decoder_norm


def _check_plan(sae: SAE, plan: CompressionPlan) -> None:
    for c in plan.clusters:
        check_feature_ids(f"cluster {c.cluster_id}", c.members, sae.d_sae, repr(sae.source.display))


def silence(sae: SAE, fids: Iterable[int], w_dec: np.ndarray | None = None) -> SAE:
    """``sae`` with features ``fids`` zeroed by the rule of the module doc
    (``w_dec``: a decoder to start from instead of the SAE's own)."""
    idx = np.fromiter(fids, dtype=np.int64)
    check_feature_ids("silence", idx.tolist(), sae.d_sae, repr(sae.source.display))
    if not idx.size and w_dec is None:
        return sae
    edits: dict[str, np.ndarray] = {}
    if "W_enc" in sae.tensors:
        edits["W_enc"] = np.array(sae.tensors["W_enc"])
        edits["W_enc"][:, idx] = 0
    for name in _ENCODER_BIASES:
        if name in sae.tensors:
            edits[name] = np.array(sae.tensors[name])
            edits[name][idx] = 0
    dec = np.array(sae.tensors["W_dec"]) if w_dec is None else w_dec
    if not decoder_row_kept(sae):
        dec[idx, :] = 0
    edits["W_dec"] = dec
    return sae.replace_tensors(**edits)


def _all_zeroed(plan: CompressionPlan) -> list[int]:
    return [f for c in plan.clusters for f in c.zeroed]


def zero_strategy(sae: SAE, plan: CompressionPlan) -> SAE:
    """A new SAE with every zeroed member of ``plan`` silenced."""
    _check_plan(sae, plan)
    return silence(sae, _all_zeroed(plan))


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
    sae: SAE,
    plan: CompressionPlan,
    n_fires_by_fid: Mapping[int, int] | None = None,
    mode: MergeMode = "freq_weighted",
) -> tuple[SAE, dict[int, float]]:
    """``zero`` plus the representative's decoder row rescaled to the merged
    norm; returns the new SAE and ``{cluster_id: merged_norm}``.

    ``freq_weighted``: Σ‖W_dec[m]‖·fires_m / Σ fires_m (plain mean when no
    member fired; every fires_m = 1 when ``n_fires_by_fid`` is None);
    ``simple_mean``: mean of the members' norms.
    """
    if mode not in MERGE_MODES:
        raise ValueError(f"unsupported merge_mode {mode!r}; allowed: {', '.join(MERGE_MODES)}")
    if decoder_row_kept(sae):
        raise CompressionError(
            f"merge: {sae.source.display!r} is a TopK SAE with rescale_acts_by_decoder_norm, so "
            "the decoder row norm cancels out of its forward and merge would do nothing; use "
            "strategy='zero'"
        )
    _check_plan(sae, plan)
    src = sae.tensors["W_dec"]
    out = np.array(src)
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
            out[c.representative] = (rep * (m / rep_norm)).astype(out.dtype)
        merged[c.cluster_id] = m
    return silence(sae, _all_zeroed(plan), w_dec=out), merged
