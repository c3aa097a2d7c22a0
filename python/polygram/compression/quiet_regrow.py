"""The quiet regrow rule (docs/regrow.md): a refilled slot fires only on as
many tokens as its residual cluster holds, and its decoder row is the
least-squares amount of its centroid that reconstructs the residuals.

The seed wrote a unit centroid ``u`` into encoder and decoder with a zero
bias, so a slot fired wherever ``x'·u > 0`` — on about half of all tokens,
the high-norm attention-sink positions included — and explained variance
collapsed.  Here, for slot ``j`` given k-means cluster ``k`` of the residuals
``R = X − SAE(X)`` (``n_k`` of the ``T`` fit tokens, centroid ``c_k``)::

    u_k = c_k / ‖c_k‖
    p_t = x'_t · u_k                       x' = forward.encoder_input(x): what the encoder sees
    τ_k = (p_(n_k) + p_(n_k+1)) / 2        p_(i): the i-th largest (p_(T) − 1 when n_k = T)

so the slot fires on the ``n_k`` tokens of largest projection — its cluster's
token share ``n_k / T`` of the fit tokens (fewer under TopK, where it must
also reach the top k).  The encoder per architecture:

* standard, topk: ``W_enc[:, j] = u_k``, ``b_enc[j] = −τ_k``  (``f = p − τ`` above τ);
* jumprelu: ``τ_k > 0`` → ``b_enc[j] = 0``, ``threshold[j] = τ_k`` (``f = p``
  above τ, the JumpReLU way); else ``b_enc[j] = −τ_k``, ``threshold[j] = 0``;
* gated: ``W_enc[:, j] = u_k``, ``b_gate[j] = b_mag[j] = −τ_k``, ``r_mag[j] = 0``.

Then, with ``f_tj`` the slots' activations (``forward.encode``) and
``q_tj = f_tj·ρ_t`` (``forward.output_scale``), the decoder rows are
``W_dec[j] = α_j·u_j`` with ``α`` the joint least-squares solution of
``min Σ_t ‖R_t − Σ_j q_tj α_j u_j‖²`` (``np.linalg.lstsq``: a slot that never
fires gets ``α = 0``).  ``α = 0`` is feasible, so on the fit tokens the
residual energy never grows where the slots do not change the other
features (standard, jumprelu, gated); under TopK a new slot can push
another feature out of the top k — measured by the evaluations, not fit.
A slot whose cluster is empty or whose ``α`` is 0 is left as it was (zeroed).

Refused (:class:`~polygram.errors.RegrowError`): fewer fit tokens than
slots, activations with NaN / ±inf, labels or centroids that do not match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polygram.errors import RegrowError
from polygram.sae import forward as saef
from polygram.sae.value import SAE

__all__ = ["QuietSlot", "quiet_refill"]

#: A centroid shorter than this has no direction: its slot is left zeroed.
_TINY_CENTROID = 1e-12


@dataclass(frozen=True)
class QuietSlot:
    """One slot of the quiet rule, as fit on ``n_tokens`` tokens.

    ``cluster_size``: tokens of its k-means cluster; ``threshold``: ``τ``
    (projection units of ``x'·u``); ``scale``: ``α`` (the decoder row is
    ``α·u``; 0 when left zeroed); ``n_fires``: fit tokens it fires on;
    ``n_fires_in_cluster``: of those, tokens of its own cluster.
    """

    feature_id: int
    cluster_size: int
    threshold: float
    scale: float
    n_fires: int
    n_fires_in_cluster: int
    n_tokens: int
    written: bool

    @property
    def cluster_share(self) -> float:
        return self.cluster_size / self.n_tokens

    @property
    def fire_share(self) -> float:
        return self.n_fires / self.n_tokens

    @property
    def precision(self) -> float:
        """Fraction of its fires that fall on its own cluster (1.0 if none)."""
        return self.n_fires_in_cluster / self.n_fires if self.n_fires else 1.0


def _check(
    sae: SAE, slots: Sequence[int], x: object, centroids: object, labels: object
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    ids = [int(s) for s in slots]
    bad = [s for s in ids if not 0 <= s < sae.d_sae]
    if bad or len(set(ids)) != len(ids):
        raise RegrowError(
            f"quiet regrow: slots {ids} must be distinct ids in 0..{sae.d_sae - 1} (bad: {bad})"
        )
    xs = np.asarray(x)
    if xs.ndim != 2 or xs.shape[1] != sae.d_in or xs.dtype.kind != "f":
        raise RegrowError(
            f"quiet regrow: activations have dtype {xs.dtype} and shape {list(xs.shape)}; "
            f"expected a float (tokens, {sae.d_in}) array"
        )
    if xs.shape[0] < len(ids):
        raise RegrowError(
            f"quiet regrow: {xs.shape[0]} residual tokens for {len(ids)} slots; each slot needs "
            "at least one token of its own: give more prompts or residuals"
        )
    if not np.isfinite(xs).all():
        raise RegrowError("quiet regrow: activations hold NaN or infinite values")
    c = np.asarray(centroids, dtype=np.float64)
    if c.shape != (len(ids), sae.d_in) or not np.isfinite(c).all():
        raise RegrowError(
            f"quiet regrow: centroids have shape {list(c.shape)}; expected ({len(ids)}, "
            f"{sae.d_in}) finite values, one per slot"
        )
    lab = np.asarray(labels)
    if (
        lab.shape != (xs.shape[0],)
        or lab.dtype.kind not in "iu"
        or (lab.size and not 0 <= int(lab.min()) <= int(lab.max()) < len(ids))
    ):
        raise RegrowError(
            f"quiet regrow: labels have dtype {lab.dtype} and shape {list(lab.shape)}; expected "
            f"({xs.shape[0]},) integers in 0..{len(ids) - 1}, one cluster per token"
        )
    return ids, xs, c, lab.astype(np.int64)


def _threshold(p: np.ndarray, n: int) -> float:
    """Midpoint between the ``n``-th and ``n+1``-th largest projections."""
    desc = np.sort(p)[::-1]
    if n >= desc.size:
        return float(desc[-1] - 1.0)
    return float((desc[n - 1] + desc[n]) / 2.0)


def _encoders(sae: SAE, ids: list[int], u: np.ndarray, tau: np.ndarray) -> dict[str, np.ndarray]:
    """The slots' encoder-side tensors by the module doc's rule (unit decoders)."""
    t = {name: np.array(a) for name, a in sae.tensors.items()}
    idx = np.asarray(ids, dtype=np.int64)
    t["W_enc"][:, idx] = u.T
    t["W_dec"][idx] = u
    arch = sae.architecture
    if arch == "gated":
        t["b_gate"][idx] = -tau
        t["b_mag"][idx] = -tau
        t["r_mag"][idx] = 0
    elif arch == "jumprelu":
        jump = tau > 0
        t["b_enc"][idx] = np.where(jump, 0.0, -tau)
        t["threshold"][idx] = np.where(jump, tau, 0.0)
    else:
        t["b_enc"][idx] = -tau
    return t


def _restore_slots(t: dict[str, np.ndarray], sae: SAE, idx: np.ndarray) -> None:
    """Slots ``idx`` back to what ``sae`` holds (left as they were: zeroed)."""
    for name, a in sae.tensors.items():
        if name == "W_enc":
            t[name][:, idx] = a[:, idx]
        elif name != "b_dec":
            t[name][idx] = a[idx]


def quiet_refill(
    sae: SAE,
    slots: Sequence[int],
    x: object,
    centroids: object,
    labels: object,
    residuals: np.ndarray | None = None,
) -> tuple[SAE, tuple[QuietSlot, ...]]:
    """``sae`` with slot ``slots[k]`` refilled from k-means cluster ``k``
    (``centroids[k]``, the tokens with ``labels == k``) by the module doc's
    rule, and one :class:`QuietSlot` per slot (in ``slots`` order).

    ``x`` are the ``(T, d_in)`` activations the residuals were taken from;
    ``residuals`` (``x − reconstruct(x)``) is computed when not given.
    """
    if not list(slots):
        return sae, ()
    ids, xs, c, lab = _check(sae, slots, x, centroids, labels)
    r = np.asarray(saef.residual(sae, xs) if residuals is None else residuals, dtype=np.float64)
    if r.shape != xs.shape or not np.isfinite(r).all():
        raise RegrowError(
            f"quiet regrow: residuals have shape {list(r.shape)}; expected {list(xs.shape)} "
            "finite values"
        )
    t_tokens = xs.shape[0]
    sizes = np.bincount(lab, minlength=len(ids))
    norms = np.linalg.norm(c, axis=1)
    usable = (sizes > 0) & (norms >= _TINY_CENTROID)
    u = np.zeros_like(c)
    u[usable] = c[usable] / norms[usable, None]
    proj = np.asarray(saef.encoder_input(sae, xs), dtype=np.float64) @ u.T  # (T, n_slots)
    tau = np.array(
        [_threshold(proj[:, k], int(sizes[k])) if usable[k] else 0.0 for k in range(len(ids))]
    )
    idx = np.asarray(ids, dtype=np.int64)
    probe = sae.replace_tensors(**_encoders(sae, ids, u.astype(np.float32), tau))
    f = np.asarray(saef.encode(probe, xs, features=ids), dtype=np.float64)
    f[:, ~usable] = 0.0
    q = f * np.asarray(saef.output_scale(sae, xs), dtype=np.float64)[:, None]
    # joint least squares over the scales α: A α = b with
    # A_kl = (u_k·u_l) Σ_t q_tk q_tl, b_k = Σ_t q_tk (R_t·u_k)
    a_mat = (q.T @ q) * (u @ u.T)
    b_vec = np.einsum("tk,tk->k", q, r @ u.T)
    alpha = np.linalg.lstsq(a_mat, b_vec, rcond=None)[0]
    alpha[~usable | ~np.isfinite(alpha)] = 0.0
    written = alpha != 0.0
    t = {name: np.array(a) for name, a in probe.tensors.items()}
    t["W_dec"][idx] = (alpha[:, None] * u).astype(t["W_dec"].dtype)
    _restore_slots(t, sae, idx[~written])
    fires = f > 0
    report = tuple(
        QuietSlot(
            feature_id=ids[k],
            cluster_size=int(sizes[k]),
            threshold=float(tau[k]) if written[k] else 0.0,
            scale=float(alpha[k]),
            n_fires=int(fires[:, k].sum()) if written[k] else 0,
            n_fires_in_cluster=int((fires[:, k] & (lab == k)).sum()) if written[k] else 0,
            n_tokens=t_tokens,
            written=bool(written[k]),
        )
        for k in range(len(ids))
    )
    return sae.replace_tensors(**t), report
