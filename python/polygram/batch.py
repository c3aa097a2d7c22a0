"""Batch cancellation over the top edges of a feature graph (spec 06 §6.3).

``BatchExperiment(dictionary, graph).run()`` takes the first ``top_k`` edges
of a :class:`~polygram.analysis.FeatureGraph` (graph order), runs one
phase-grid :class:`~polygram.Cancellation` per edge (``preserve_tiers=False``,
50 steps per knob), optionally materialises each optimum into
``<output_dir>/<source>_x_<target>/`` and collects a :class:`BatchRun` per
edge.  ``polygram batch`` is the command-line front end; docs/batch.md has the
JSON schema.

Flat searches: when no value of the knobs can move the pair's overlap (the
default ``cluster_shared`` list on an intra-cluster MPS edge is a single
``<cluster>.phi`` that writes both endpoints together), the run is still done
and materialised, but its efficiency is reported as 0 and ``BatchRun.warning``
says why, instead of a round-off quotient like 1e-16.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram._io import atomic_write_text, ensure_dir
from polygram.cancellation import Cancellation
from polygram.dictionary import Dictionary
from polygram.encoding import HEA_Rung2, Rung3
from polygram.errors import ExperimentError

if TYPE_CHECKING:  # the analysis layer loads on first use, not on `import polygram`
    from polygram.analysis.graphs import FeatureEdge, FeatureGraph

__all__ = [
    "BATCH_MAX_STEPS",
    "FLAT_SEARCH_TOL",
    "KNOB_MODES",
    "BatchExperiment",
    "BatchResults",
    "BatchRun",
    "edge_knobs",
]

#: ``knobs=`` choices: one shared knob per touched cluster, or one per endpoint.
KNOB_MODES = ("cluster_shared", "per_feature")
#: Grid steps per knob (Cancellation's default grid).
BATCH_MAX_STEPS = 50
#: A search whose overlaps span less than this is flat: no knob value moves the pair.
FLAT_SEARCH_TOL = 1e-12
#: Gaps at or below this give efficiency 0 (nothing to close).
_NO_GAP = 1e-12

_CSV_COLUMNS = (
    "source",
    "target",
    "predicted_floor",
    "predicted_gap",
    "current_overlap",
    "achieved_overlap",
    "cancellation_efficiency",
    "tier_separation_after",
    "best_knobs",
    "artifact_subpath",
    "seconds",
    "warning",
)


def _sig6(x: float) -> float | None:
    """6 significant digits; non-finite → None (JSON has no NaN)."""
    v = float(x)
    return float(f"{v:.6g}") if math.isfinite(v) else None


def _rounded(obj: Any) -> Any:
    """Round every float in a JSON-like tree to 6 significant digits."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, float | np.floating):
        return _sig6(float(obj))
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, Mapping):
        return {str(k): _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    raise TypeError(f"cannot serialise {type(obj).__name__} in batch results")


def _theta_slot(d: Dictionary) -> str:
    """The θ slot batch knobs write on HEA: layer 0, the Rz row if there is one."""
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2)
    r = enc.rotations.index("Rz") if "Rz" in enc.rotations else 0
    q = 1 if enc.n_qubits >= 2 else 0
    return f"theta[{r},0,{q}]"


def edge_knobs(dictionary: Dictionary, source: str, target: str, mode: str) -> list[str]:
    """Knob paths the batch searches for one edge (spec 06 §6.3).

    ``cluster_shared``: the source's cluster, then the target's if different;
    ``per_feature``: the two endpoints.  The knob is ``.phi`` on MPSRung1 and
    Rung3, the ``.theta[r,0,q]`` slot on HEA_Rung2.
    """
    if mode not in KNOB_MODES:
        raise ExperimentError(f"BatchExperiment.knobs: got {mode!r}; allowed {list(KNOB_MODES)}")
    knob = _theta_slot(dictionary) if isinstance(dictionary.encoding, HEA_Rung2) else "phi"
    if mode == "per_feature":
        idents = [source, target]
    else:
        idents = [dictionary.feature(source).cluster]
        tc = dictionary.feature(target).cluster
        if tc != idents[0]:
            idents.append(tc)
    return [f"{i}.{knob}" for i in idents]


