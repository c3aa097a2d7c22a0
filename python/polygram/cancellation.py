"""Cancellation: search knob values that drive a target pair's overlap
``|G_AB|²`` down, optionally keeping the hierarchical ordering (spec 03).

Backends
--------
* ``grid`` (default): ``max_steps`` values per knob, Cartesian product, ONE
  call into the Rust core (``_core.Scan.grid``) which evaluates every point in
  parallel with the GIL released and returns dense arrays.
* ``scipy``: ``scipy.optimize.differential_evolution`` with the reference
  arguments, one exact kernel evaluation per objective call.
* ``rung3_joint``: the Rung3 joint optimiser (issue 5) plugs in as
  ``Cancellation._run_rung3``; ``run()`` dispatches on ``self.method``.

The structural floor ``M − |V|`` is closed form (``Dictionary.branch_law``);
see docs/cancellation.md for the math, the tie-break rule, the memory budget
and lean mode.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar, overload

import numpy as np

from polygram import _core
from polygram._budget import check_result_bytes
from polygram._io import atomic_write_text, ensure_dir
from polygram.config import CancellationConfig, config_of, pick
from polygram.dictionary import Dictionary
from polygram.encoding import HEA_Rung2, MPSRung1, Rung3
from polygram.errors import ExperimentError, OutputError, missing
from polygram.experiment import target_pair_of
from polygram.knobs import parse_knob

__all__ = [
    "DEFAULT_OPTIMIZE",
    "KNOB_BOUNDS",
    "MAX_GRID_KNOBS",
    "PENALTY",
    "Cancellation",
    "CancellationResult",
    "TrajectoryRows",
]

#: Defaults for missing ``optimize`` keys (spec 03 §3.1).
DEFAULT_OPTIMIZE: Mapping[str, Any] = {"method": "grid", "max_steps": 50}
#: The grid backend refuses more knobs than this (``max_steps**k`` points).
MAX_GRID_KNOBS = 4
#: Added to the objective of an infeasible point by the scipy backend.
PENALTY = 1.0
#: Search range per knob kind (both ends sampled by the grid).
KNOB_BOUNDS: Mapping[str, tuple[float, float]] = {
    "phi": (0.0, 2.0 * math.pi),
    "theta": (-math.pi, math.pi),
    "theta_amp": (0.0, math.pi / 2.0),
    "psi_aux": (0.0, 2.0 * math.pi),
}
#: ``before − floor`` below this means there was no gap to close.
NO_GAP = 1e-9

_ENCODING_NAMES = {"mps": MPSRung1, "hea": HEA_Rung2, "rung3": Rung3}
_METHODS = ("grid", "scipy")
_CSV_BLOCK = 1 << 16  # rows formatted per block when streaming a trajectory CSV


def _encoding_name(d: Dictionary) -> str:
    enc = d.encoding
    return "hea" if isinstance(enc, HEA_Rung2) else "rung3" if isinstance(enc, Rung3) else "mps"


def _int_option(owner: str, value: object, lo: int) -> int:
    """An integer ≥ ``lo``; integral floats are cast (0.0.1 casts with int())."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ExperimentError(f"{owner}: got {value!r}; expected an integer >= {lo}")
    if isinstance(value, Integral):
        n = int(value)
    else:
        v = float(value)
        if not (math.isfinite(v) and v.is_integer()):
            raise ExperimentError(f"{owner}: got {value!r}; expected an integer >= {lo}")
        n = int(v)
    if n < lo:
        raise ExperimentError(f"{owner}: got {n}; must be >= {lo}")
    return n


# --------------------------------------------------------------------- result
class TrajectoryRows(Sequence[tuple[float, ...]]):
    """List-style, read-only view of the trajectory: ``rows[i]`` is the tuple
    ``(knob values…, overlap)`` of evaluation ``i``.  Rows are made on demand,
    so it also works for lean grid results (no trajectory array)."""

    def __init__(self, result: CancellationResult) -> None:
        self._r = result

    def __len__(self) -> int:
        return self._r.n_evaluations

    @overload
    def __getitem__(self, i: int) -> tuple[float, ...]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[float, ...]]: ...

    def __getitem__(self, i: int | slice) -> tuple[float, ...] | list[tuple[float, ...]]:
        n = len(self)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            return [tuple(r) for r in self._r._block(start, max(start, stop)).tolist()]
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"trajectory row {i} out of range for {n} rows")
        return tuple(self._r._block(j, j + 1)[0].tolist())

    def __iter__(self) -> Iterator[tuple[float, ...]]:
        n = len(self)
        for start in range(0, n, _CSV_BLOCK):
            block = self._r._block(start, min(n, start + _CSV_BLOCK))
            yield from (tuple(r) for r in block.tolist())

    def __repr__(self) -> str:
        return f"TrajectoryRows({len(self)} rows × {len(self._r.knobs) + 1} columns)"


