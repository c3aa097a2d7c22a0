"""Matplotlib figures (the ``plot`` extra).  matplotlib is imported only when
a figure is drawn, with the Agg backend so scripts and CI need no display."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from polygram._io import atomic_write_bytes
from polygram.errors import missing

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary


# The figures read results structurally (the result modules import this one
# lazily to draw, so naming their classes here would close an import circle).
class SweepResultLike(Protocol):
    """What ``plot_sweep`` reads of an ``ExperimentResult``."""

    @property
    def dictionary_name(self) -> str: ...
    @property
    def target_pair(self) -> tuple[str, str]: ...
    @property
    def sweep_keys(self) -> list[str]: ...
    @property
    def sweep_axes(self) -> Mapping[str, np.ndarray]: ...
    @property
    def overlaps(self) -> np.ndarray: ...
    @property
    def tier_stats(self) -> Mapping[str, np.ndarray]: ...


class CancellationResultLike(Protocol):
    """What the cancellation figures read of a ``CancellationResult``."""

    @property
    def target_pair(self) -> tuple[str, str]: ...
    @property
    def method(self) -> str: ...
    @property
    def before_overlap(self) -> float: ...
    @property
    def after_overlap(self) -> float: ...
    @property
    def structural_floor(self) -> float: ...
    @property
    def before_gram(self) -> np.ndarray: ...
    @property
    def after_gram(self) -> np.ndarray: ...
    @property
    def overlaps(self) -> np.ndarray: ...
    @property
    def dictionary_at_optimum(self) -> Dictionary: ...
    @property
    def knobs(self) -> list[str]: ...
    @property
    def optimized_knobs(self) -> Mapping[str, float]: ...
    @property
    def overlap_grid(self) -> np.ndarray | None: ...
    @property
    def feasible_grid(self) -> np.ndarray | None: ...
    @property
    def axes(self) -> Mapping[str, np.ndarray]: ...


__all__ = ["OVERLAP_LABEL", "plot_sweep", "pyplot", "save_figure"]


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise missing("matplotlib", "plot", "plotting") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


#: Axis / colour-bar label of every target-overlap figure, literally (as 0.0.1).
OVERLAP_LABEL = "|<A|B>|²"


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Save atomically (temp file + rename) and close the figure.  The page
    keeps its declared size (7×4 in at 120 dpi → 840×480 px, as 0.0.1's
    figures); ``tight_layout`` only rearranges the axes inside it."""
    import io
    import warnings

    p = Path(path)
    buf = io.BytesIO()
    fmt = p.suffix.lstrip(".") or "png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # colour bars spanning several axes
        fig.tight_layout()
    fig.savefig(buf, format=fmt, dpi=dpi)
    pyplot().close(fig)
    return atomic_write_bytes(p, buf.getvalue())


def plot_sweep(
    result: SweepResultLike, path: str | os.PathLike[str], kind: str = "overlap"
) -> Path:
    """1-D: target overlap with sibling (dashed) and cross-cluster (dotted)
    tier means; 2-D: heatmap of the overlap (first key on x)."""
    if kind != "overlap":
        raise ValueError(f"plot kind: got {kind!r}; allowed 'overlap'")
    keys = result.sweep_keys
    a, b = result.target_pair
    label = OVERLAP_LABEL
    plt = pyplot()
    if len(keys) == 1:
        x = result.sweep_axes[keys[0]]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(x, result.overlaps, "o-", label=f"({a}, {b})")
        ax.plot(
            x, result.tier_stats["sibling"], "--", color="tab:green", label="sibling tier (mean)"
        )
        ax.plot(
            x,
            result.tier_stats["cross_cluster"],
            ":",
            color="grey",
            label="cross-cluster tier (mean)",
        )
        ax.set_xlabel(keys[0])
        ax.set_ylabel(label)
        ax.set_title(f"{result.dictionary_name} — target overlap")
        ax.grid(alpha=0.3)
        ax.legend()
    elif len(keys) == 2:
        x, y = (result.sweep_axes[k] for k in keys)
        fig, ax = plt.subplots(figsize=(6, 5))
        im = ax.imshow(
            np.asarray(result.overlaps).T,
            origin="lower",
            aspect="auto",
            extent=(float(x[0]), float(x[-1]), float(y[0]), float(y[-1])),
            cmap="viridis",
        )
        fig.colorbar(im, ax=ax, label=label)
        ax.set_xlabel(keys[0])
        ax.set_ylabel(keys[1])
        ax.set_title(f"{result.dictionary_name} — target overlap")
    else:
        raise NotImplementedError(
            f"plot: {len(keys)} sweep axes; figures exist for 1-D (line) and 2-D (heatmap) sweeps"
        )
    return save_figure(fig, path)