def _flat_reason(d: Dictionary, source: str, target: str, knobs: list[str], span: float) -> str:
    a, b = d.feature(source), d.feature(target)
    if (
        not isinstance(d.encoding, HEA_Rung2)
        and len(knobs) == 1
        and knobs[0] == f"{a.cluster}.phi"
        and a.cluster == b.cluster
    ):
        return (
            f"{source} x {target}: the only knob {knobs[0]!r} writes the same phi on both "
            f"endpoints (one cluster), which cannot change their overlap on "
            f"{type(d.encoding).__name__}; efficiency reported as 0; per_feature knobs can tune "
            "this pair"
        )
    return (
        f"{source} x {target}: no value of {knobs} changes this pair's overlap "
        f"(grid span {span:.1e}); efficiency reported as 0"
    )


@dataclass(frozen=True)
class BatchRun:
    """One edge's cancellation.  ``cancellation_efficiency`` is
    ``(current − achieved) / predicted_gap``, unclamped, 0 when the gap is
    ≤ 1e-12 or the search is flat (then ``warning`` says why)."""

    source: str
    target: str
    predicted_floor: float
    predicted_gap: float
    current_overlap: float
    achieved_overlap: float
    cancellation_efficiency: float
    best_knobs: Mapping[str, float]
    tier_separation_after: float | None
    artifact_subpath: str | None
    seconds: float
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``runs[]`` entry of the results JSON (unrounded; no timing)."""
        return {
            "achieved_overlap": self.achieved_overlap,
            "artifact_subpath": self.artifact_subpath,
            "best_knobs": dict(self.best_knobs),
            "cancellation_efficiency": self.cancellation_efficiency,
            "current_overlap": self.current_overlap,
            "predicted_floor": self.predicted_floor,
            "predicted_gap": self.predicted_gap,
            "source": self.source,
            "target": self.target,
            "tier_separation_after": self.tier_separation_after,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class BatchResults:
    """Every run of a batch plus what produced it."""

    source_graph: FeatureGraph
    dictionary_name: str
    knobs: str
    created_at: str
    runs: tuple[BatchRun, ...]
    output_dir: Path | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The results JSON as an object, numbers rounded to 6 significant digits."""
        return _rounded(
            {
                "created_at": self.created_at,
                "dictionary_name": self.dictionary_name,
                "knobs": self.knobs,
                "runs": [r.to_dict() for r in self.runs],
                "source_graph": self.source_graph.to_dict(),
            }
        )  # type: ignore[no-any-return]

    def json_text(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the results JSON (compact, keys sorted) atomically."""
        return atomic_write_text(path, self.json_text())

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_CSV_COLUMNS)
        for r in self.runs:
            d = _rounded({**r.to_dict(), "seconds": r.seconds})
            d["best_knobs"] = json.dumps(d["best_knobs"], sort_keys=True, separators=(",", ":"))
            w.writerow(["" if d[c] is None else d[c] for c in _CSV_COLUMNS])
        return buf.getvalue()

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per run (``best_knobs`` as a compact JSON cell), atomically."""
        return atomic_write_text(path, self.csv_text())


def _load_graph(graph: object) -> FeatureGraph:
    from polygram.analysis.graphs import FeatureGraph

    if isinstance(graph, FeatureGraph):
        return graph
    if isinstance(graph, Mapping):
        return FeatureGraph.from_json(graph)
    if isinstance(graph, str | os.PathLike):
        return FeatureGraph.from_json(Path(graph).read_text(encoding="utf-8"))
    raise ExperimentError(
        f"BatchExperiment.feature_graph: got {type(graph).__name__}; expected a FeatureGraph, "
        "its parsed JSON object or a path to its JSON"
    )


class BatchExperiment:
    """Cancel the overlap of each of the first ``top_k`` edges of a feature graph.

    ``output_dir=None`` computes only (``artifact_subpath`` None); otherwise
    every optimum is materialised into ``<output_dir>/<source>_x_<target>/``.
    Every edge is validated (features, knob paths) before anything runs.
    """

    def __init__(
        self,
        dictionary: Dictionary,
        feature_graph: FeatureGraph | Mapping[str, Any] | str | os.PathLike[str],
        *,
        top_k: int = 8,
        knobs: str = "cluster_shared",
        output_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(dictionary, Dictionary):
            raise ExperimentError(
                f"BatchExperiment.dictionary: got {type(dictionary).__name__}; "
                "expected a Dictionary"
            )
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
            raise ExperimentError(f"BatchExperiment.top_k: got {top_k!r}; expected an int >= 1")
        if knobs not in KNOB_MODES:
            raise ExperimentError(
                f"BatchExperiment.knobs: got {knobs!r}; allowed {list(KNOB_MODES)}"
            )
        self.dictionary = dictionary
        self.feature_graph = _load_graph(feature_graph)
        self.top_k = int(top_k)
        self.knobs = knobs
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.edges: tuple[FeatureEdge, ...] = self.feature_graph.edges[: self.top_k]
        self._searches = [self._search(e) for e in self.edges]

    def _search(self, e: FeatureEdge) -> Cancellation:
        d = self.dictionary
        where = f"feature graph edge {e.source} x {e.target}"
        for name in (e.source, e.target):
            if name not in d.feature_names:
                raise ExperimentError(
                    f"{where}: {name!r} is not a feature of dictionary {d.name!r} "
                    f"(features: {d.feature_names})"
                )
        twins = [x for x in self.edges if (x.source, x.target) == (e.source, e.target)]
        if len(twins) > 1:
            raise ExperimentError(f"{where}: listed {len(twins)} times; artifacts would collide")
        return Cancellation(
            d,
            (e.source, e.target),
            preserve_tiers=False,
            optimize={"method": "grid", "max_steps": BATCH_MAX_STEPS},
            knobs=edge_knobs(d, e.source, e.target, self.knobs),
            # On Rung3 the batch is the phase-only search, not the joint optimiser.
            encoding="mps" if isinstance(d.encoding, Rung3) else None,
        )

    def run(self, progress: Callable[[int, int, BatchRun], None] | None = None) -> BatchResults:
        """Run every edge in graph order; ``progress(i, k, run)`` after each (1-based)."""
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = None if self.output_dir is None else ensure_dir(self.output_dir)
        runs: list[BatchRun] = []
        k = len(self.edges)
        for i, (edge, search) in enumerate(zip(self.edges, self._searches), start=1):
            t0 = time.perf_counter()
            res = search.run()
            subpath = None
            if out is not None:
                subpath = f"{edge.source}_x_{edge.target}"
                res.materialize(out / subpath)
            span = float(np.ptp(res.overlaps)) if res.overlaps.size else 0.0
            warning = None
            if span < FLAT_SEARCH_TOL:
                warning = _flat_reason(
                    self.dictionary, edge.source, edge.target, search.knobs, span
                )
                eff = 0.0
            elif edge.gap <= _NO_GAP:
                eff = 0.0
            else:
                eff = (res.before_overlap - res.after_overlap) / edge.gap
            run = BatchRun(
                source=edge.source,
                target=edge.target,
                predicted_floor=edge.floor,
                predicted_gap=edge.gap,
                current_overlap=res.before_overlap,
                achieved_overlap=res.after_overlap,
                cancellation_efficiency=float(eff),
                best_knobs=dict(res.optimized_knobs),
                tier_separation_after=res.dictionary_at_optimum.tier_separation(),
                artifact_subpath=subpath,
                seconds=time.perf_counter() - t0,
                warning=warning,
            )
            runs.append(run)
            if progress is not None:
                progress(i, k, run)
        return BatchResults(
            source_graph=self.feature_graph,
            dictionary_name=self.dictionary.name,
            knobs=self.knobs,
            created_at=created,
            runs=tuple(runs),
            output_dir=out,
        )

    def __repr__(self) -> str:
        return (
            f"BatchExperiment({self.dictionary.name!r}, {self.feature_graph.kind} graph, "
            f"{len(self.edges)} of {len(self.feature_graph.edges)} edges, knobs={self.knobs!r})"
        )
