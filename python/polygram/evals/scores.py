"""The normalised scores of spec 16 §5.4 and the one ratio rule they share:
a denominator whose absolute value is at most :data:`DENOMINATOR_FLOOR` gives
NaN (JSON null), never ``inf`` or a huge number.  Torch-free."""

from __future__ import annotations

import math

__all__ = ["DENOMINATOR_FLOOR", "ce_loss_score", "kl_div_score", "ratio"]

#: ``|denominator| ≤ DENOMINATOR_FLOOR`` makes a ratio undefined (NaN).
DENOMINATOR_FLOOR = 1e-12


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when the denominator is within
    :data:`DENOMINATOR_FLOOR` of 0 or either side is not finite."""
    n, d = float(numerator), float(denominator)
    if not (math.isfinite(n) and math.isfinite(d)) or abs(d) <= DENOMINATOR_FLOOR:
        return math.nan
    return n / d


def ce_loss_score(ce_clean: float, ce_spliced: float, ce_ablated: float) -> float:
    """CE loss recovered: ``(CE_z − CE_s) / (CE_z − CE_0)``; 1 when splicing
    the SAE costs nothing, 0 when it is as bad as the ablation.  The same
    formula with the mean-ablated CE gives ``ce_loss_score_mean_ablation``."""
    return ratio(ce_ablated - ce_spliced, ce_ablated - ce_clean)


def kl_div_score(kl_spliced: float, kl_ablated: float) -> float:
    """``(KL_z − KL_s) / KL_z``."""
    return ratio(kl_ablated - kl_spliced, kl_ablated)