# --- Cancellation figures (spec 03 §3.6.3) --------------------------------

__all__ += ["plot_cancellation_before_after", "plot_cancellation_grid", "plot_cancellation_trace"]


def plot_cancellation_grid(result: CancellationResultLike, path: str | os.PathLike[str]) -> Path:
    """Heatmap of a 2-knob grid result: infeasible cells masked, red star at
    the optimum, ``after_overlap`` in the title."""
    if len(result.knobs) != 2 or result.overlap_grid is None:
        raise NotImplementedError(
            f"grid plot: needs a 2-knob grid result; got method {result.method!r} with "
            f"{len(result.knobs)} knob(s)"
        )
    grid = np.ma.masked_array(result.overlap_grid, mask=~result.feasible_grid)  # type: ignore[operator]
    x, y = result.axes.values()
    kx, ky = result.knobs
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(
        grid.T,
        origin="lower",
        aspect="auto",
        extent=(float(x.min()), float(x.max()), float(y.min()), float(y.max())),
        cmap="viridis",
    )
    fig.colorbar(im, ax=ax, label=OVERLAP_LABEL)
    ax.plot(
        [result.optimized_knobs[kx]],
        [result.optimized_knobs[ky]],
        marker="*",
        color="red",
        markersize=14,
        markeredgecolor="white",
        linestyle="none",
        label="optimum",
    )
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    ax.set_title(f"Cancellation grid — {kx} × {ky}\nafter_overlap = {result.after_overlap:.4f}")
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path)


def plot_cancellation_trace(result: CancellationResultLike, path: str | os.PathLike[str]) -> Path:
    """Raw target overlap per evaluation, in evaluation order."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ov = np.asarray(result.overlaps)
    ax.plot(np.arange(ov.size), ov, ".", ms=3, alpha=0.7, label="evaluation")
    if not np.isnan(result.structural_floor):
        ax.axhline(result.structural_floor, color="red", ls="--", lw=1, label="structural floor")
    ax.set_xlabel("evaluation")
    ax.set_ylabel(OVERLAP_LABEL)
    ax.set_title(
        f"{result.dictionary_at_optimum.name} — {result.method}, after = {result.after_overlap:.4f}"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_cancellation_before_after(
    result: CancellationResultLike, path: str | os.PathLike[str]
) -> Path:
    """|G|² before and after on a shared 0…max scale, target cells outlined in
    red, and a bar chart of before / after / floor (floor only when defined)."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    before, after = np.abs(result.before_gram) ** 2, np.abs(result.after_gram) ** 2
    vmax = float(max(before.max(), after.max()))
    d = result.dictionary_at_optimum
    ia, ib = (d.feature_index(x) for x in result.target_pair)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, m, title in ((axes[0], before, "before"), (axes[1], after, "after")):
        im = ax.imshow(m, vmin=0.0, vmax=vmax, cmap="viridis")
        ax.set_title(f"{title} |<i|j>|²")
        ax.set_xticks([])
        ax.set_yticks([])
        for r, c in ((ia, ib), (ib, ia)):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="red", lw=2))
    # One shared scale (0…max), drawn beside the "after" panel.
    fig.colorbar(im, ax=axes[1], shrink=0.7)
    labels = ["before", "after"]
    heights = [result.before_overlap, result.after_overlap]
    if not np.isnan(result.structural_floor):
        labels.append("floor")
        heights.append(result.structural_floor)
    axes[2].bar(labels, heights, color=["tab:gray", "tab:blue", "tab:green"][: len(labels)])
    a, b = result.target_pair
    axes[2].set_ylabel(OVERLAP_LABEL)
    axes[2].set_title(f"{a} × {b}")
    return save_figure(fig, path)
