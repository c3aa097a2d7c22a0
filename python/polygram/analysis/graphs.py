"""Feature graphs over a triage prediction (spec 05 §5.3).

* **sharing** — pairs whose overlap phases can cut a lot (relative to where
  it is now), within a cluster by default and only when the floor is low;
* **separation** — pairs that stay overlapping whatever the phases (the
  floor itself), across clusters by default.

Both builders are pure functions of ``TriagePrediction.pairs``.  The JSON
form (``to_json``) is compact with keys sorted at every level; every key,
number and ordering in it is part of the contract except the human-readable
``metadata.formula``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from polygram.analysis.triage import PairPrediction, TriagePrediction
from polygram.errors import AnalysisError

__all__ = [
    "FLOOR_BLOCK",
    "SEPARATION_FORMULA",
    "SHARING_FORMULA",
    "FeatureEdge",
    "FeatureGraph",
    "build_separation_graph",
    "build_sharing_graph",
    "render_feature_graph_section",
]

#: A pair whose structural floor is above this cannot share a phase knob usefully.
FLOOR_BLOCK = 0.5

SHARING_FORMULA = (
    "weight = 0 when the pair spans two clusters and allow_cross_cluster is off\n"
    "weight = 0 when structural_floor > FLOOR_BLOCK (0.5)\n"
    "otherwise weight = clip(cancellation_gap / max(current_overlap, 1e-12), 0, 1)\n"
    "an edge is kept when weight > 0 and weight >= threshold"
)
SEPARATION_FORMULA = (
    "weight = 0 when both features share a cluster and include_within_cluster is off\n"
    "otherwise weight = clip(structural_floor, 0, 1)\n"
    "an edge is kept when weight > 0 and weight >= threshold"
)

_KINDS = ("sharing", "separation")
_TOP_KEYS = ("clusters", "edges", "kind", "metadata", "nodes")
_EDGE_KEYS = ("floor", "gap", "is_cross_cluster", "reason", "source", "target", "weight")


def _tie_key(x: float) -> float:
    # Weights equal up to rounding of the closed form (e.g. four identical
    # cross pairs) must sort as ties, i.e. by name.
    return round(x, 12)


@dataclass(frozen=True)
class FeatureEdge:
    """One kept pair: ``source``/``target`` are the pair's features in
    dictionary order; ``reason`` says which rule produced the weight."""

    source: str
    target: str
    weight: float
    floor: float
    gap: float
    is_cross_cluster: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _EDGE_KEYS}


@dataclass(frozen=True)
class FeatureGraph:
    """Kept edges, all nodes (dictionary order) and the connected components
    of the kept edges (singletons included)."""

    kind: str
    nodes: tuple[str, ...]
    edges: tuple[FeatureEdge, ...]
    clusters: tuple[tuple[str, ...], ...]
    metadata: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "clusters": [list(c) for c in self.clusters],
            "edges": [e.to_dict() for e in self.edges],
            "kind": self.kind,
            "metadata": dict(self.metadata),
            "nodes": list(self.nodes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> FeatureGraph:
        """Parse ``to_json`` output (a string or an already-parsed object)."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise AnalysisError(f"feature graph JSON: invalid JSON ({e})") from None
        if not isinstance(data, Mapping):
            raise AnalysisError(
                f"feature graph JSON: got {type(data).__name__}; expected an object"
            )
        lacking = [k for k in _TOP_KEYS if k not in data]
        if lacking:
            raise AnalysisError(
                f"feature graph JSON: missing key(s) {lacking}; required: {list(_TOP_KEYS)}"
            )
        try:
            edges = []
            for i, entry in enumerate(data["edges"]):
                miss = [k for k in _EDGE_KEYS if k not in entry]
                if miss:
                    raise AnalysisError(f"feature graph JSON: edges[{i}] lacks {miss}")
                edges.append(
                    FeatureEdge(
                        source=str(entry["source"]),
                        target=str(entry["target"]),
                        weight=float(entry["weight"]),
                        floor=float(entry["floor"]),
                        gap=float(entry["gap"]),
                        is_cross_cluster=bool(entry["is_cross_cluster"]),
                        reason=str(entry["reason"]),
                    )
                )
            return cls(
                kind=str(data["kind"]),
                nodes=tuple(str(n) for n in data["nodes"]),
                edges=tuple(edges),
                clusters=tuple(tuple(str(n) for n in c) for c in data["clusters"]),
                metadata=dict(data["metadata"]),
            )
        except (TypeError, ValueError) as e:
            if isinstance(e, AnalysisError):
                raise
            raise AnalysisError(f"feature graph JSON: malformed content ({e})") from None