@dataclass(frozen=True, eq=False)
class CancellationResult:
    """Outcome of :meth:`Cancellation.run` (spec 03 §3.6).

    ``trajectory`` is ``(evaluations, len(knobs) + 1)`` float64 (knob values in
    knob order, then the overlap) — ``None`` for a lean grid result, which
    keeps only ``overlaps`` (also as ``overlap_grid``) and ``feasible_mask``.
    """

    optimized_knobs: dict[str, float]
    before_gram: np.ndarray
    after_gram: np.ndarray
    before_overlap: float
    after_overlap: float
    tolerance_met: bool
    method: str
    trajectory: np.ndarray | None
    feasible_mask: np.ndarray
    feasible_count: int
    dictionary_at_optimum: Dictionary
    target_pair: tuple[str, str]
    knobs: list[str]
    structural_floor: float
    cancellation_efficiency: float | None
    theta_amp_optimum: float = math.nan
    psi_aux_optimum: float = math.nan
    #: Raw target overlap per evaluation (the trajectory's last column).
    overlaps: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    #: Grid backend: knob path → axis values; empty for other methods.
    axes: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: Index of the optimum in the trajectory (None when not a trajectory row).
    best_index: int | None = None
    lean: bool = False

    # -- derived -----------------------------------------------------------
    @property
    def optimized_phis(self) -> dict[str, float]:
        """``optimized_knobs`` under the seed README's name: the same dict
        (a read-only attribute, so it cannot be rebound)."""
        return self.optimized_knobs

    @property
    def at_structural_floor(self) -> bool:
        """True when the pair started and ended at its (finite) phase-only
        floor, within 1e-6: phases had nothing to give.  It tells "at the
        floor" from "floor undefined" (NaN floor → False) while
        ``cancellation_efficiency`` stays ``None`` there (spec 15 §8)."""
        floor = self.structural_floor
        return bool(
            math.isfinite(floor)
            and abs(self.before_overlap - floor) <= 1e-6
            and abs(self.after_overlap - floor) <= 1e-6
        )

    @property
    def floor_breach(self) -> float:
        """``structural_floor − after_overlap``: positive when the search went
        below the MPS phase-only floor (rung-3), NaN when the floor is undefined."""
        return self.structural_floor - self.after_overlap

    @property
    def n_evaluations(self) -> int:
        return int(self.feasible_mask.shape[0])

    @property
    def overlap_grid(self) -> np.ndarray | None:
        """Grid results: the overlaps as a ``(max_steps,) * k`` view (C order,
        first knob slowest); None for other methods."""
        if not self.axes:
            return None
        return self.overlaps.reshape(tuple(len(v) for v in self.axes.values()))

    @property
    def feasible_grid(self) -> np.ndarray | None:
        if not self.axes:
            return None
        return self.feasible_mask.reshape(tuple(len(v) for v in self.axes.values()))

    def trajectory_rows(self) -> TrajectoryRows:
        """The trajectory as a lazy sequence of ``(knob values…, overlap)`` tuples."""
        return TrajectoryRows(self)

    def _block(self, start: int, stop: int) -> np.ndarray:
        """Trajectory rows ``start:stop`` as an array (made from the axes in lean mode)."""
        if self.trajectory is not None:
            return self.trajectory[start:stop]
        dims = tuple(len(v) for v in self.axes.values())
        idx = np.unravel_index(np.arange(start, stop), dims)
        cols = [ax[i] for ax, i in zip(self.axes.values(), idx)]
        return np.column_stack([*cols, self.overlaps[start:stop]]) if cols else np.empty((0, 1))

    # -- reports -----------------------------------------------------------
    def summary_text(self) -> str:
        """The ``<name>_summary.md`` text (spec 03 §3.6.2)."""
        a, b = self.target_pair
        lines = [
            f"# {self.dictionary_at_optimum.name}",
            "",
            f"- target pair: `{a}` × `{b}`",
            f"- method: `{self.method}`",
            f"- knobs: {', '.join(f'`{k}`' for k in self.knobs)}",
            f"- tolerance_met: {self.tolerance_met} (after_overlap < tolerance)",
            f"- feasible evaluations: {self.feasible_count} of {self.n_evaluations}",
            "",
            "## Optimum",
            "",
            *[f"- `{k}` = {v:.6f}" for k, v in self.optimized_knobs.items()],
        ]
        if self.knobs == [f"{a}.phi", f"{b}.phi"]:
            lines += [
                "",
                f"  - {a} = {self.optimized_knobs[self.knobs[0]]:.6f}",
                f"  - {b} = {self.optimized_knobs[self.knobs[1]]:.6f}",
            ]
        floor, eff = self.structural_floor, self.cancellation_efficiency
        lines += [
            "",
            "## Overlap",
            "",
            f"- before: {self.before_overlap:.6f}",
            f"- after:  {self.after_overlap:.6f}",
            f"- delta:  {self.after_overlap - self.before_overlap:+.6f}",
            "",
            "## Structural floor",
            "",
            "- structural_floor: "
            + ("undefined for this configuration" if math.isnan(floor) else f"{floor:.6f}"),
            "- cancellation_efficiency: " + ("n/a" if eff is None else f"{eff:.4f}"),
        ]
        if self.method == "rung3_joint":  # issue 04: how far below the MPS floor
            breach = self.floor_breach
            lines.append("- floor_breach: " + ("n/a" if math.isnan(breach) else f"{breach:+.6f}"))
        lines.append(f"- interpretation: {self.interpretation}")
        if math.isnan(floor):
            lines += ["", "## Caveat", ""]
            lines += "\n\n".join(self._caveats()).split("\n")
        return "\n".join(lines) + "\n"

    @property
    def interpretation(self) -> str:
        eff = self.cancellation_efficiency
        if math.isnan(self.structural_floor):
            return "structural floor is encoding-bound; not yet defined for this configuration"
        if eff is None:
            return "no cancellation gap available"
        if eff >= 0.99:
            return "phase search exhausted — encoding-bound"
        return "phase search underutilized"

    def _caveats(self) -> list[str]:
        d = self.dictionary_at_optimum
        shared = [parse_knob(k).ident in d.hierarchy for k in self.knobs]
        has_theta = any(".theta[" in k for k in self.knobs)
        best = (
            "The overlap above is the best value this search found, not a lower bound: "
            "no closed-form floor exists for this encoding and knob list, so a finer grid, "
            "another backend or more knobs may still go lower."
        )
        if all(shared):
            if isinstance(d.encoding, MPSRung1) and not has_theta:
                return [
                    "Every knob is cluster-shared. A matched Rz on all members of a cluster "
                    "is a unitary applied to each of them, so every within-cluster Gram "
                    "entry is preserved exactly — provided the siblings had equal φ before "
                    "the search. Only cross-cluster overlaps move."
                ]
            return [
                "Every knob is cluster-shared. Moving whole clusters together is a "
                "dimensionality reduction of the search, not an invariant: on this encoding "
                "(or with θ knobs) within-cluster overlaps can change too, so check the tier "
                "separation of the optimum before relying on it."
            ]
        if any(shared):
            return [
                best,
                "This knob list mixes per-feature and cluster-shared paths, so it does not "
                "inherit the cluster-shared invariant: a per-feature write moves one member "
                "away from its siblings, and within-cluster overlaps can change.",
            ]
        if has_theta:
            best += (
                " Per-feature θ writes can also move a feature away from its cluster, so "
                "verify the tier separation of the optimum."
            )
        return [best]

    def trajectory_header(self) -> list[str]:
        return [*self.knobs, "overlap", "feasible"]

    def _csv_blocks(self) -> Iterator[str]:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(self.trajectory_header())
        yield buf.getvalue()
        n, k = self.n_evaluations, len(self.knobs)
        row = ",".join(["%.6f"] * (k + 1)) + ",%d\n"  # %-formatting == f"{x:.6f}"
        for start in range(0, n, _CSV_BLOCK):
            stop = min(n, start + _CSV_BLOCK)
            vals = self._block(start, stop)
            cells = np.empty((stop - start, k + 2), dtype=object)
            cells[:, : k + 1] = vals
            cells[:, k + 1] = self.feasible_mask[start:stop].astype(np.int64)
            yield (row * (stop - start)) % tuple(cells.ravel().tolist())

    def csv_text(self) -> str:
        """The trajectory CSV (spec 03 §3.6.1) as one string."""
        return "".join(self._csv_blocks())

    def materialize(self, output_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``<name>.q.orca.md`` (the optimum dictionary), ``<name>_summary.md``
        and ``<name>_trajectory.csv`` (name = ``<original>_at_optimum``), each
        atomically.  Returns ``{"machine", "summary", "trajectory"}`` → path."""
        from polygram.qorca import write_qorca

        out = ensure_dir(output_dir)
        name = self.dictionary_at_optimum.name
        return {
            "machine": write_qorca(self.dictionary_at_optimum, out / f"{name}.q.orca.md"),
            "summary": atomic_write_text(out / f"{name}_summary.md", self.summary_text()),
            "trajectory": _atomic_stream(out / f"{name}_trajectory.csv", self._csv_blocks()),
        }

    def plot(self, path: str | os.PathLike[str], kind: str | None = None) -> Path:
        """``grid`` (2-knob heatmap, infeasible cells masked, optimum starred),
        ``scipy`` (overlap per evaluation) or ``before_after`` (|G|² before and
        after, plus a bar chart with the floor).  ``kind=None`` uses ``method``."""
        from polygram import plotting

        kinds: dict[str, Callable[[CancellationResult, str | os.PathLike[str]], Path]] = {
            "grid": plotting.plot_cancellation_grid,
            "scipy": plotting.plot_cancellation_trace,
            "before_after": plotting.plot_cancellation_before_after,
        }
        k = self.method if kind is None else kind
        if k not in kinds:
            if kind is None:
                raise NotImplementedError(
                    f"plot: method {self.method!r} has no default figure; pass kind= one of "
                    f"{sorted(kinds)}"
                )
            raise ValueError(f"plot kind: got {kind!r}; allowed {sorted(kinds)}")
        return kinds[k](self, path)

    def __repr__(self) -> str:
        return (
            f"CancellationResult({self.dictionary_at_optimum.name!r}, method={self.method!r}, "
            f"target_pair={self.target_pair}, "
            f"before={self.before_overlap:.6f}, after={self.after_overlap:.6f}, "
            f"floor={self.structural_floor:.6f}, feasible={self.feasible_count}/"
            f"{self.n_evaluations}, optimized_knobs={self.optimized_knobs})"
        )


def _atomic_stream(path: Path, chunks: Iterator[str]) -> Path:
    """Stream text chunks into a temp file beside ``path``, then rename (a big
    trajectory CSV never sits in memory as one string)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for c in chunks:
                fh.write(c)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# --------------------------------------------------------------- the search
class Cancellation:
    """Search knob values minimising ``|G_AB|²`` of ``target_pair``.

    ``lean=True`` (grid only) returns just the overlap grid and the feasible
    mask (``trajectory`` None; rows on demand via ``trajectory_rows()``).
    ``max_grid_bytes`` overrides the memory budget for the returned arrays
    (default: ``$POLYGRAM_MAX_GRID_BYTES``, else half of physical memory).
    ``tolerance``, ``preserve_tiers``, ``optimize``, ``grid_outer`` and
    ``min_amp_overlap`` left ``None`` come from ``config`` (a
    :class:`~polygram.config.CancellationConfig`), else its defaults.
    """

    #: method → name of the runner; issue 5 provides ``_run_rung3``.
    _RUNNERS: ClassVar[dict[str, str]] = {
        "grid": "_run_grid",
        "scipy": "_run_scipy",
        "rung3_joint": "_run_rung3",
    }
    _OPTIMIZE_KEYS: ClassVar[frozenset[str]] = frozenset({"method", "max_steps"})

    dictionary: Dictionary
    target_pair: tuple[str, str]
    encoding: str
    knobs: list[str]
    bounds: list[tuple[float, float]]
    max_steps: int
    method: str
    optimize: dict[str, Any]
    grid_outer: tuple[int, int]
    min_amp_overlap: float
    tolerance: float
    preserve_tiers: bool
    lean: bool
    max_grid_bytes: int | None

    def __init__(
        self,
        dictionary: Dictionary,
        target_pair: tuple[str, str],
        tolerance: float | None = None,
        preserve_tiers: bool | None = None,
        optimize: Mapping[str, Any] | None = None,
        optimize_all: bool = False,
        knobs: Sequence[str] | None = None,
        encoding: str | None = None,
        grid_outer: tuple[int, int] | None = None,
        min_amp_overlap: float | None = None,
        *,
        lean: bool = False,
        max_grid_bytes: int | None = None,
        config: CancellationConfig | None = None,
    ) -> None:
        # Tuning values left None come from config, else CancellationConfig's
        # defaults (0.05, True, grid/50, (5, 5), 0.0; spec 15 §0.3).
        cfg = config_of(CancellationConfig, config, "Cancellation")
        tolerance = pick(tolerance, cfg, "tolerance")
        preserve_tiers = pick(preserve_tiers, cfg, "preserve_tiers")
        optimize = pick(optimize, cfg, "optimize")
        grid_outer = pick(grid_outer, cfg, "grid_outer")
        min_amp_overlap = pick(min_amp_overlap, cfg, "min_amp_overlap")
        # Order of checks: spec 03 §3.1, then the port's additions.
        if optimize_all:
            raise NotImplementedError(
                "Cancellation.optimize_all=True is reserved (not implemented)"
            )
        if not isinstance(dictionary, Dictionary):
            raise ExperimentError(
                f"Cancellation.dictionary: got {type(dictionary).__name__}; expected a Dictionary"
            )
        self.dictionary = dictionary
        self.target_pair = target_pair_of(dictionary, target_pair, "Cancellation")
        a, b = self.target_pair

        inferred = _encoding_name(dictionary)
        if encoding is None:
            encoding = inferred
        if not isinstance(encoding, str) or encoding not in _ENCODING_NAMES:
            raise ExperimentError(
                f"Cancellation.encoding: got {encoding!r}; allowed {sorted(_ENCODING_NAMES)} "
                "or None (inferred from the dictionary)"
            )
        # "mps" also names the phase-only search on a Rung3 dictionary.
        compatible = {"mps": (MPSRung1, Rung3), "hea": (HEA_Rung2,), "rung3": (Rung3,)}
        if not isinstance(dictionary.encoding, compatible[encoding]):
            raise ExperimentError(
                f"Cancellation.encoding: {encoding!r} needs a "
                f"{' or '.join(c.__name__ for c in compatible[encoding])} dictionary; "
                f"{dictionary.name!r} uses {type(dictionary.encoding).__name__}"
            )
        self.encoding = encoding

        rung3_knobs = [f"{a}.phi", f"{b}.phi", f"{b}.theta_amp", f"{b}.psi_aux"]
        if knobs is None:
            knob_list = rung3_knobs if encoding == "rung3" else [f"{a}.phi", f"{b}.phi"]
        elif isinstance(knobs, str) or not isinstance(knobs, Sequence):
            raise ExperimentError(
                f"Cancellation.knobs: got {knobs!r}; expected a list of knob paths"
            )
        else:
            knob_list = list(knobs)
        if encoding == "rung3" and knob_list != rung3_knobs:
            raise ExperimentError(
                f"Cancellation.knobs: got {knob_list}; the rung-3 joint optimiser searches "
                f"exactly {rung3_knobs}"
            )
        if not knob_list:
            raise ExperimentError("Cancellation.knobs: empty; give at least one knob path")
        self._slots = [dictionary.knob_slots(p) for p in knob_list]  # grammar, ids, no-ops
        dups = sorted({p for p in knob_list if knob_list.count(p) > 1})
        if dups:
            raise ExperimentError(
                f"Cancellation.knobs: {dups} listed more than once; each knob is one axis"
            )
        self.knobs = knob_list
        self.bounds = [KNOB_BOUNDS[parse_knob(p).knob] for p in knob_list]

        if not isinstance(optimize, Mapping):
            raise ExperimentError(
                f"Cancellation.optimize: got {optimize!r}; expected a mapping like "
                "{'method': 'grid', 'max_steps': 50}"
            )
        unknown = sorted(set(optimize) - self._OPTIMIZE_KEYS, key=str)
        if unknown:
            raise ExperimentError(
                f"Cancellation.optimize: unknown key(s) {unknown}; allowed "
                f"{sorted(self._OPTIMIZE_KEYS)}"
            )
        opt = {**DEFAULT_OPTIMIZE, **optimize}
        method = opt["method"]
        if encoding != "rung3" and method not in _METHODS:
            raise ExperimentError(
                f"Cancellation.optimize['method']: got {method!r}; allowed {list(_METHODS)}"
            )
        self.max_steps = _int_option("Cancellation.optimize['max_steps']", opt["max_steps"], 1)
        self.method = "rung3_joint" if encoding == "rung3" else str(method)
        self.optimize = {"method": method, "max_steps": self.max_steps}
        if self.method == "grid" and len(knob_list) > MAX_GRID_KNOBS:
            raise ExperimentError(
                f"Cancellation.knobs: {len(knob_list)} knobs for the grid backend; at most "
                f"{MAX_GRID_KNOBS} (max_steps**k points) — use method='scipy'"
            )

        if (
            not isinstance(grid_outer, Sequence | np.ndarray)
            or isinstance(grid_outer, str)
            or np.ndim(grid_outer) != 1
            or len(grid_outer) != 2
        ):
            raise ExperimentError(
                f"Cancellation.grid_outer: got {grid_outer!r}; expected two integers >= 1"
            )
        self.grid_outer = (
            _int_option("Cancellation.grid_outer[0]", grid_outer[0], 1),
            _int_option("Cancellation.grid_outer[1]", grid_outer[1], 1),
        )
        if isinstance(min_amp_overlap, bool) or not isinstance(min_amp_overlap, Real):
            raise ExperimentError(
                f"Cancellation.min_amp_overlap: got {min_amp_overlap!r}; expected a float in [0, 1]"
            )
        if not 0.0 <= float(min_amp_overlap) <= 1.0:
            raise ExperimentError(
                f"Cancellation.min_amp_overlap: got {min_amp_overlap!r}; must be in [0, 1]"
            )
        if float(min_amp_overlap) > 0 and encoding != "rung3":
            raise ExperimentError(
                f"Cancellation.min_amp_overlap: got {min_amp_overlap!r}; a minimum amp "
                "overlap > 0 applies to encoding='rung3' only"
            )
        self.min_amp_overlap = float(min_amp_overlap)

        if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or math.isnan(tolerance):
            raise ExperimentError(f"Cancellation.tolerance: got {tolerance!r}; expected a number")
        self.tolerance = float(tolerance)
        if not isinstance(preserve_tiers, bool | np.bool_):
            raise ExperimentError(
                f"Cancellation.preserve_tiers: got {preserve_tiers!r}; expected True or False"
            )
        self.preserve_tiers = bool(preserve_tiers)
        if not isinstance(lean, bool | np.bool_):
            raise ExperimentError(f"Cancellation.lean: got {lean!r}; expected True or False")
        if lean and self.method != "grid":
            raise ExperimentError(
                f"Cancellation.lean: applies to the grid backend only, not {self.method!r}"
            )
        self.lean = bool(lean)
        if max_grid_bytes is not None and (
            isinstance(max_grid_bytes, bool)
            or not isinstance(max_grid_bytes, Integral)
            or max_grid_bytes < 0
        ):
            raise ExperimentError(
                f"Cancellation.max_grid_bytes: got {max_grid_bytes!r}; expected a byte "
                "count >= 0 or None"
            )
        self.max_grid_bytes = None if max_grid_bytes is None else int(max_grid_bytes)
        if self.method == "grid":
            self._check_grid_budget()
        elif self.method == "rung3_joint":
            from polygram._rung3_joint import check_joint_budget

            check_joint_budget(self.grid_outer, self.max_steps, self.max_grid_bytes)

    # -- validation helpers ------------------------------------------------
    @property
    def grid_points(self) -> int:
        return int(self.max_steps) ** len(self.knobs)

    def grid_result_bytes(self) -> int:
        """Bytes of the arrays a grid run returns: the ``(P, k+1)`` float64
        trajectory (lean: the ``(P,)`` overlaps) plus the ``(P,)`` bool mask."""
        p, k = self.grid_points, len(self.knobs)
        return p * 8 * (1 if self.lean else k + 1) + p

    def _check_grid_budget(self) -> None:
        p = self.grid_points
        check_result_bytes(
            self.grid_result_bytes(),
            f"Cancellation grid of {self.max_steps}^{len(self.knobs)} = {p:,} points"
            + (" (lean)" if self.lean else ""),
            override=self.max_grid_bytes,
            remedy="use fewer points" if self.lean else "use fewer points, lean=True",
        )

    # -- closed form -------------------------------------------------------
    def structural_floor(self) -> float:
        """``M − |V|`` of the target pair — the phase-only minimum — for an
        MPSRung1 search over exactly ``[A.phi, B.phi]``, or (Rung3) the floor of
        the MPS state with the same α/β/γ.  Otherwise NotImplementedError."""
        d = self.dictionary
        a, b = self.target_pair
        enc = d.encoding
        if isinstance(enc, Rung3):
            table = np.ascontiguousarray(d.knob_table[:, : MPSRung1().width])
            floor = MPSRung1().encoder.branch_law(table)[2]
        elif isinstance(enc, MPSRung1) and self.knobs == [f"{a}.phi", f"{b}.phi"]:
            floor = d.branch_law()[2]
        else:
            raise NotImplementedError(
                f"structural_floor: defined for MPSRung1 with knobs exactly "
                f"['{a}.phi', '{b}.phi'] or for Rung3; got {type(enc).__name__} with "
                f"knobs {self.knobs}"
            )
        return float(floor[d.feature_index(a), d.feature_index(b)])

    # -- running -----------------------------------------------------------
    def run(self) -> CancellationResult:
        """Run the search of ``self.method`` and package the result."""
        return getattr(self, self._RUNNERS[self.method])()  # type: ignore[no-any-return]

    def _run_rung3(self) -> CancellationResult:
        # The joint (φ_A, φ_B, θ_b, ψ_b) search lives in _rung3_joint (spec 03 §3.5).
        from polygram._rung3_joint import run_rung3_joint

        s = run_rung3_joint(
            self.dictionary,
            self.target_pair,
            max_steps=self.max_steps,
            grid_outer=self.grid_outer,
            min_amp_overlap=self.min_amp_overlap,
            preserve_tiers=self.preserve_tiers,
            max_grid_bytes=self.max_grid_bytes,
        )
        return self._result(
            s.values,
            after_overlap=s.after_overlap,
            trajectory=s.trajectory,
            overlaps=s.trajectory[:, -1],
            feasible=s.feasible,
            axes={},
            best_index=s.best_index,
            theta_amp_optimum=s.theta_amp_optimum,
            psi_aux_optimum=s.psi_aux_optimum,
        )

    def axis_values(self) -> list[np.ndarray]:
        """Grid axes: ``np.linspace(lo, hi, max_steps)`` per knob (both ends included)."""
        return [np.linspace(lo, hi, self.max_steps) for lo, hi in self.bounds]

    def _scan(self, values: Sequence[np.ndarray]) -> Any:
        d = self.dictionary
        return _core.Scan(
            d.encoding.encoder,
            d.knob_table,
            self._slots,
            list(values),
            d.cluster_ids,
            len(d.hierarchy),
        )

    @property
    def _target_index(self) -> tuple[int, int]:
        a, b = self.target_pair
        return self.dictionary.feature_index(a), self.dictionary.feature_index(b)

    def _run_grid(self) -> CancellationResult:
        self._check_grid_budget()  # the env override may have changed since __init__
        axes = self.axis_values()
        n, k = self.max_steps, len(axes)
        overlaps, feasible, _, best = self._scan(axes).grid(
            self._target_index, self.preserve_tiers, with_knobs=False
        )
        best = int(best)
        trajectory: np.ndarray | None = None
        if not self.lean:
            # Knob columns by broadcasting the axes over the (n,)*k grid: no
            # per-point Python and no (P, k) temporary from the kernel.
            trajectory = np.empty((n**k, k + 1))
            grid_view = trajectory.reshape((n,) * k + (k + 1,))
            for i, ax in enumerate(axes):
                shape = [1] * k
                shape[i] = n
                grid_view[..., i] = ax.reshape(shape)
            trajectory[:, k] = overlaps
            del overlaps
            overlaps = trajectory[:, k]
        point = np.unravel_index(best, (n,) * k)
        values = [float(ax[i]) for ax, i in zip(axes, point)]
        return self._result(
            values,
            after_overlap=float(overlaps[best]),
            trajectory=trajectory,
            overlaps=overlaps,
            feasible=feasible,
            axes=dict(zip(self.knobs, axes)),
            best_index=best,
        )

    def evaluate(self, values: Sequence[float] | np.ndarray) -> tuple[float, bool]:
        """Exact ``(|G_AB|², feasible)`` at one knob point — the kernel the grid uses."""
        o, f, _, _ = self._scan([np.array([float(v)]) for v in values]).grid(
            self._target_index, self.preserve_tiers, with_knobs=False
        )
        return float(o[0]), bool(f[0])

    def _run_scipy(self) -> CancellationResult:
        try:
            from scipy.optimize import differential_evolution
        except ImportError:
            raise missing("scipy", "opt", "Cancellation(method='scipy')") from None
        rows: list[list[float]] = []
        feas: list[bool] = []

        def objective(x: np.ndarray) -> float:
            o, ok = self.evaluate(x)
            rows.append([*map(float, x), o])
            feas.append(ok)
            return o + (0.0 if ok else PENALTY)

        # Exactly the reference arguments: one point per call (no vectorized /
        # workers), everything else at scipy's defaults.
        res = differential_evolution(
            objective, self.bounds, seed=0, maxiter=self.max_steps, polish=False
        )
        trajectory = np.array(rows, dtype=np.float64).reshape(-1, len(self.knobs) + 1)
        mask = np.array(feas, dtype=bool)
        k = len(self.knobs)
        best: int | None = None
        if self.preserve_tiers and mask.any():
            cand = np.flatnonzero(mask)
            best = int(cand[np.argmin(trajectory[cand, k])])  # first on ties
            values = [float(v) for v in trajectory[best, :k]]
            after = float(trajectory[best, k])
        else:
            values = [float(v) for v in res.x]
            after = self.evaluate(values)[0]
        return self._result(
            values,
            after_overlap=after,
            trajectory=trajectory,
            overlaps=trajectory[:, k],
            feasible=mask,
            axes={},
            best_index=best,
        )

    def _efficiency(self, before: float, after: float, floor: float) -> float | None:
        if math.isnan(floor) or before - floor < NO_GAP:
            return None
        return float(np.clip((before - after) / (before - floor), 0.0, 1.0))

    def _result(
        self,
        values: Sequence[float],
        *,
        after_overlap: float,
        trajectory: np.ndarray | None,
        overlaps: np.ndarray,
        feasible: np.ndarray,
        axes: dict[str, np.ndarray],
        best_index: int | None,
        theta_amp_optimum: float = math.nan,
        psi_aux_optimum: float = math.nan,
        method: str | None = None,
    ) -> CancellationResult:
        """Package a search outcome: optimum dictionary, Grams, floor, efficiency."""
        d = self.dictionary
        ia, ib = self._target_index
        knobs = dict(zip(self.knobs, (float(v) for v in values)))
        at_opt = d.with_knobs(knobs).renamed(f"{d.name}_at_optimum")
        before_gram = d.gram()
        before = float(abs(before_gram[ia, ib]) ** 2)
        try:
            floor = self.structural_floor()
        except NotImplementedError:
            floor = math.nan
        for arr in (overlaps, feasible, *axes.values()):
            arr.flags.writeable = False
        if trajectory is not None:
            trajectory.flags.writeable = False
        return CancellationResult(
            optimized_knobs=knobs,
            before_gram=before_gram,
            after_gram=at_opt.gram(),
            before_overlap=before,
            after_overlap=after_overlap,
            tolerance_met=bool(after_overlap < self.tolerance),
            method=method or self.method,
            trajectory=trajectory,
            feasible_mask=feasible,
            feasible_count=int(np.count_nonzero(feasible)),
            dictionary_at_optimum=at_opt,
            target_pair=self.target_pair,
            knobs=list(self.knobs),
            structural_floor=floor,
            cancellation_efficiency=self._efficiency(before, after_overlap, floor),
            theta_amp_optimum=theta_amp_optimum,
            psi_aux_optimum=psi_aux_optimum,
            overlaps=overlaps,
            axes=axes,
            best_index=best_index,
            lean=self.lean,
        )

    def __repr__(self) -> str:
        return (
            f"Cancellation({self.dictionary.name!r}, target_pair={self.target_pair}, "
            f"method={self.method!r}, max_steps={self.max_steps}, knobs={self.knobs}, "
            f"preserve_tiers={self.preserve_tiers}{', lean=True' if self.lean else ''})"
        )
