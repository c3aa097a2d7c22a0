"""Figures of the compression loop (the ``plot`` extra): what validation found,
what an epoch removed and what it cost, and how firing frequencies moved.

Each function reads its report structurally (``Protocol``s below), so the
report modules can call these lazily without an import circle, and writes one
PNG atomically through :func:`polygram.plotting.save_figure`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from polygram.plotting import OVERLAP_LABEL, pyplot, save_figure

__all__ = ["plot_epoch", "plot_firing_frequencies", "plot_validation"]


class _Pair(Protocol):
    @property
    def i(self) -> int: ...
    @property
    def j(self) -> int: ...
    @property
    def polygram_overlap(self) -> float: ...
    @property
    def decoder_overlap(self) -> float: ...
    @property
    def jaccard(self) -> float: ...
    @property
    def kl_ablate_i(self) -> float: ...
    @property
    def kl_ablate_j(self) -> float: ...


class _Summary(Protocol):
    @property
    def spearman_polygram_jaccard(self) -> float: ...
    @property
    def spearman_decoder_jaccard(self) -> float: ...


class ValidationReportLike(Protocol):
    """What :func:`plot_validation` reads of a ``ValidationReport``."""

    @property
    def dictionary_name(self) -> str: ...
    @property
    def polygram_overlap_threshold(self) -> float: ...
    @property
    def jaccard_threshold(self) -> float: ...
    @property
    def pairs(self) -> Sequence[_Pair]: ...
    @property
    def confirmed(self) -> Sequence[tuple[int, int]]: ...
    @property
    def summary(self) -> _Summary: ...


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.3f}"


def plot_validation(report: ValidationReportLike, path: str | os.PathLike[str]) -> Path:
    """Two panels sharing the Jaccard axis: polygram overlap vs co-firing
    Jaccard (the gate's two thresholds as lines) and decoder cos² vs Jaccard,
    so the two rankers can be compared at a glance.  Colour is the pair's mean
    ablation KL (log scale; grey where it was not measured); confirmed pairs
    are ringed in red.  Spearman ρ of each ranker against Jaccard in the
    panel titles."""
    plt = pyplot()
    from matplotlib.colors import LogNorm

    pairs = list(report.pairs)
    poly = np.array([p.polygram_overlap for p in pairs], dtype=np.float64)
    dec = np.array([p.decoder_overlap for p in pairs], dtype=np.float64)
    jac = np.array([p.jaccard for p in pairs], dtype=np.float64)
    kls = np.array([(p.kl_ablate_i, p.kl_ablate_j) for p in pairs], dtype=np.float64)
    kls = kls.reshape(len(pairs), 2)
    n_kl = np.isfinite(kls).sum(axis=1)
    kl = np.where(n_kl > 0, np.nansum(kls, axis=1) / np.maximum(n_kl, 1), np.nan)
    confirmed = {tuple(c) for c in report.confirmed}
    ringed = np.array([(p.i, p.j) in confirmed for p in pairs], dtype=bool)
    measured = np.isfinite(kl) & (kl > 0)
    norm = None
    if measured.any():
        lo, hi = float(kl[measured].min()), float(kl[measured].max())
        norm = LogNorm(vmin=lo, vmax=max(hi, lo * 1.0001))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    s = report.summary
    panels = (
        (axes[0], poly, OVERLAP_LABEL + " (polygram)", s.spearman_polygram_jaccard),
        (axes[1], dec, "decoder cos²", s.spearman_decoder_jaccard),
    )
    scatter = None
    for ax, x, xlabel, rho in panels:
        ax.scatter(x[~measured], jac[~measured], s=28, c="lightgrey", edgecolors="grey",
                   label="KL not measured")  # fmt: skip
        if measured.any():
            scatter = ax.scatter(x[measured], jac[measured], s=28, c=kl[measured],
                                 cmap="viridis", norm=norm)  # fmt: skip
        if ringed.any():
            ax.scatter(x[ringed], jac[ringed], s=110, facecolors="none", edgecolors="red",
                       linewidths=1.5, label="confirmed")  # fmt: skip
        ax.axhline(report.jaccard_threshold, color="tab:red", ls=":", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_title(f"Spearman ρ vs Jaccard = {_fmt(rho)}")
        ax.grid(alpha=0.3)
    axes[0].axvline(report.polygram_overlap_threshold, color="tab:red", ls="--", lw=1,
                    label="gate thresholds")  # fmt: skip
    axes[0].set_ylabel("co-firing Jaccard")
    axes[0].legend(fontsize=8, loc="upper left")
    if scatter is not None:
        fig.colorbar(scatter, ax=axes[1], label="mean ablation KL (nats)")
    fig.suptitle(
        f"{report.dictionary_name}: {len(pairs)} pairs, {len(confirmed)} confirmed", fontsize=11
    )
    return save_figure(fig, path)


def plot_firing_frequencies(
    before: np.ndarray,
    after: np.ndarray,
    path: str | os.PathLike[str],
    *,
    labels: tuple[str, str] = ("before", "after"),
    title: str = "feature firing frequency",
) -> Path:
    """Overlaid histograms of log10 per-feature firing frequency before and
    after an edit (e.g. ``EvalResult.feature_frequency`` of the source and the
    compressed SAE); features that never fire (dead) are counted in the legend,
    since a log axis cannot show zero."""
    b = np.asarray(before, dtype=np.float64).ravel()
    a = np.asarray(after, dtype=np.float64).ravel()
    for name, v in (("before", b), ("after", a)):
        if v.size == 0 or not np.isfinite(v).all() or (v < 0).any() or (v > 1).any():
            raise ValueError(
                f"plot_firing_frequencies: {name} must be a non-empty array of "
                "frequencies in [0, 1]"
            )
    plt = pyplot()
    alive = np.concatenate([b[b > 0], a[a > 0]])
    lo = math.floor(math.log10(alive.min())) if alive.size else -6
    bins = np.linspace(lo, 0.0, 41)
    fig, ax = plt.subplots(figsize=(7, 4))
    for v, label, colour in ((b, labels[0], "tab:blue"), (a, labels[1], "tab:orange")):
        dead = int((v == 0).sum())
        ax.hist(np.log10(v[v > 0]), bins=bins, alpha=0.55, color=colour,
                label=f"{label}: {v.size} features, {dead} dead")  # fmt: skip
    ax.set_xlabel("log10 firing frequency (fraction of evaluated tokens)")
    ax.set_ylabel("features")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_epoch(
    n_zeroed: Sequence[int],
    quality: Sequence[float],
    path: str | os.PathLike[str],
    *,
    metric: str,
    reference: float | None = None,
    tolerance: float | None = None,
    higher_is_better: bool = True,
    kept: Sequence[bool] | None = None,
) -> Path:
    """Per iteration: features removed (bars, left axis, with the running
    total as a line) and the quality metric (right axis), with the bound
    ``reference ∓ tolerance`` shaded; a discarded (breaching) iteration is
    drawn hatched."""
    z = np.asarray(n_zeroed, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if z.shape != q.shape or z.ndim != 1:
        raise ValueError(
            f"plot_epoch: n_zeroed and quality must be 1-D of one length; got {z.shape}, {q.shape}"
        )
    keep = np.ones(z.size, dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    plt = pyplot()
    it = np.arange(z.size)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.bar(it[keep], z[keep], color="tab:blue", alpha=0.6, label="features removed")
    if (~keep).any():
        ax.bar(it[~keep], z[~keep], color="none", edgecolor="tab:blue", hatch="//",
               label="discarded (bound breached)")  # fmt: skip
    ax.plot(it, np.cumsum(np.where(keep, z, 0)), "s-", color="tab:blue", ms=3,
            label="removed, cumulative")  # fmt: skip
    ax.set_xlabel("iteration")
    ax.set_ylabel("features")
    ax.set_xticks(it)
    ax2 = ax.twinx()
    ax2.plot(it, q, "o-", color="tab:red", label=metric)
    if reference is not None and math.isfinite(reference):
        ax2.axhline(reference, color="tab:red", ls=":", lw=1, label="source")
        if tolerance is not None and math.isfinite(tolerance):
            bound = reference - tolerance if higher_is_better else reference + tolerance
            ax2.axhline(bound, color="tab:red", ls="--", lw=1, label="bound")
    ax2.set_ylabel(metric, color="tab:red")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, ncol=3,
              loc="upper center", bbox_to_anchor=(0.5, -0.14))  # fmt: skip
    ax.set_title(f"epoch: {int(z[keep].sum())} features removed over {z.size} iterations")
    return save_figure(fig, path)