def _components(
    nodes: tuple[str, ...], edges: Iterable[FeatureEdge]
) -> tuple[tuple[str, ...], ...]:
    parent = {n: n for n in nodes}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for e in edges:
        a, b = root(e.source), root(e.target)
        if a != b:
            lo, hi = sorted((a, b))
            parent[hi] = lo  # the lexicographically smaller name is the root
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(root(n), []).append(n)
    comps = [tuple(sorted(g)) for g in groups.values()]
    return tuple(sorted(comps, key=lambda c: (-len(c), c[0])))


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if t != t:
        raise AnalysisError("threshold: got NaN; expected a number (edges need weight >= it)")
    return t


def _graph(
    kind: str,
    pred: TriagePrediction,
    weigh: Any,
    threshold: float,
    flag: tuple[str, bool],
    formula: str,
) -> FeatureGraph:
    if not isinstance(pred, TriagePrediction):
        raise AnalysisError(f"{kind} graph: got {type(pred).__name__}; expected a TriagePrediction")
    t = _check_threshold(threshold)
    kept = []
    for p in pred.pairs:
        w, reason = weigh(p)
        if w > 0 and w >= t:
            kept.append(
                FeatureEdge(
                    p.feature_a,
                    p.feature_b,
                    w,
                    p.structural_floor,
                    p.cancellation_gap,
                    p.is_cross_cluster,
                    reason,
                )
            )
    kept.sort(key=lambda e: (-_tie_key(e.weight), e.source, e.target))
    nodes = tuple(f.name for f in pred.dictionary.features)
    metadata = {
        flag[0]: bool(flag[1]),
        "formula": formula,
        "kind": kind,
        "selection_method": pred.selection_report.cluster_method,
        "threshold": t,
        "total_features": len(nodes),
    }
    return FeatureGraph(kind, nodes, tuple(kept), _components(nodes, kept), metadata)


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def build_sharing_graph(
    pred: TriagePrediction, threshold: float = 0.5, allow_cross_cluster: bool = False
) -> FeatureGraph:
    """Edges weighted by relative phase headroom ``gap / current``."""

    def weigh(p: PairPrediction) -> tuple[float, str]:
        if p.is_cross_cluster and not allow_cross_cluster:
            return 0.0, "blocked_cross_cluster"
        if p.structural_floor > FLOOR_BLOCK:
            return 0.0, "blocked_high_floor"
        w = _clip01(p.cancellation_gap / max(p.current_overlap, 1e-12))
        return w, "phase_headroom" if w > 0 else "low_phase_headroom"

    return _graph(
        "sharing",
        pred,
        weigh,
        threshold,
        ("allow_cross_cluster", allow_cross_cluster),
        SHARING_FORMULA,
    )


def build_separation_graph(
    pred: TriagePrediction, threshold: float = 0.2, include_within_cluster: bool = False
) -> FeatureGraph:
    """Edges weighted by the structural floor (overlap no phase can remove)."""

    def weigh(p: PairPrediction) -> tuple[float, str]:
        if not p.is_cross_cluster and not include_within_cluster:
            return 0.0, "blocked_within_cluster"
        reason = "irreducible_cross_cluster" if p.is_cross_cluster else "irreducible_within_cluster"
        return _clip01(p.structural_floor), reason

    return _graph(
        "separation",
        pred,
        weigh,
        threshold,
        ("include_within_cluster", include_within_cluster),
        SEPARATION_FORMULA,
    )


def render_feature_graph_section(graph: FeatureGraph) -> str:
    """Markdown section for one graph (threshold, counts, edges, components, formula)."""
    if graph.kind not in _KINDS:
        raise AnalysisError(f"graph kind: got {graph.kind!r}; expected one of {list(_KINDS)}")
    lines = [
        f"## {graph.kind.capitalize()} graph",
        "",
        f"- Threshold: {graph.metadata.get('threshold')}",
        f"- Kept edges: {len(graph.edges)}",
        f"- Components: {len(graph.clusters)}",
        "",
        "### Edges",
        "",
        "| source | target | weight | floor | gap | cross_cluster | reason |",
        "|--------|--------|-------:|------:|----:|---------------|--------|",
    ]
    if not graph.edges:
        lines.append("| _(none)_ | | | | | | |")
    for e in graph.edges:
        lines.append(
            f"| {e.source} | {e.target} | {e.weight:.4f} | {e.floor:.4f} | {e.gap:.4f} | "
            f"{'yes' if e.is_cross_cluster else 'no'} | {e.reason} |"
        )
    lines += ["", "### Components", ""]
    lines += [f"- {{ {', '.join(c)} }}" for c in graph.clusters]
    formula = graph.metadata.get("formula") or (
        SHARING_FORMULA if graph.kind == "sharing" else SEPARATION_FORMULA
    )
    lines += ["", "### Formula", "", "```", str(formula), "```", ""]
    return "\n".join(lines)
