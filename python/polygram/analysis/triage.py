"""Phase-only triage (spec 05 §5.1): for every pair of a rung-1 dictionary,
how far tuning the phases φ can push its overlap down.

Every pair quantity comes from the closed-form branch law
``|G_ij|² = M + V·cos(φ_i − φ_j)`` evaluated in the Rust core in one call
(``Dictionary.branch_law``), plus one Gram for the current overlaps.  0.0.1
instead evaluated N + 1 Grams with one feature flipped to φ = π at a time,
which is only right when every φ is 0 (its quirk 14); the closed form is
right for any φ and gives the same numbers when φ ≡ 0.  HEA_Rung2 has no
closed form, so its dictionaries are triaged with 0.0.1's recipe itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from polygram.dictionary import Dictionary
from polygram.errors import AnalysisError, KnobError
from polygram.sae.importer import SelectionReport, from_sae_lens
from polygram.sae.records import SAEFeatureRecord

__all__ = [
    "SUITABILITY_FORMULA",
    "PairPrediction",
    "TriagePrediction",
    "encoding_suitability_score",
    "feature_sensitivity",
    "predict_cancellation_depth",
    "triage_dictionary",
]

#: The score formula as 0.0.1 prints it (the report's fenced block).  Both
#: factors lie in [0, 1], so the product needs no clipping in practice; the
#: score is still clipped to [0, 1].
SUITABILITY_FORMULA = (
    "encoding_suitability_score = mean_cancellation_gap × min_pairwise_separation\n"
    "  mean_cancellation_gap   = mean over pairs of (current_overlap − structural_floor)\n"
    "  min_pairwise_separation = 1 − max over pairs of current_overlap"
)

# The current overlap (a Gram) and the floor (the branch law) are two
# evaluations of the same number for a pair already at its floor; below this
# their difference is rounding, not phase headroom.
_GAP_NOISE = 1e-12


@dataclass(frozen=True)
class PairPrediction:
    """Phase-only prediction for one unordered pair (dictionary order, a before b).

    ``m_pi`` is the overlap with the pair's relative phase at π, ``M``/``V``
    the branch-law mean and (signed) amplitude, ``structural_floor = M − |V|``
    the lowest overlap phases alone can reach and ``cancellation_gap`` how far
    above it the pair sits now.
    """

    feature_a: str
    feature_b: str
    cluster_a: str
    cluster_b: str
    current_overlap: float
    m_pi: float
    M: float
    V: float
    structural_floor: float
    cancellation_gap: float

    @property
    def is_cross_cluster(self) -> bool:
        return self.cluster_a != self.cluster_b


@dataclass(frozen=True)
class TriagePrediction:
    """Every pair's prediction plus per-feature and whole-dictionary summaries."""

    dictionary: Dictionary
    selection_report: SelectionReport
    pairs: tuple[PairPrediction, ...]
    feature_sensitivity: Mapping[str, float]
    encoding_suitability_score: float
    suitability_formula: str = SUITABILITY_FORMULA


