"""``fold``: keep what a cluster's co-firing duplicates carried (docs/compression.md).

Zeroing all but one member of a cluster of near-copies throws away their
summed activation: the representative alone reconstructs only its own share.
``fold`` silences the same members but rewrites the representative's decoder
row to the least-squares fit, on given activations ``X``, of the cluster's
summed contribution.

The rule, for a cluster with representative ``r`` and folded members ``M``
(``C = {r} ∪ M``), on tokens ``t`` of ``X``::

    S_t = Σ_{j∈C} a_j(t)·ρ_t·w_j          the cluster's contribution in the source SAE
    q_t = a'_r(t)·ρ_t                     the representative's activation after silencing
    d*  = argmin_d Σ_t ‖S_t − q_t·d‖²  =  Σ_t q_t S_t / Σ_t q_t²
        = Σ_{j∈C} β_j·w_j,   β_j = Σ_t ρ_t² a'_r(t) a_j(t) / Σ_t ρ_t² a'_r(t)²

``a_j`` are source activations (``polygram.sae.forward.encode``), ``a'_r`` the
representative's activation in the SAE with ``M`` silenced (equal to ``a_r``
except under TopK, where silencing can let ``r`` into the top k), ``ρ_t`` the
output scale of the normalisation (``forward.output_scale``; 1 for ``none``)
and ``w_j = W_dec[j]``.  With ``ρ = 1`` and ``a' = a`` this is
``d_r + Σ_m (E[a_m a_r] / E[a_r²])·d_m``: fitting a free vector is the same as
fitting one scalar per member, because the target is a combination of the
members' rows.

* A member that never fires with the representative gets ``β_m = 0``: its
  contribution is lost exactly as under ``zero`` (the fit data says so).
* A cluster none of whose members fires on ``X`` keeps the representative's
  row (``β_r = 1``, the others 0; fallback ``"cluster_silent"``): every row
  fits equally well (the target is 0), so the row is left as it was.
* A representative that never fires while a member does is refused
  (:class:`~polygram.errors.FoldError`): its row cannot carry what the
  members did.
* ``X`` holding NaN or ±inf is refused (``FoldError``).

Only decoder rows change; rescaled TopK is refused by the caller (its row
norm cancels out of the forward, as for ``merge``).  Sums are float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from polygram.errors import FoldError
from polygram.sae import forward as saef
from polygram.sae.value import SAE

__all__ = ["FOLD_FALLBACKS", "FoldCluster", "FoldFit", "fit_fold"]

#: ``FoldFit.fallback`` values (None: the least-squares row was written).
FOLD_FALLBACKS: tuple[str, ...] = ("cluster_silent",)


class FoldCluster(Protocol):
    """What ``fit_fold`` reads of a cluster (``ClusterPlan`` has it)."""

    @property
    def cluster_id(self) -> int: ...

    @property
    def representative(self) -> int: ...

    @property
    def zeroed(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class FoldFit:
    """The fit of one cluster on ``n_tokens`` tokens.

    ``coefficients``: ``β_j`` per feature of ``{r} ∪ folded`` (the new row is
    ``Σ β_j·W_dec[j]``); energies are ``Σ_t ‖·‖²`` of the cluster's summed
    contribution (``target_energy``) and of what is left of it after
    ``fold`` / after ``zero`` (the representative's own row, its post-silence
    activation) — ``residual_energy_fold ≤ residual_energy_zero`` always.
    """

    cluster_id: int
    representative: int
    folded: tuple[int, ...]
    n_tokens: int
    n_representative_fires: int
    coefficients: tuple[float, ...]
    target_energy: float
    residual_energy_fold: float
    residual_energy_zero: float
    fallback: str | None = None

    @property
    def explained_fold(self) -> float:
        """``1 − residual/target`` of ``fold`` (1.0 for a silent cluster)."""
        return _explained(self.residual_energy_fold, self.target_energy)

    @property
    def explained_zero(self) -> float:
        """The same for ``zero`` (what the representative's own row keeps)."""
        return _explained(self.residual_energy_zero, self.target_energy)


def _explained(residual: float, target: float) -> float:
    return 1.0 if target <= 0.0 else 1.0 - residual / target


def _check_activations(x: object, d_in: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] != d_in or a.dtype.kind != "f":
        raise FoldError(
            f"fold: activations have dtype {a.dtype} and shape {list(a.shape)}; expected a "
            f"float (tokens, {d_in}) array"
        )
    if a.shape[0] == 0:
        raise FoldError("fold: no activations (0 tokens); fold fits on the loop's activations")
    finite = np.isfinite(a).all(axis=1)
    if not finite.all():
        t = int(np.flatnonzero(~finite)[0])
        raise FoldError(
            f"fold: activations hold NaN or infinite values ({int((~finite).sum())} token(s), "
            f"first at token {t}); every value must be finite"
        )
    return a


def _check_clusters(clusters: Sequence[FoldCluster], d_sae: int) -> list[list[int]]:
    seen: set[int] = set()
    groups = []
    for c in clusters:
        group = [int(c.representative), *(int(m) for m in c.zeroed)]
        bad = [f for f in group if not 0 <= f < d_sae]
        if bad:
            raise FoldError(
                f"fold: cluster {c.cluster_id}: feature id(s) {bad} out of range 0..{d_sae - 1}"
            )
        if len(set(group)) != len(group) or seen & set(group):
            raise FoldError(
                f"fold: cluster {c.cluster_id} ({group}): clusters must be disjoint and the "
                "representative must not be folded"
            )
        seen |= set(group)
        groups.append(group)
    return groups


def fit_fold(
    source: SAE, silenced: SAE, clusters: Sequence[FoldCluster], x: object
) -> tuple[np.ndarray, tuple[FoldFit, ...]]:
    """The decoder of ``silenced`` with each representative's row replaced by
    its fold (module doc), and the per-cluster fits.

    ``source`` is the SAE before compression, ``silenced`` the same SAE with
    every cluster's ``zeroed`` members silenced (what ``zero`` writes);
    ``x`` the ``(tokens, d_in)`` activations the loop fits on.  The result
    has ``silenced``'s decoder dtype; clusters are fit independently (they
    are disjoint, and a representative's activation does not depend on
    another representative's decoder row).
    """
    if (silenced.d_sae, silenced.d_in) != (source.d_sae, source.d_in):
        raise FoldError(
            f"fold: silenced SAE is {silenced.d_sae}×{silenced.d_in} but the source is "
            f"{source.d_sae}×{source.d_in}"
        )
    xs = _check_activations(x, source.d_in)
    groups = _check_clusters(clusters, source.d_sae)
    w_dec = np.array(silenced.tensors["W_dec"])
    if not groups:
        return w_dec, ()
    union = sorted({f for g in groups for f in g})
    col = {f: k for k, f in enumerate(union)}
    reps = [g[0] for g in groups]
    # per cluster: M = Σ ρ² a aᵀ over C, m = Σ ρ² a'_r a, n = Σ ρ² a'_r², fires of a'_r
    moments = [np.zeros((len(g), len(g))) for g in groups]
    cross = [np.zeros(len(g)) for g in groups]
    norm = np.zeros(len(groups))
    fires = np.zeros(len(groups), dtype=np.int64)
    member_fires = [np.zeros(len(g), dtype=np.int64) for g in groups]
    step = saef.chunk_tokens(source.d_sae)
    for lo in range(0, xs.shape[0], step):
        xc = xs[lo : lo + step]
        rho = np.asarray(saef.output_scale(source, xc), dtype=np.float64)
        a = np.asarray(saef.encode(source, xc, features=union), dtype=np.float64)
        if source.architecture == "topk":  # silencing can let the representative into the top k
            a_rep = np.asarray(saef.encode(silenced, xc, features=reps), dtype=np.float64)
        else:  # a' = a exactly: a feature's activation depends only on its own encoder
            a_rep = a[:, [col[f] for f in reps]]
        for k, g in enumerate(groups):
            ag = a[:, [col[f] for f in g]]
            qr = a_rep[:, k] * rho  # q_t = a'_r ρ
            wg = ag * rho[:, None]  # ρ a_j
            moments[k] += wg.T @ wg
            cross[k] += qr @ wg
            norm[k] += qr @ qr
            fires[k] += int((a_rep[:, k] > 0).sum())
            member_fires[k] += (ag > 0).sum(axis=0)
    fits = []
    src_dec = np.asarray(source.tensors["W_dec"], dtype=np.float64)
    for k, (c, g) in enumerate(zip(clusters, groups, strict=True)):
        rows = src_dec[g]
        gram = rows @ rows.T
        target = max(0.0, float(np.sum(moments[k] * gram)))
        zero_left = max(0.0, target - 2.0 * float(cross[k] @ gram[:, 0]) + norm[k] * gram[0, 0])
        fallback: str | None = None
        if norm[k] <= 0.0:
            if target > 0.0:
                firing = [(f, int(n)) for f, n in zip(g[1:], member_fires[k][1:], strict=True) if n]
                raise FoldError(
                    f"fold: cluster {c.cluster_id}: representative {g[0]} never fires on the "
                    f"{xs.shape[0]} fit tokens while folded member(s) do (feature, fires): "
                    f"{firing}; its decoder row cannot carry their contribution — choose a "
                    "representative that fires (rep_selection='n_fires') or fit on more tokens"
                )
            beta = np.zeros(len(g))
            beta[0] = 1.0
            fallback = "cluster_silent"
            fold_left = target
        else:
            beta = cross[k] / norm[k]
            fold_left = max(0.0, target - float(cross[k] @ gram @ cross[k]) / norm[k])
            fold_left = min(fold_left, zero_left)  # float round-off only: LS ≤ any other row
        w_dec[g[0]] = (beta @ rows).astype(w_dec.dtype)
        fits.append(
            FoldFit(
                cluster_id=int(c.cluster_id),
                representative=g[0],
                folded=tuple(g[1:]),
                n_tokens=int(xs.shape[0]),
                n_representative_fires=int(fires[k]),
                coefficients=tuple(float(b) for b in beta),
                target_energy=target,
                residual_energy_fold=fold_left,
                residual_energy_zero=zero_left,
                fallback=fallback,
            )
        )
    return w_dec, tuple(fits)
