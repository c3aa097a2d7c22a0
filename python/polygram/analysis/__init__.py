"""Triage of rung-1 dictionaries: per-pair phase-only predictions, the
markdown report and the sharing / separation feature graphs (spec 05 §5.1–5.3)."""

from __future__ import annotations

from polygram.analysis.graphs import (
    FLOOR_BLOCK,
    SEPARATION_FORMULA,
    SHARING_FORMULA,
    FeatureEdge,
    FeatureGraph,
    build_separation_graph,
    build_sharing_graph,
    render_feature_graph_section,
)
from polygram.analysis.report import (
    CAVEATS,
    KNOB_GUIDANCE,
    SUITABILITY_INTUITION,
    render_report,
)
from polygram.analysis.triage import (
    SUITABILITY_FORMULA,
    PairPrediction,
    TriagePrediction,
    encoding_suitability_score,
    feature_sensitivity,
    predict_cancellation_depth,
    triage_dictionary,
)

# 0.0.1 / 0.15 names of the same objects (spec 15 §10)
KNOB_SELECTION_GUIDANCE = KNOB_GUIDANCE
SHARING_EDGE_FORMULA = SHARING_FORMULA
SEPARATION_EDGE_FORMULA = SEPARATION_FORMULA

__all__ = [
    "CAVEATS",
    "FLOOR_BLOCK",
    "KNOB_GUIDANCE",
    "KNOB_SELECTION_GUIDANCE",
    "SEPARATION_EDGE_FORMULA",
    "SEPARATION_FORMULA",
    "SHARING_EDGE_FORMULA",
    "SHARING_FORMULA",
    "SUITABILITY_FORMULA",
    "SUITABILITY_INTUITION",
    "FeatureEdge",
    "FeatureGraph",
    "PairPrediction",
    "TriagePrediction",
    "build_separation_graph",
    "build_sharing_graph",
    "encoding_suitability_score",
    "feature_sensitivity",
    "predict_cancellation_depth",
    "render_feature_graph_section",
    "render_report",
    "triage_dictionary",
]
