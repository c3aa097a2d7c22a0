"""The names each compression-loop choice accepts — one home, imported by the
classes that run them and by :mod:`polygram.config`, which checks configs
against them without importing the loop classes."""

from __future__ import annotations

__all__ = ["MERGE_MODES", "REGROW_STRATEGIES", "REP_SELECTIONS", "SCORE_FIELDS", "STRATEGIES"]

#: How a cluster's non-representatives are silenced (spec 11 §5).
STRATEGIES: tuple[str, ...] = ("zero", "merge")
#: The merged decoder norm of ``strategy="merge"``.
MERGE_MODES: tuple[str, ...] = ("freq_weighted", "simple_mean")
#: How a cluster's representative is chosen (spec 11 §3.2).
REP_SELECTIONS: tuple[str, ...] = ("n_fires", "scale_aware", "kl_attribution")
#: The pair fields target-K and Pareto plans rank pairs by (spec 15 §3).
SCORE_FIELDS: tuple[str, ...] = ("polygram_overlap", "jaccard", "decoder_overlap")
#: ``Regrower`` strategies (``RegrowStrategy`` values; only the first is implemented).
REGROW_STRATEGIES: tuple[str, ...] = (
    "residual_kmeans",
    "high_decoder_norm_random",
    "orthogonal_noise_scaled",
)
