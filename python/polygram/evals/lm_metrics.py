"""Per-token language-model metrics of one batch (spec 16 §5.3–5.4).

Everything here works on the logits of one forward: log-probabilities are
float32, reductions over the vocabulary run one row at a time so that, next to
the kept clean log-probabilities, no second ``[B, T, vocab]`` temporary is ever
made, and the per-token values (1-D, row-major over the selected positions)
are summed in float64 by :class:`StreamingMean`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["StreamingMean", "ce_per_token", "kl_per_token", "log_softmax_"]


def log_softmax_(logits: torch.Tensor) -> torch.Tensor:
    """float32 log-softmax over the last axis, in place (one copy first when
    the logits are not float32), row by row: ``[T, vocab]`` temporaries only."""
    import torch

    out = logits if logits.dtype == torch.float32 else logits.to(torch.float32)
    for row in out:
        row.sub_(torch.logsumexp(row, dim=-1, keepdim=True))
    return out


def ce_per_token(
    logq: torch.Tensor, input_ids: torch.Tensor, ce_mask: torch.Tensor
) -> torch.Tensor:
    """``−log q[b, t, ids[b, t+1]]`` at ``P_ce`` (float32, 1-D)."""
    nll = -logq[:, :-1].gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return nll[ce_mask[:, :-1]]


def kl_per_token(logp: torch.Tensor, logq: torch.Tensor, tok_mask: torch.Tensor) -> torch.Tensor:
    """``KL(p ‖ q) = Σ_v p_v (log p_v − log q_v)`` at ``P_tok`` (float32,
    1-D; not clamped, so rounding may leave a tiny negative value)."""
    import torch

    parts = []
    for b in range(logp.shape[0]):
        m = tok_mask[b]
        if not bool(m.any()):
            continue
        lp, lq = logp[b, m], logq[b, m]
        parts.append((lp.exp() * (lp - lq)).sum(-1))
    if not parts:
        return logp.new_zeros(0)
    return torch.cat(parts)


@dataclass
class StreamingMean:
    """A mean over every value ever added, summed in float64 (on the CPU:
    MPS has no float64)."""

    total: float = 0.0
    count: int = 0

    def add(self, values: torch.Tensor) -> None:
        import torch

        v = values.detach().to("cpu", torch.float64)
        self.total += float(v.sum())
        self.count += int(v.numel())

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan
