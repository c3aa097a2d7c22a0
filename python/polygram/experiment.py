"""Experiment, InterferenceSweep and ExperimentResult (spec 02 §2.5).

A sweep is one call into the Rust core: the knob table, the flat cells each
axis writes and the axis values go in; every point's Gram, Schmidt ranks and
tier statistics come back as dense arrays shaped like the grid.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polygram import _core
from polygram._budget import check_result_bytes
from polygram._io import atomic_write_bytes, atomic_write_text, ensure_dir
from polygram.dictionary import Dictionary
from polygram.encoding import HEA_Rung2
from polygram.errors import ExperimentError, UnknownFeatureError

__all__ = ["ASSERTIONS", "MEASURES", "Experiment", "ExperimentResult", "InterferenceSweep"]

MEASURES = ("overlap", "gram_matrix", "schmidt_rank")
#: Also the fixed column order of the CSV and of ``assertion_pass``.
ASSERTIONS = (
    "hierarchical_ordering_preserved",
    "concept_gram_tier_separation_bound_holds",
    "target_pair_destructive_at_endpoint",
)
DESTRUCTIVE_THRESHOLD = 0.1
TIERS = ("self", "sibling", "cross_cluster")


def target_pair_of(d: Dictionary, pair: object, owner: str) -> tuple[str, str]:
    """Validate a target pair: two distinct feature names of ``d``."""
    if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
        raise ExperimentError(f"{owner}.target_pair: got {pair!r}; expected two feature names")
    a, b = pair
    for x in (a, b):
        try:
            d.feature_index(x)
        except UnknownFeatureError:
            raise ExperimentError(
                f"{owner}.target_pair: unknown feature {x!r}; features: {d.feature_names}"
            ) from None
    if a == b:
        raise ExperimentError(
            f"{owner}.target_pair: ({a!r}, {b!r}) names one feature twice; "
            "a pair needs two different features"
        )
    return str(a), str(b)


def _axis(key: str, values: object) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExperimentError(f"sweep[{key!r}]: values are not numeric: {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ExperimentError(
            f"sweep[{key!r}]: shape {arr.shape}; expected a non-empty 1-D array of values"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ExperimentError(
            f"sweep[{key!r}]: value {arr[bad][0]!r} at index {int(np.argmax(bad))}; "
            "knob values must be finite"
        )
    arr.flags.writeable = False
    return arr


class Experiment:
    """An interference experiment: a dictionary, a target pair and a sweep of
    knob paths (each key one axis of a Cartesian grid, C order)."""

    def __init__(
        self,
        name: str,
        dictionary: Dictionary,
        target_pair: tuple[str, str],
        sweep: Mapping[str, Any],
        measures: Sequence[str] | None = None,
        assertions: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(dictionary, Dictionary):
            raise ExperimentError(f"Experiment.dictionary: got {type(dictionary).__name__}")
        if not isinstance(name, str) or not name:
            raise ExperimentError(f"Experiment.name: got {name!r}; expected a non-empty string")
        self.name = name
        self.dictionary = dictionary
        self.target_pair = target_pair_of(dictionary, target_pair, "Experiment")
        self.measures = list(measures) if measures is not None else ["overlap", "gram_matrix"]
        for m in self.measures:
            if m not in MEASURES:
                raise ExperimentError(
                    f"Experiment.measures: unknown {m!r}; allowed {list(MEASURES)}"
                )
        self.assertions = list(assertions or [])
        for a in self.assertions:
            if a not in ASSERTIONS:
                raise ExperimentError(
                    f"Experiment.assertions: unknown {a!r}; allowed {list(ASSERTIONS)}"
                )
        enc = dictionary.encoding
        if "concept_gram_tier_separation_bound_holds" in self.assertions and (
            not isinstance(enc, HEA_Rung2) or enc.tier_separation_bound is None
        ):
            raise ExperimentError(
                "Experiment.assertions: 'concept_gram_tier_separation_bound_holds' needs an "
                f"encoding with a tier_separation_bound; {enc!r} has none"
            )
        if not isinstance(sweep, Mapping):
            raise ExperimentError(
                f"Experiment.sweep: got {type(sweep).__name__}; expected a mapping"
            )
        self.sweep: dict[str, np.ndarray] = {}
        for key, values in sweep.items():
            dictionary.knob_slots(key)  # grammar, identifier, no-op writes
            self.sweep[key] = _axis(key, values)
        self.seed = seed

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.sweep.values())

    def run(self, backend: str = "analytic", shots: int = 0) -> ExperimentResult:
        if backend != "analytic":
            raise NotImplementedError(f"backend {backend!r}: only 'analytic' exists")
        return InterferenceSweep(self).run()

    def dictionary_at(self, index: Sequence[int]) -> Dictionary:
        """The base dictionary with every axis written at ``index``."""
        return self.dictionary.with_knobs(
            {k: float(v[i]) for (k, v), i in zip(self.sweep.items(), index)}
        )

    def materialize(self, output_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``<name>.q.orca.md`` (the dictionary at the sweep midpoint), a
        stand-alone runner ``run_<name>.py`` and ``<name>_summary.md``."""
        from polygram._runner import render_runner
        from polygram.qorca import write_qorca

        out = ensure_dir(output_dir)
        mid = self.dictionary_at([len(v) // 2 for v in self.sweep.values()])
        runner = render_runner(
            name=self.name,
            dictionary=self.dictionary,
            sweep=self.sweep,
            target_pair=self.target_pair,
            measures=self.measures,
            assertions=self.assertions,
            seed=self.seed,
        )
        return {
            "machine": write_qorca(mid, out / f"{self.name}.q.orca.md"),
            "runner": atomic_write_text(out / f"run_{self.name}.py", runner),
            "summary": atomic_write_text(out / f"{self.name}_summary.md", self.summary_header()),
        }

    def summary_header(self) -> str:
        d = self.dictionary
        a, b = self.target_pair
        lines = [
            f"# {self.name}",
            "",
            f"- dictionary: `{d.name}` ({len(d.features)} features, {len(d.hierarchy)} clusters)",
            f"- target pair: `{a}` × `{b}`",
            "- backend: analytic",
            f"- seed: {self.seed}",
            "",
            "## Sweep axes",
            "",
            "| Axis | n_points | min | max |",
            "|------|----------|-----|-----|",
            *[
                f"| `{k}` | {len(v)} | {v.min():.4f} | {v.max():.4f} |"
                for k, v in self.sweep.items()
            ],
            "",
            "## Measures",
            "",
            ", ".join(f"`{m}`" for m in self.measures),
            "",
            "## Assertions",
            "",
            ", ".join(f"`{a}`" for a in self.assertions) if self.assertions else "_(none)_",
        ]
        return "\n".join(lines) + "\n"


class InterferenceSweep:
    """Runs an Experiment's grid with one call into the Rust core."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment

    def run(self) -> ExperimentResult:
        exp = self.experiment
        d = exp.dictionary
        n, dims = len(d.features), exp.shape
        points = math.prod(dims)
        check_result_bytes(points * (n * n * 16 + n * 9 + 40), f"sweep of {points:,} points")
        a, b = (d.feature_index(x) for x in exp.target_pair)
        scan = _core.Scan(
            d.encoding.encoder,
            d.knob_table,
            [d.knob_slots(k) for k in exp.sweep],
            list(exp.sweep.values()),
            d.cluster_ids,
            len(d.hierarchy),
        )
        gram, ranks, stats = scan.sweep((a, b))
        overlaps = stats[:, 0].reshape(dims)
        passes: dict[str, np.ndarray] = {}
        for name in ASSERTIONS:
            if name not in exp.assertions:
                continue
            if name == "hierarchical_ordering_preserved":
                passes[name] = (stats[:, 4] > 0.5).reshape(dims)
            elif name == "concept_gram_tier_separation_bound_holds":
                bound = d.encoding.tier_separation_bound  # type: ignore[union-attr]
                assert bound is not None  # checked at construction
                sep = stats[:, 3]
                passes[name] = (np.isnan(sep) | (sep >= bound)).reshape(dims)
            else:
                end = bool(stats[-1, 0] < DESTRUCTIVE_THRESHOLD)
                passes[name] = np.full(dims or (1,), end)
        members = [len(m) for m in d.hierarchy.values()]
        tier_sep = None
        if not all(k == 1 for k in members):
            # NaN (no cluster with two members) is stored as 0.0, as in 0.0.1.
            tier_sep = stats[:, 3].reshape(dims).copy()
            tier_sep[np.isnan(tier_sep)] = 0.0
        return ExperimentResult(
            sweep_axes=dict(exp.sweep),
            gram_matrices=gram.reshape((*dims, n, n)),
            overlaps=overlaps,
            schmidt_ranks=ranks.astype(np.int64).reshape((*dims, n)),
            assertion_pass=passes,
            tier_stats={
                "self": np.ones(dims),
                "sibling": stats[:, 1].reshape(dims),
                "cross_cluster": stats[:, 2].reshape(dims),
            },
            target_pair=exp.target_pair,
            dictionary_name=d.name,
            tier_separation=tier_sep,
        )


def _num(x: float) -> str:
    """A float the way Python's repr writes it (``0.0``, ``1e-05``, ``nan``)."""
    return repr(float(x))


@dataclass(frozen=True, eq=False)
class ExperimentResult:
    """Dense arrays shaped like the sweep grid (C order, first key slowest)."""

    sweep_axes: dict[str, np.ndarray]
    gram_matrices: np.ndarray
    overlaps: np.ndarray
    schmidt_ranks: np.ndarray
    assertion_pass: dict[str, np.ndarray]
    tier_stats: dict[str, np.ndarray]
    target_pair: tuple[str, str]
    dictionary_name: str
    tier_separation: np.ndarray | None = field(default=None)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.sweep_axes.values())

    @property
    def sweep_keys(self) -> list[str]:
        return list(self.sweep_axes)

    def grid(self) -> list[np.ndarray]:
        """Knob values at every point, one array per axis (``np.meshgrid``, ij)."""
        return list(np.meshgrid(*self.sweep_axes.values(), indexing="ij"))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Compressed ``.npz`` with every array (spec 02 §2.5.2).  As with
        ``numpy.savez_compressed``, ``.npz`` is appended to a path that does
        not end with it; the path written is returned."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        arrays: dict[str, np.ndarray] = {
            "gram_matrices": self.gram_matrices,
            "overlaps": self.overlaps,
            "schmidt_ranks": self.schmidt_ranks,
            "sweep_keys": np.array(self.sweep_keys, dtype=str),
        }
        arrays |= {f"axis_{k}": v for k, v in self.sweep_axes.items()}
        arrays |= {f"assert_{k}": v for k, v in self.assertion_pass.items()}
        arrays |= {f"tier_{k}": v for k, v in self.tier_stats.items()}
        if self.tier_separation is not None:
            arrays["tier_separation"] = self.tier_separation
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return atomic_write_bytes(path, buf.getvalue())

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = [*self.sweep_keys, "overlap", "tier_self", "tier_sibling", "tier_cross_cluster"]
        if self.tier_separation is not None:
            cols.append("tier_separation")
        cols += list(self.assertion_pass)
        w.writerow(cols)
        flat = [g.ravel() for g in self.grid()]
        series = [
            self.overlaps.ravel(),
            *(self.tier_stats[t].ravel() for t in TIERS),
        ]
        if self.tier_separation is not None:
            series.append(self.tier_separation.ravel())
        # An endpoint assertion of an axis-less sweep has shape (1,), overlaps ().
        checks = [
            np.broadcast_to(np.ravel(v), (self.overlaps.size,))
            for v in self.assertion_pass.values()
        ]
        for i in range(self.overlaps.size):
            w.writerow(
                [_num(x[i]) for x in flat]
                + [_num(s[i]) for s in series]
                + ["1" if c[i] else "0" for c in checks]
            )
        return buf.getvalue()

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per grid point: knob values, overlap, tier means, assertions."""
        return atomic_write_text(path, self.csv_text())

    def plot(self, path: str | os.PathLike[str], kind: str = "overlap") -> Path:
        """1-D: overlap with sibling / cross-cluster baselines; 2-D: heatmap."""
        from polygram.plotting import plot_sweep

        return plot_sweep(self, path, kind=kind)

    def summary_text(self) -> str:
        def stat(v: np.ndarray) -> tuple[str, str, str]:
            v = np.asarray(v, dtype=float).ravel()
            v = v[~np.isnan(v)]
            if v.size == 0:
                return ("n/a", "n/a", "n/a")
            return (f"{v.min():.4f}", f"{v.mean():.4f}", f"{v.max():.4f}")

        lines = [
            "## Run results",
            "",
            "### Tier rollup (mean over sweep)",
            "",
            "| Tier | min | mean | max |",
            "|------|-----|------|-----|",
            *[f"| {t} | {' | '.join(stat(self.tier_stats[t]))} |" for t in TIERS],
            "",
            "### Target overlap",
            "",
        ]
        lo, mean, hi = stat(self.overlaps)
        lines += [f"- min: {lo}", f"- mean: {mean}", f"- max: {hi}"]
        if self.assertion_pass:
            lines += [
                "",
                "### Assertion pass-rate",
                "",
                "| Assertion | passes | total | rate |",
                "|-----------|--------|-------|------|",
            ]
            for name, v in self.assertion_pass.items():
                passes, total = int(np.sum(v)), int(np.size(v))
                lines.append(f"| {name} | {passes} | {total} | {format(passes / total, '.0%')} |")
        return "\n".join(lines) + "\n"

    def write_summary(self, path: str | os.PathLike[str]) -> Path:
        """Append the ``## Run results`` section to a summary file."""
        p = Path(path)
        old = p.read_text(encoding="utf-8") if p.exists() else ""
        sep = "\n" if old.strip() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        return atomic_write_text(p, old + sep + self.summary_text())
