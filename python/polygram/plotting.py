"""Matplotlib figures (the ``plot`` extra).  matplotlib is imported only when
a figure is drawn, with the Agg backend so scripts and CI need no display."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram._io import atomic_write_bytes
from polygram.errors import missing

if TYPE_CHECKING:
    from polygram.experiment import ExperimentResult

__all__ = ["plot_sweep", "pyplot", "save_figure"]


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise missing("matplotlib", "plot", "plotting") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Save atomically (temp file + rename) and close the figure."""
    import io

    p = Path(path)
    buf = io.BytesIO()
    fmt = p.suffix.lstrip(".") or "png"
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return atomic_write_bytes(p, buf.getvalue())


def plot_sweep(
    result: ExperimentResult, path: str | os.PathLike[str], kind: str = "overlap"
) -> Path:
    """1-D: target overlap with sibling (dashed) and cross-cluster (dotted)
    tier means; 2-D: heatmap of the overlap (first key on x)."""
    if kind != "overlap":
        raise ValueError(f"plot kind: got {kind!r}; allowed 'overlap'")
    keys = result.sweep_keys
    a, b = result.target_pair
    label = f"|<{a}|{b}>|²"
    plt = pyplot()
    if len(keys) == 1:
        x = result.sweep_axes[keys[0]]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(x, result.overlaps, "o-", ms=3.5, label=f"({a}, {b})")
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
        ax.legend(fontsize=8)
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
