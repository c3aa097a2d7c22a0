"""The rung-3 joint optimiser (spec 03 §3.5): search (φ_A, φ_B, θ_b, ψ_b) to
drive ``|G_AB|² = |G_MPS(φ_A, φ_B)|² · |a(θ_b, ψ_b)|²`` down.

1. Outer grid θ_b ∈ linspace(0, π/2, M) × ψ_b ∈ linspace(0, 2π, N, endpoint
   excluded), and inside every cell the canonical 2-φ grid (``max_steps``²
   points over [0, 2π]²).  All of it is ONE 4-axis ``_core.Scan`` with axes
   (θ_b, ψ_b, φ_A, φ_B), so each cell's inner grid is a contiguous block;
   only when the result arrays would exceed the memory budget is the θ_b axis
   split into several scans.
2. Per cell the best feasible inner point (first on ties, else the best
   overall); a cell whose ``|a_AB|²`` is below ``min_amp_overlap`` is
   infeasible.  Outer best: the feasible cell with the strictly smallest
   overlap, else the unconstrained minimum.
3. A **bounded** Nelder–Mead refinement from the outer best inside φ ∈ [0, 2π],
   θ_b ∈ [0, π/2], ψ_b ∈ [0, 2π] (0.0.1 ran it unbounded), objective
   ``overlap + 1`` when infeasible, every evaluation through the same kernel.
4. The smaller of the outer best and the best refine evaluation (feasible
   ones preferred); ``after_overlap`` recomputed from the optimum dictionary.

Only B's amp knobs move; A keeps its own θ_amp / ψ_aux.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polygram import _core
from polygram._budget import check_result_bytes, result_budget
from polygram.dictionary import Dictionary
from polygram.encoding import Rung3
from polygram.errors import ExperimentError, GridTooLargeError, missing

__all__ = [
    "BOUNDS",
    "NM_OPTIONS",
    "PENALTY",
    "Rung3JointSearch",
    "amp_overlap_sq",
    "check_joint_budget",
    "joint_knobs",
    "run_rung3_joint",
]

TWO_PI = 2.0 * math.pi
#: Search box of (φ_A, φ_B, θ_b, ψ_b); the refinement never leaves it.
BOUNDS: tuple[tuple[float, float], ...] = (
    (0.0, TWO_PI),
    (0.0, TWO_PI),
    (0.0, math.pi / 2.0),
    (0.0, TWO_PI),
)
#: Nelder–Mead options of the reference (spec 03 §3.5 step 3).
NM_OPTIONS = {"xatol": 1e-4, "fatol": 1e-6, "maxiter": 200}
#: Initial Nelder–Mead step per knob, as a fraction of its search range.
SIMPLEX_STEP = 0.05
#: Added to the objective of an infeasible refine point.
PENALTY = 1.0
#: Bytes the kernel returns per grid point (f64 overlap + bool feasible).
_POINT_BYTES = 9
#: Bytes held per outer cell (upper bound): its returned trajectory row
#: (5 × f64) and feasible flag, plus the per-cell working arrays (amp overlap
#: temporaries, the inner best, the grid rows before stacking).
_CELL_BYTES = 128


def joint_knobs(a: str, b: str) -> list[str]:
    """The knob list the joint optimiser searches, in trajectory column order."""
    return [f"{a}.phi", f"{b}.phi", f"{b}.theta_amp", f"{b}.psi_aux"]


def amp_overlap_sq(
    theta_a: float, psi_a: float, theta_b: np.ndarray, psi_b: np.ndarray
) -> np.ndarray:
    """``|a_AB|²`` for A's amp knobs against arrays of B's (spec 01 §1.7)."""
    ca, sa = math.cos(theta_a), math.sin(theta_a)
    a = ca * np.cos(theta_b) + np.exp(1j * (psi_b - psi_a)) * sa * np.sin(theta_b)
    return np.asarray(np.abs(a) ** 2)


@dataclass(frozen=True)
class Rung3JointSearch:
    """What the search found, before packaging into a CancellationResult.

    ``trajectory`` rows are ``(φ_A, φ_B, θ_b, ψ_b, overlap)``: one per outer
    cell (its inner best, θ_b slowest), then one per refine evaluation.
    """

    knobs: list[str]
    values: tuple[float, float, float, float]
    after_overlap: float
    trajectory: np.ndarray
    feasible: np.ndarray
    best_index: int
    n_outer_cells: int
    refine_message: str

    @property
    def theta_amp_optimum(self) -> float:
        return self.values[2]

    @property
    def psi_aux_optimum(self) -> float:
        return self.values[3]


class _Kernel:
    """Exact overlap and tier feasibility through ``_core.Scan``."""

    def __init__(self, d: Dictionary, target: tuple[str, str], preserve_tiers: bool) -> None:
        a, b = target
        self.d = d
        self.target = (d.feature_index(a), d.feature_index(b))
        self.preserve_tiers = preserve_tiers
        # Axis order (θ_b, ψ_b, φ_A, φ_B): a cell's inner grid is contiguous.
        self.slots = [d.knob_slots(p) for p in (f"{b}.theta_amp", f"{b}.psi_aux")] + [
            d.knob_slots(p) for p in (f"{a}.phi", f"{b}.phi")
        ]

    def grid(self, axes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        d = self.d
        scan = _core.Scan(
            d.encoding.encoder,
            d.knob_table,
            self.slots,
            list(axes),
            d.cluster_ids,
            len(d.hierarchy),
        )
        overlaps, feasible, _, _ = scan.grid(self.target, self.preserve_tiers, with_knobs=False)
        return overlaps, feasible

    def point(self, phi_a: float, phi_b: float, theta_b: float, psi_b: float) -> tuple[float, bool]:
        o, f = self.grid([np.array([v]) for v in (theta_b, psi_b, phi_a, phi_b)])
        return float(o[0]), bool(f[0])


def initial_simplex(x0: np.ndarray, frac: float = SIMPLEX_STEP) -> np.ndarray:
    """x0 plus one vertex per knob, stepped by ``frac`` of that knob's range
    *into* the box.  scipy's default simplex steps outward from an upper bound
    and is then clipped flat onto it, which freezes that knob; grid optima sit
    on bounds (φ = 2π, θ_b = π/2) often."""
    sim = np.tile(np.asarray(x0, dtype=np.float64), (len(x0) + 1, 1))
    for j, (lo, hi) in enumerate(BOUNDS):
        h = frac * (hi - lo)
        sim[j + 1, j] += h if sim[0, j] + h <= hi else -h
    return sim


def _theta_chunks(m: int, per_theta_bytes: int, budget: int) -> list[slice]:
    """Split the θ_b axis so one scan's result arrays stay within ``budget``."""
    if per_theta_bytes > budget:
        raise GridTooLargeError(
            f"rung-3 joint grid: one θ_amp row of the outer grid would return "
            f"{per_theta_bytes:,} bytes, over the budget of {budget:,} bytes; lower "
            "optimize['max_steps'] or grid_outer[1], or raise the budget "
            "($POLYGRAM_MAX_GRID_BYTES)"
        )
    step = max(1, min(m, budget // per_theta_bytes))
    return [slice(i, min(m, i + step)) for i in range(0, m, step)]


def check_joint_budget(
    grid_outer: tuple[int, int], max_steps: int, max_grid_bytes: int | None = None
) -> list[slice]:
    """Refuse, before allocating anything, a joint search whose arrays would not
    fit the memory budget: one scan (a θ_b row of the outer grid, each cell a
    ``max_steps``² inner grid) and the whole outer grid (``M·N`` cells).
    Returns the θ_b chunks the scans use."""
    m, n = (int(x) for x in grid_outer)
    res = int(max_steps)
    budget = result_budget(max_grid_bytes)
    per_theta = n * res * res * _POINT_BYTES
    _theta_chunks(1, per_theta, budget)  # one scan must fit: refuses with the row's bytes
    check_result_bytes(
        m * n * _CELL_BYTES,
        f"rung-3 joint outer grid of {m}×{n} = {m * n:,} cells (grid_outer)",
        override=max_grid_bytes,
        remedy="use a smaller grid_outer",
    )
    return _theta_chunks(m, per_theta, budget)


def run_rung3_joint(
    dictionary: Dictionary,
    target_pair: tuple[str, str],
    *,
    max_steps: int = 50,
    grid_outer: tuple[int, int] = (5, 5),
    min_amp_overlap: float = 0.0,
    preserve_tiers: bool = True,
    max_grid_bytes: int | None = None,
) -> Rung3JointSearch:
    """Run the joint search (module docstring).  Arguments are assumed
    validated by ``Cancellation``; this re-checks only what it relies on."""
    try:
        from scipy.optimize import minimize
    except ImportError:
        raise missing("scipy", "opt", "Cancellation(encoding='rung3')") from None
    d = dictionary
    if not isinstance(d.encoding, Rung3):
        raise ExperimentError(
            f"rung-3 joint search: needs a Rung3 dictionary, got {type(d.encoding).__name__}"
        )
    a, b = target_pair
    fa = d.feature(a)
    kernel = _Kernel(d, (a, b), preserve_tiers)
    m, n = (int(x) for x in grid_outer)
    res = int(max_steps)
    if m < 1 or n < 1 or res < 1:
        raise ExperimentError(
            f"rung-3 joint search: grid_outer={grid_outer!r}, max_steps={max_steps!r}; "
            "each must be >= 1"
        )

    chunks = check_joint_budget((m, n), res, max_grid_bytes)  # before any allocation
    thetas = np.linspace(0.0, math.pi / 2.0, m)
    psis = np.linspace(0.0, TWO_PI, n, endpoint=False)
    phis = np.linspace(0.0, TWO_PI, res)
    # |a_AB|² per cell, (m, n): the amp constraint depends on the cell only.
    amp_ok = (
        amp_overlap_sq(fa.theta_amp, fa.psi_aux, thetas[:, None], psis[None, :]) >= min_amp_overlap
    )

    inner = res * res
    cell_ov = np.empty(m * n)
    cell_feas = np.empty(m * n, dtype=bool)
    cell_phi = np.empty((m * n, 2))
    for sl in chunks:
        ov, feas = kernel.grid([thetas[sl], psis, phis, phis])
        cells = slice(sl.start * n, sl.stop * n)
        ov = ov.reshape(-1, inner)
        feas = feas.reshape(-1, inner) & amp_ok[sl].reshape(-1, 1)
        masked = np.where(feas, ov, np.inf)
        pick = np.argmin(masked, axis=1)  # first feasible minimum in each cell
        none = ~feas.any(axis=1)
        pick[none] = np.argmin(ov[none], axis=1)  # else the first overall minimum
        rows = np.arange(ov.shape[0])
        cell_ov[cells] = ov[rows, pick]
        cell_feas[cells] = feas[rows, pick]
        cell_phi[cells, 0] = phis[pick // res]
        cell_phi[cells, 1] = phis[pick % res]

    # Outer best: the first feasible cell of smallest overlap, else the first minimum.
    pool = np.flatnonzero(cell_feas) if cell_feas.any() else np.arange(m * n)
    best_cell = int(pool[np.argmin(cell_ov[pool])])
    grid_rows = np.column_stack([cell_phi, np.repeat(thetas, n), np.tile(psis, m), cell_ov])

    # Bounded refinement; every evaluation is recorded.
    evals: list[list[float]] = []
    eval_feas: list[bool] = []

    ca, sa = math.cos(fa.theta_amp), math.sin(fa.theta_amp)

    def feasible_amp(theta_b: float, psi_b: float) -> bool:
        # scalar form of amp_overlap_sq (numpy per call would dominate the refine)
        a = ca * math.cos(theta_b) + complex(
            math.cos(psi_b - fa.psi_aux), math.sin(psi_b - fa.psi_aux)
        ) * (sa * math.sin(theta_b))
        return abs(a) ** 2 >= min_amp_overlap

    def objective(x: np.ndarray) -> float:
        # scipy keeps points inside the bounds; clip guards the last ulp.
        p = [min(max(float(v), lo), hi) for v, (lo, hi) in zip(x, BOUNDS)]
        o, ok = kernel.point(*p)
        ok = ok and feasible_amp(p[2], p[3])
        evals.append([*p, o])
        eval_feas.append(ok)
        return o + (0.0 if ok else PENALTY)

    x0 = grid_rows[best_cell, :4]
    res_nm = minimize(
        objective,
        x0,
        method="Nelder-Mead",
        bounds=BOUNDS,
        options={**NM_OPTIONS, "initial_simplex": initial_simplex(x0)},
    )

    refine = np.array(evals, dtype=np.float64).reshape(-1, 5)
    refine_feas = np.array(eval_feas, dtype=bool)
    trajectory = np.vstack([grid_rows, refine])
    feasible = np.concatenate([cell_feas, refine_feas])
    # Candidates: the outer best (its grid row is the same kernel at the same
    # knob values, so it needs no re-evaluation) and the best refine
    # evaluation, feasible ones preferred; ties keep the outer best.
    chosen = best_cell
    if len(refine):
        pool = np.flatnonzero(refine_feas) if refine_feas.any() else np.arange(len(refine))
        nm_best = m * n + int(pool[np.argmin(refine[pool, 4])])
        cands = [best_cell, nm_best]
        feas_c = [c for c in cands if feasible[c]]
        chosen = min(feas_c or cands, key=lambda c: (trajectory[c, 4], c))

    values = tuple(float(v) for v in trajectory[chosen, :4])
    knobs = joint_knobs(a, b)
    at_opt = d.with_knobs(dict(zip(knobs, values)))
    ia, ib = kernel.target
    after = float(abs(at_opt.gram()[ia, ib]) ** 2)
    return Rung3JointSearch(
        knobs=knobs,
        values=values,  # type: ignore[arg-type]
        after_overlap=after,
        trajectory=trajectory,
        feasible=feasible,
        best_index=chosen,
        n_outer_cells=m * n,
        refine_message=str(res_nm.message),
    )
