"""Which positions of a right-padded batch count (spec 16 §5.2).

``P_tok`` — a real (``attention_mask = 1``) position whose input token is not
special — carries the SAE statistics and KL; ``P_ce ⊂ P_tok`` additionally
needs the next position to hold a real token, the target its logits predict.
So the BOS position counts nowhere and a row's last real position has KL but
no CE: SAELens' ``exclude_special_tokens`` rule, plus the padding case it never
meets.  Padding is recognised by the mask, never by token id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["position_masks"]


def position_masks(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: Iterable[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tok, ce)``: boolean ``[B, T]`` masks of ``P_tok`` and ``P_ce``."""
    import torch

    if input_ids.shape != attention_mask.shape or input_ids.dim() != 2:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and attention_mask "
            f"{tuple(attention_mask.shape)} must be the same [B, T] shape"
        )
    real = attention_mask.to(torch.bool)
    special = torch.tensor(sorted({int(i) for i in special_ids}), dtype=input_ids.dtype)
    tok = real & ~torch.isin(input_ids, special.to(input_ids.device))
    ce = torch.zeros_like(tok)
    ce[:, :-1] = tok[:, :-1] & real[:, 1:]
    return tok, ce