def _flip_law(dictionary: Dictionary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0.0.1's N + 1 Gram recipe (spec 05 §5.1), for encodings without a
    closed form (HEA_Rung2): ``m_pi`` of pair (i, j) is ``|G_ij|²`` after
    writing φ_j = π; ``M``/``V`` are the half sum / half difference with the
    current overlap and the floor is the smaller of the two.  A feature whose
    φ cannot move its state (no Rz slot, explicit θ) keeps ``m_pi = current``,
    which is what 0.0.1's silent no-op write gave."""
    m0 = dictionary.overlaps()
    m_pi = m0.copy()
    for j, f in enumerate(dictionary.features):
        try:
            flipped = dictionary.with_knob(f"{f.name}.phi", math.pi).overlaps()
        except KnobError:
            continue
        m_pi[:j, j] = flipped[:j, j]
    big_m = (m0 + m_pi) / 2
    big_v = (m0 - m_pi) / 2
    return big_m, big_v, np.minimum(m0, m_pi)


def _pairs(dictionary: Dictionary) -> tuple[PairPrediction, ...]:
    try:
        big_m, big_v, floor = dictionary.branch_law()
    except NotImplementedError:
        big_m, big_v, floor = _flip_law(dictionary)
    current = np.abs(dictionary.gram()) ** 2
    feats = dictionary.features
    out = []
    for i in range(len(feats)):
        for j in range(i + 1, len(feats)):
            cur = float(current[i, j])
            fl = float(floor[i, j])
            gap = cur - fl
            out.append(
                PairPrediction(
                    feature_a=feats[i].name,
                    feature_b=feats[j].name,
                    cluster_a=feats[i].cluster,
                    cluster_b=feats[j].cluster,
                    current_overlap=cur,
                    m_pi=float(big_m[i, j] - big_v[i, j]),
                    M=float(big_m[i, j]),
                    V=float(big_v[i, j]),
                    structural_floor=fl,
                    cancellation_gap=gap if gap > _GAP_NOISE else 0.0,
                )
            )
    return tuple(out)


def _sensitivity(dictionary: Dictionary, pairs: Iterable[PairPrediction]) -> dict[str, float]:
    sums = {f.name: 0.0 for f in dictionary.features}
    counts = dict.fromkeys(sums, 0)
    for p in pairs:
        for name in (p.feature_a, p.feature_b):
            sums[name] += abs(p.V)
            counts[name] += 1
    return {n: sums[n] / counts[n] if counts[n] else 0.0 for n in sums}


def _score(pairs: tuple[PairPrediction, ...]) -> float:
    if not pairs:
        return 0.0
    headroom = float(np.mean([p.cancellation_gap for p in pairs]))
    separation = 1.0 - max(p.current_overlap for p in pairs)
    return min(1.0, max(0.0, headroom * separation))


def _predict(dictionary: Dictionary, report: SelectionReport) -> TriagePrediction:
    pairs = _pairs(dictionary)
    return TriagePrediction(
        dictionary=dictionary,
        selection_report=report,
        pairs=pairs,
        feature_sensitivity=_sensitivity(dictionary, pairs),
        encoding_suitability_score=_score(pairs),
    )


def predict_cancellation_depth(
    records: Mapping[int, SAEFeatureRecord], feature_ids: Iterable[int], **kwargs: Any
) -> TriagePrediction:
    """Import ``feature_ids`` with ``from_sae_lens(records, feature_ids, **kwargs)``
    and triage the resulting dictionary (one ``Dictionary``: at most the
    encoding's capacity, so ``clustered`` is always False here)."""
    if kwargs.get("clustered", False) is not False:
        raise AnalysisError(
            f"predict_cancellation_depth: clustered={kwargs['clustered']!r}; triage works on "
            "one Dictionary of at most the encoding's capacity (clustered=False)"
        )
    dictionary, report = from_sae_lens(records, feature_ids, **{**kwargs, "clustered": False})
    return _predict(dictionary, report)


def triage_dictionary(dictionary: Dictionary) -> TriagePrediction:
    """The same prediction for an existing dictionary (any φ); its selection
    report is a placeholder with ``cluster_method == "dictionary"``."""
    if not isinstance(dictionary, Dictionary):
        raise AnalysisError(
            f"triage_dictionary: got {type(dictionary).__name__}; expected a Dictionary"
        )
    names = [f.name for f in dictionary.features]
    report = SelectionReport(
        n_input_features=len(names),
        n_selected=len(names),
        cluster_assignments={f.name: f.cluster for f in dictionary.features},
        cluster_method="dictionary",
        beta_variance_explained=1.0,
        reconstruction_error=dict.fromkeys(names, 0.0),
        tier_preservation=None,
        gamma_method="dictionary",
    )
    return _predict(dictionary, report)


def _prediction_of(
    source: TriagePrediction | Dictionary | Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int] | None,
    kwargs: dict[str, Any],
    what: str,
) -> TriagePrediction:
    if isinstance(source, TriagePrediction | Dictionary):
        if feature_ids is not None or kwargs:
            raise AnalysisError(
                f"{what}: got a {type(source).__name__} plus feature_ids/importer options; "
                "pass either a prediction/dictionary alone or (records, feature_ids, **kwargs)"
            )
        return source if isinstance(source, TriagePrediction) else triage_dictionary(source)
    if feature_ids is None:
        raise AnalysisError(
            f"{what}: feature_ids is missing; expected (records, feature_ids, **from_sae_lens "
            "options), a TriagePrediction or a Dictionary"
        )
    return predict_cancellation_depth(source, feature_ids, **kwargs)


def feature_sensitivity(
    records: TriagePrediction | Dictionary | Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """Mean ``|V|`` over the pairs containing each feature (0.0 for N = 1).

    Takes what ``predict_cancellation_depth`` takes, or an existing
    ``TriagePrediction`` / ``Dictionary``."""
    pred = _prediction_of(records, feature_ids, kwargs, "feature_sensitivity")
    return dict(pred.feature_sensitivity)


def encoding_suitability_score(
    records: TriagePrediction | Dictionary | Mapping[int, SAEFeatureRecord],
    feature_ids: Iterable[int] | None = None,
    **kwargs: Any,
) -> float:
    """``clip(mean gap × (1 − max current overlap), 0, 1)``; 0.0 with no pairs.

    Takes what ``predict_cancellation_depth`` takes, or an existing
    ``TriagePrediction`` / ``Dictionary``."""
    pred = _prediction_of(records, feature_ids, kwargs, "encoding_suitability_score")
    return pred.encoding_suitability_score
