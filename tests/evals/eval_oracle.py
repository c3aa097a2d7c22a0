"""An independent oracle for the evaluation metrics: a plain float64 loop over
positions (torch.nn.functional on one token at a time), written without any
of polygram.evals' helpers."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def oracle_lm(
    ids: torch.Tensor,
    mask: torch.Tensor,
    special: set[int],
    clean: torch.Tensor,
    other: dict[str, torch.Tensor],
) -> dict[str, Any]:
    """Per-position loop: CE of each logits set at positions predicting a real
    next token, KL(clean ‖ other) at every real non-special position."""
    ce: dict[str, list[float]] = {"clean": [], **{k: [] for k in other}}
    kl: dict[str, list[float]] = {k: [] for k in other}
    tok_pos, ce_pos = [], []
    B, T = ids.shape
    for b in range(B):
        for t in range(T):
            if not mask[b, t] or int(ids[b, t]) in special:
                continue
            tok_pos.append((b, t))
            lp = F.log_softmax(clean[b, t].double(), dim=-1)
            for k, lg in other.items():
                lq = F.log_softmax(lg[b, t].double(), dim=-1)
                kl[k].append(float(F.kl_div(lq, lp, log_target=True, reduction="sum")))
            if t + 1 < T and mask[b, t + 1]:
                ce_pos.append((b, t))
                y = int(ids[b, t + 1])
                ce["clean"].append(-float(lp[y]))
                for k, lg in other.items():
                    ce[k].append(-float(F.log_softmax(lg[b, t].double(), dim=-1)[y]))
    mean = lambda v: sum(v) / len(v) if v else math.nan  # noqa: E731
    return {
        "tok_pos": tok_pos,
        "ce_pos": ce_pos,
        "ce": {k: mean(v) for k, v in ce.items()},
        "kl": {k: mean(v) for k, v in kl.items()},
    }


def oracle_sae(x: torch.Tensor, x_hat: torch.Tensor, acts: torch.Tensor) -> dict[str, Any]:
    """Textbook definitions in float64 over the whole token set at once."""
    x, x_hat, acts = x.double(), x_hat.double(), acts.double()
    n = x.shape[0]
    sse = ((x - x_hat) ** 2).sum()
    tss = ((x - x.mean(0)) ** 2).sum()
    cos = []
    for i in range(n):
        a, b = x[i], x_hat[i]
        na, nb = a.norm(), b.norm()
        cos.append(0.0 if na < 1e-12 or nb < 1e-12 else float(a @ b / (na * nb)))
    fired = acts > 0
    freq = fired.double().mean(0)
    return {
        "mse": float(sse / n),
        "fvu": float(sse / tss),
        "explained_variance": float(1 - sse / tss),
        "cossim": sum(cos) / n,
        "l0": float(fired.sum(1).double().mean()),
        "l1": float(acts.sum(1).mean()),
        "feature_frequency": freq.numpy(),
    }
