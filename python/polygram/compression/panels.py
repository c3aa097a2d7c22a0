"""Decoder geometry of the epoch compressor (spec 13 §3.2 steps 2–3), run by
the Rust core: the signed-cosine pair graph over decoder rows and the greedy
seeded selection of overlapping panels that covers it.

Both work on row *positions* ``0..n``; the epoch compressor passes the
eligible features' rows in ascending feature-id order, so "ties go to the
lower position" is upstream's stable sort by feature id.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from polygram import _core
from polygram.errors import CompressionError

__all__ = ["PanelSelection", "SelectedPanel", "cosine_pair_graph", "select_panels"]

#: Features per panel in polygram 0.0.1 (the MPSRung1 capacity): anchor + 7.
PANEL_SIZE = 8


def _rows(rows: object, field: str) -> np.ndarray:
    arr = np.asarray(rows)
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise CompressionError(
            f"{field}: got a {arr.dtype} array of shape {arr.shape}; expected a real "
            "(n_rows, d_model) matrix"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def cosine_pair_graph(rows: object, threshold: float) -> np.ndarray:
    """Every pair ``(a, b)``, ``a < b``, of rows whose signed cosine is
    ``>= threshold``, as an ``(E, 2)`` int64 array sorted row-major.

    Rows are unit-normalised in float32 (a row of norm < 1e-12 is left as
    is, so a zero row has cosine 0 with everything); the cosines are float32
    GEMM tiles, so a pair within ~1e-7 of the threshold may fall either side.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise CompressionError(f"cosine_threshold: got {threshold!r}; expected a number")
    try:
        return _core.cosine_pair_graph(_rows(rows, "rows"), float(threshold))
    except _core.KernelError as e:
        raise CompressionError(f"cosine pair graph: {e}") from None


@dataclass(frozen=True)
class SelectedPanel:
    """A panel in row positions: ``members`` ascending (anchor included) and
    each non-anchor member's cosine to the anchor, in member order."""

    anchor: int
    members: tuple[int, ...]
    cosines: tuple[float, ...]


@dataclass(frozen=True)
class PanelSelection:
    panels: tuple[SelectedPanel, ...]
    #: covered edges / edges after the last panel (1.0 for an empty graph)
    coverage: float
    n_covered: int
    n_edges: int
    #: a single-row eligible set: one single-feature panel, selection stopped
    single_feature: bool


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 1:
        raise CompressionError(f"{name}: got {value!r}; must be an integer >= 1")
    return int(value)


def select_panels(
    rows: object,
    priority: object,
    edges: object,
    *,
    n_visits_per_feature: int,
    n_panels_max: int,
    coverage_target: float,
    panel_size: int = PANEL_SIZE,
) -> PanelSelection:
    """Greedy seeded coverage of the pair graph ``edges`` (spec 13 §3.2 step 3).

    Anchors by ``priority`` descending (ties: lower position), skipping rows
    at the visit cap; each anchor takes the ``panel_size − 1`` rows most
    cosine-similar to it (ties: lower position) that are below the cap —
    with no cosine threshold.  Stops at ``n_panels_max`` panels or once the
    fraction of ``edges`` inside some panel reaches ``coverage_target``.
    """
    r = _rows(rows, "rows")
    p = np.asarray(priority, dtype=np.float64)
    if p.shape != (r.shape[0],):
        raise CompressionError(
            f"priority: shape {p.shape}; expected ({r.shape[0]},), one value per row"
        )
    if isinstance(coverage_target, bool) or not isinstance(coverage_target, Real):
        raise CompressionError(
            f"coverage_target: got {coverage_target!r}; expected a number in (0, 1]"
        )
    e = np.asarray(edges)
    if e.size == 0:
        e = np.zeros((0, 2), dtype=np.int64)
    if e.ndim != 2 or e.shape[1] != 2 or e.dtype.kind not in "iu":
        raise CompressionError(
            f"edges: got a {e.dtype} array of shape {e.shape}; expected (n_edges, 2) integers"
        )
    try:
        anchors, members, offsets, cosines, coverage, n_cov, n_edges, single = _core.select_panels(
            r,
            np.ascontiguousarray(p),
            np.ascontiguousarray(e, dtype=np.int64),
            _positive_int("panel_size", panel_size),
            _positive_int("n_visits_per_feature", n_visits_per_feature),
            _positive_int("n_panels_max", n_panels_max),
            float(coverage_target),
        )
    except _core.KernelError as err:
        raise CompressionError(f"panel selection: {err}") from None
    flat, cos, bounds = members.tolist(), cosines.tolist(), offsets.tolist()
    panels = []
    for k, anchor in enumerate(anchors.tolist()):
        lo, hi = bounds[k], bounds[k + 1]
        mem = tuple(flat[lo:hi])
        panels.append(
            SelectedPanel(
                anchor,
                mem,
                tuple(c for m, c in zip(mem, cos[lo:hi], strict=True) if m != anchor),
            )
        )
    return PanelSelection(tuple(panels), float(coverage), int(n_cov), int(n_edges), bool(single))
