"""SAE statistics over the evaluated tokens (spec 16 §5.4), streamed batch by
batch: only float64 sums and int64 firing counts are kept, so the result is
the per-token mean over the whole prompt set (SAELens concatenates, then
averages), never a mean of batch means.

``Σ‖x − x̄‖²`` comes from ``Σ‖x‖² − ‖Σx‖²/N``; explained variance is the
conventional ``1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²`` (see docs/evals.md for why not
SAELens 6.18's formula)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram.errors import EvalError
from polygram.evals.scores import ratio

if TYPE_CHECKING:
    import torch

__all__ = ["NORM_FLOOR", "SAEMetrics", "SAEStatistics"]

#: A token whose ``‖x‖`` or ``‖x̂‖`` is below this has cosine 0.
NORM_FLOOR = 1e-12


@dataclass(frozen=True)
class SAEMetrics:
    """The finished statistics of :class:`SAEStatistics`."""

    n_tokens: int
    mse: float
    mse_per_dim: float
    fvu: float
    explained_variance: float
    cossim: float
    l0: float
    l1: float
    feature_frequency: np.ndarray = field(compare=False, repr=False)
    n_dead: int
    n_dense: int
    dense_threshold: float
    frac_alive: float

    @property
    def dead_ids(self) -> np.ndarray:
        """Features that never fired, ascending."""
        return np.flatnonzero(self.feature_frequency == 0)


def _as_tensor(a: Any) -> torch.Tensor:
    import torch

    return a if isinstance(a, torch.Tensor) else torch.tensor(np.asarray(a))


class SAEStatistics:
    """Running sums for one SAE: feed :meth:`update` the evaluated tokens of
    each batch (``x`` and ``x̂`` ``[n, d_in]``, the SAE's activations
    ``[n, d_sae]``; torch tensors on any device, or numpy), then
    :meth:`finish`.  A feature fires where its activation is > 0."""

    def __init__(self, d_in: int, d_sae: int) -> None:
        self.d_in, self.d_sae = int(d_in), int(d_sae)
        self.n_tokens = 0
        self.sum_x = np.zeros(self.d_in, dtype=np.float64)
        self.sum_sq_x = 0.0
        self.sum_sq_err = 0.0
        self.sum_cos = 0.0
        self.sum_l1 = 0.0
        self.fire_counts = np.zeros(self.d_sae, dtype=np.int64)

    def update(self, x: Any, x_hat: Any, acts: Any) -> None:
        import torch

        xt, xh, f = _as_tensor(x), _as_tensor(x_hat), _as_tensor(acts)
        n = xt.shape[0]
        if xt.shape != (n, self.d_in) or xh.shape != xt.shape or f.shape != (n, self.d_sae):
            raise EvalError(
                f"SAEStatistics.update: x {tuple(xt.shape)}, x_hat {tuple(xh.shape)}, acts "
                f"{tuple(f.shape)}; expected ({n}, {self.d_in}) twice and ({n}, {self.d_sae})"
            )
        if n == 0:
            return
        # firing counts and L1 reduced where the activations live (d_sae can be wide)
        self.fire_counts += (f > 0).sum(0).to("cpu", torch.int64).numpy()
        self.sum_l1 += float(f.sum(1).to("cpu", torch.float64).sum())
        x64 = xt.detach().to("cpu", torch.float64)
        xh64 = xh.detach().to("cpu", torch.float64)
        self.n_tokens += n
        self.sum_x += x64.sum(0).numpy()
        self.sum_sq_x += float(x64.square().sum())
        self.sum_sq_err += float((x64 - xh64).square().sum())
        nx, nh = x64.norm(dim=1), xh64.norm(dim=1)
        ok = (nx >= NORM_FLOOR) & (nh >= NORM_FLOOR)
        dots = (x64 * xh64).sum(1)
        self.sum_cos += float(torch.where(ok, dots / (nx * nh).clamp_min(NORM_FLOOR), 0.0).sum())

    def finish(self, dense_threshold: float = 0.1) -> SAEMetrics:
        n = self.n_tokens
        if n == 0:
            raise EvalError("SAEStatistics: no evaluated token (N = 0)")
        total_ss = self.sum_sq_x - float(self.sum_x @ self.sum_x) / n
        fvu = ratio(self.sum_sq_err, total_ss)
        freq = self.fire_counts.astype(np.float64) / n
        n_dead = int((self.fire_counts == 0).sum())
        mse = self.sum_sq_err / n
        return SAEMetrics(
            n_tokens=n,
            mse=mse,
            mse_per_dim=mse / self.d_in,
            fvu=fvu,
            explained_variance=1.0 - fvu if math.isfinite(fvu) else math.nan,
            cossim=self.sum_cos / n,
            l0=float(self.fire_counts.sum()) / n,
            l1=self.sum_l1 / n,
            feature_frequency=freq,
            n_dead=n_dead,
            n_dense=int((freq > dense_threshold).sum()),
            dense_threshold=float(dense_threshold),
            frac_alive=1.0 - n_dead / self.d_sae,
        )
