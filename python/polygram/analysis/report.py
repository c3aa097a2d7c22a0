"""Markdown report of a triage prediction (spec 05 §5.2; ``polygram analyze``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from polygram.analysis.triage import SUITABILITY_FORMULA, TriagePrediction
from polygram.errors import AnalysisError

__all__ = ["CAVEATS", "KNOB_GUIDANCE", "SUITABILITY_INTUITION", "caveats_for", "render_report"]

CAVEATS = (
    "These numbers are closed-form predictions for the rung-1 MPS encoding of the "
    "dictionary exactly as imported: α = φ = 0 for every feature, one β per cluster, "
    "and γ = 0 unless gamma assignment was switched on (then γ comes from per-cluster "
    "PCA of the decoder rows). Nothing here was optimised or simulated beyond the "
    "analytic Gram. A pair's floor depends only on its phase difference, so shifting "
    "every φ by the same amount changes no prediction."
)

_IMPORTED_KNOBS = {
    "alpha": "α (PC2)",
    "phi": "φ (PC3)",
    "theta_amp": "θ_amp (PC4)",
    "psi_aux": "ψ_aux (PC5)",
}


def caveats_for(assigned_knobs: Sequence[str]) -> str:
    """The caveat paragraph; it names the knobs imported from decoder PCA
    instead of claiming α = φ = 0 when the import assigned them."""
    if not assigned_knobs:
        return CAVEATS
    knobs = ", ".join(_IMPORTED_KNOBS.get(k, k) for k in assigned_knobs)
    rest = "" if "alpha" in assigned_knobs else "α = 0 for every feature, "
    rest += "" if "phi" in assigned_knobs else "φ = 0 for every feature, "
    return (
        "These numbers are closed-form predictions for the rung-1 MPS encoding of the "
        f"dictionary exactly as imported: {knobs} come from principal axes of the selected "
        f"decoder rows, {rest}one β per cluster, and γ = 0 unless gamma assignment was "
        "switched on (then γ comes from per-cluster PCA of the decoder rows). The 0.7 gate "
        "threshold was calibrated with α = φ = 0; imported phases make overlaps far less "
        "saturated. Nothing here was optimised or simulated beyond the analytic Gram. A "
        "pair's floor depends only on its phase difference, so shifting every φ by the same "
        "amount changes no prediction."
    )


KNOB_GUIDANCE = """\
**Start with one phase per target.** The default knob list is `<feature>.phi` for \
each feature of the pair you want to pull apart; it moves exactly the pair's \
relative phase, which is what the floor and gap above describe.

**Use cluster paths for coherent moves.** `<cluster>.phi` turns every member of a \
cluster together. It is the right tool when several features should move as a \
block. On MPSRung1 it leaves every overlap inside that cluster exactly unchanged \
(only pairs that cross the cluster boundary move), so it cannot pull two siblings \
apart.

**Per-feature HEA θ can break clusters.** Free θ rotations reach lower overlaps \
than φ alone, but at a price: in one HEA run the target pair went to ≈0 while a \
sibling pair fell from 0.9999 to 0.5735 and the tier separation flipped from \
+0.22 to −0.20. Check tier statistics after any per-feature θ search.

**HEA Rz leverage depends on the circuit.** How much an Rz angle can do depends on \
depth and entangler; an Rz at depth 0 acting on |0⟩ only adds a global phase and \
changes nothing.

**The floor is a hard limit for phases.** No choice of φ takes a pair below \
M − |V|; a pair with zero gap is already there, and only amplitude knobs (β, γ, α \
or a richer encoding) can lower it further.

**Rank targets yourself.** The sensitivity table is sorted for you, but which \
features to tune first is your call; Polygram has no helper that picks them."""

SUITABILITY_INTUITION = (
    "High when pairs have room to move under phases and none of them is already nearly identical."
)

# The score formula exactly as 0.0.1's report prints it (spec 05 §5.2 and
# examples/core/analysis/*.md); the product already lies in [0, 1].
_FORMULA_BLOCK = SUITABILITY_FORMULA


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "nan" if math.isnan(x) else f"{x:.4f}"


def _tie_key(x: float) -> float:
    return round(x, 12)  # values equal up to closed-form rounding keep their order


def render_report(
    prediction: TriagePrediction,
    sae_source: str | None = None,
    feature_ids: Sequence[int] | None = None,
) -> str:
    """The markdown report.  ``sae_source`` is shown as given and
    ``feature_ids`` as a Python list; each bullet is written only when its
    argument is given (spec 05 §5.2)."""
    if not isinstance(prediction, TriagePrediction):
        raise AnalysisError(
            f"render_report: got {type(prediction).__name__}; expected a TriagePrediction"
        )
    rep = prediction.selection_report
    out = [f"# Polygram analysis — {prediction.dictionary.name}", ""]
    if sae_source is not None:
        out.append(f"- SAE source: `{sae_source}`")
    if feature_ids is not None:
        out.append(f"- Selected feature_ids: {[int(i) for i in feature_ids]!r}")
    out.append(f"- Cluster method: `{rep.cluster_method}`")
    out.append(f"- β variance explained: {rep.beta_variance_explained:.4f}")
    if rep.assigned_knobs:
        out.append(f"- Knobs from decoder PCA: {', '.join(rep.assigned_knobs)}")
    if rep.profile is not None and rep.profile != "clustered":
        out.append(f"- Geometric profile: {rep.profile} (fidelity {_fmt(rep.geometric_fidelity)})")
    tp = rep.tier_preservation
    if tp is not None:
        out.append(f"- Projection→Polygram tier correlation: {_fmt(tp)}")
    out += ["", "## Caveats", "", caveats_for(rep.assigned_knobs), "", "## Pair predictions", ""]
    out += [
        "| pair | tier | current | floor | gap | M | V |",
        "|------|------|--------:|------:|----:|--:|--:|",
    ]
    for p in sorted(prediction.pairs, key=lambda p: -_tie_key(p.cancellation_gap)):
        out.append(
            f"| {p.feature_a} ↔ {p.feature_b} | {'cross' if p.is_cross_cluster else 'intra'} | "
            f"{p.current_overlap:.4f} | {p.structural_floor:.4f} | {p.cancellation_gap:.4f} | "
            f"{p.M:.4f} | {p.V:+.4f} |"
        )
    out += ["", "## Per-feature sensitivity (mean |V_ij|)", ""]
    out += ["| feature | cluster | sensitivity |", "|---------|---------|------------:|"]
    clusters = {f.name: f.cluster for f in prediction.dictionary.features}
    sens = prediction.feature_sensitivity
    for name in sorted(sens, key=lambda n: -_tie_key(sens[n])):
        out.append(f"| {name} | {clusters.get(name, '')} | {sens[name]:.4f} |")
    out += ["", "## Choosing knobs", "", KNOB_GUIDANCE, "", "## Encoding suitability", ""]
    out.append(f"**Score: {prediction.encoding_suitability_score:.4f}**  (range [0, 1])")
    out += ["", "```", _FORMULA_BLOCK, SUITABILITY_INTUITION, "```"]
    if rep.warnings:
        out += ["", "## Warnings", ""]
        out += [f"- {w}" for w in rep.warnings]
    out.append("")
    return "\n".join(out)
