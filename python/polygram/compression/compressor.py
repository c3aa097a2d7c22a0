"""``Compressor``: confirmed redundant pairs → one live feature per cluster
(spec 11 §§1–4, spec 16 §1.6).

``plan()`` turns the report's ``confirmed`` pairs into connected components
(Rust union-find) and picks a representative per component; ``compress()``
silences the other members in a *new* in-memory SAE (every tensor, name,
orientation and dtype kept) and ``apply()`` writes it in the layout of the
source (spec 16 §2.5).  The source is any SAE source ``load_sae`` accepts,
decoder-only checkpoints included (spec 18 §4).  Components rather than
pair-by-pair edits make the result independent of pair order: when confirmed
pairs form a clique, each non-representative is silenced exactly once.

Fire counts and KL values are attributed by the pair's own ``i``/``j``
(``n_fires_i`` → ``p.i``).  Polygram 0.0.1 attributed them by
``min(i, j)``/``max(i, j)``, which swaps them whenever a stored pair has
``i > j`` (see docs/port-notes.md).
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from polygram.behavioural.report import CandidatePair, ValidationReport
from polygram.compression.choices import REP_SELECTIONS
from polygram.compression.clusters import connected_components
from polygram.compression.report import (
    ClusterPlan,
    CompressionPlan,
    CompressionReport,
    CompressionResult,
)
from polygram.compression.strategies import (
    MERGE_MODES,
    STRATEGIES,
    check_feature_ids,
    decoder_row_kept,
    merge_strategy,
    row_norms,
    zero_strategy,
)
from polygram.errors import CompressionError
from polygram.sae.load import load_sae
from polygram.sae.value import SAE
from polygram.sae.write import plan_output, write_sae

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary

__all__ = ["REP_SELECTIONS", "Compressor", "decoder_dictionary", "fire_totals"]

_DEBUG_FEATURES = 8  # the debugging Dictionary covers the first ≤ 8 report ids
_EPS = 1e-8


def decoder_dictionary(ids: Sequence[int], rows: np.ndarray, name: str) -> Dictionary:
    """A Dictionary (γ assigned) over features ``ids``, ``rows[k]`` being
    feature ``ids[k]``'s decoder row (the loop's debugging / panel dictionaries)."""
    from polygram.sae import from_sae_lens
    from polygram.sae.records import SAEFeatureRecord

    records = {f: SAEFeatureRecord(f, f"feat_{f}", rows[k]) for k, f in enumerate(ids)}
    return from_sae_lens(records, list(ids), assign_gamma=True, name=name)[0]


def _within_clusters(
    pairs: Iterable[CandidatePair], cluster_of: Mapping[int, int]
) -> Iterator[CandidatePair]:
    """The pairs whose two ends lie in the same cluster."""
    for p in pairs:
        ci = cluster_of.get(p.i)
        if ci is not None and cluster_of.get(p.j) == ci:
            yield p


def fire_totals(
    pairs: Iterable[CandidatePair], cluster_of: Mapping[int, int] | None = None
) -> dict[int, int]:
    """Σ fire counts per feature: ``n_fires_i`` to ``p.i``, ``n_fires_j`` to ``p.j``.

    With ``cluster_of`` only pairs whose two ends lie in the same cluster count.
    """
    if cluster_of is not None:
        pairs = _within_clusters(pairs, cluster_of)
    tot: dict[int, int] = defaultdict(int)
    for p in pairs:
        tot[p.i] += int(p.n_fires_i)
        tot[p.j] += int(p.n_fires_j)
    return dict(tot)


def _ablation_values(
    pairs: tuple[CandidatePair, ...], cluster_of: Mapping[int, int]
) -> dict[int, list[float]]:
    """Finite ``kl_ablate_*`` values per feature over within-cluster pairs."""
    vals: dict[int, list[float]] = defaultdict(list)
    for p in _within_clusters(pairs, cluster_of):
        for fid, v in ((p.i, p.kl_ablate_i), (p.j, p.kl_ablate_j)):
            if math.isfinite(float(v)):
                vals[fid].append(float(v))
    return dict(vals)


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < _EPS:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def _argmax_lowest(members: tuple[int, ...], scores: Any) -> int:
    """The member with the highest score; ties → the lowest fid."""
    best = members[0]
    best_score = scores[0]
    for m, s in zip(members[1:], scores[1:]):
        if s > best_score or (s == best_score and m < best):
            best, best_score = m, s
    return best


@dataclass
class Compressor:
    """Plan and apply the compression of one validation report's confirmed pairs.

    ``sae_checkpoint`` is any source of :func:`polygram.sae.load_sae` (an
    ``SAE``, a mapping of arrays, a SAELens folder, a ``.safetensors`` file;
    decoder-only checkpoints too); it is loaded once, at construction.
    ``strategy`` ∈ {``zero``, ``merge``}; ``rep_selection`` ∈ {``n_fires``,
    ``scale_aware``}; ``merge_mode`` ∈ {``freq_weighted``, ``simple_mean``}
    (checked even for ``zero``); ``representatives`` overrides the chosen
    representative of named clusters (``{cluster_id: fid}``).  ``plan()`` is
    memoised on the instance: change a field afterwards and build a new
    ``Compressor`` instead.
    """

    validation_report: ValidationReport
    sae_checkpoint: SAE | Mapping[str, Any] | str | os.PathLike[str]
    strategy: Literal["zero", "merge"] = "zero"
    rep_selection: Literal["n_fires", "scale_aware"] = "n_fires"
    merge_mode: Literal["freq_weighted", "simple_mean"] = "freq_weighted"
    representatives: dict[int, int] | None = None
    _plan: CompressionPlan | None = field(default=None, init=False, repr=False, compare=False)
    _defaults: tuple[ClusterPlan, ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _sae: SAE = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.validation_report, ValidationReport):
            raise TypeError(
                f"Compressor.validation_report: got {type(self.validation_report).__name__}; "
                "expected a ValidationReport"
            )
        for name, value, allowed in (
            ("strategy", self.strategy, STRATEGIES),
            ("rep_selection", self.rep_selection, REP_SELECTIONS),
            ("merge_mode", self.merge_mode, MERGE_MODES),
        ):
            if value not in allowed:
                raise CompressionError(
                    f"unsupported {name} {value!r}; allowed: {', '.join(allowed)}"
                )
        self._sae = load_sae(self.sae_checkpoint, partial=True)
        if self.strategy == "merge" and decoder_row_kept(self._sae):
            raise CompressionError(
                f"strategy 'merge': {self._sae.source.display!r} is a TopK SAE with "
                "rescale_acts_by_decoder_norm, so the decoder row norm cancels out of its "
                "forward and merge would do nothing; use strategy='zero'"
            )
        if self.representatives is not None:
            self._check_overrides(self.representatives)

    @property
    def sae(self) -> SAE:
        """The source SAE (loaded once)."""
        return self._sae

    # ----------------------------------------------------------------- plan
    def _check_overrides(self, reps: Any) -> None:
        if not isinstance(reps, Mapping):
            raise CompressionError(
                f"representatives: got {type(reps).__name__}; expected a mapping "
                "cluster_id → feature id"
            )
        clusters = {c.cluster_id: c for c in self._default_clusters()}
        checked: dict[int, int] = {}
        for k, v in reps.items():
            if isinstance(k, bool) or not isinstance(k, Integral) or int(k) not in clusters:
                raise CompressionError(
                    f"representatives: cluster_id={k!r} is not a cluster of this report; "
                    f"known cluster ids: {sorted(clusters)}"
                )
            c = clusters[int(k)]
            if isinstance(v, bool) or not isinstance(v, Integral) or int(v) not in c.members:
                raise CompressionError(
                    f"representatives: feature {v!r} is not a member of cluster "
                    f"{c.cluster_id} (members {list(c.members)})"
                )
            checked[int(k)] = int(v)
        self.representatives = checked

    def _default_clusters(self) -> tuple[ClusterPlan, ...]:
        """Clusters with the rule-chosen representative (no overrides; memoised,
        so checking ``representatives`` and ``plan()`` share one computation)."""
        if self._defaults is not None:
            return self._defaults
        report = self.validation_report
        selfs = [k for k, (i, j) in enumerate(report.confirmed) if i == j]
        if selfs:
            k = selfs[0]
            raise CompressionError(
                f"validation_report.confirmed[{k}] = {report.confirmed[k]}: a feature paired "
                "with itself; confirmed pairs must join two different features"
            )
        components = connected_components(list(report.confirmed))
        cluster_of = {fid: cid for cid, comp in enumerate(components) for fid in comp}
        fires = fire_totals(report.pairs, cluster_of)
        kl = (
            _ablation_values(report.pairs, cluster_of)
            if self.rep_selection == "scale_aware"
            else {}
        )
        out = []
        for cid, members in enumerate(components):
            if self.rep_selection == "scale_aware":
                rep = self._scale_aware_rep(cid, members, fires, kl)
            else:
                rep = _argmax_lowest(members, [fires.get(m, 0) for m in members])
            out.append(ClusterPlan(cid, members, rep, tuple(m for m in members if m != rep)))
        self._defaults = tuple(out)
        return self._defaults

    def _decoder(self) -> np.ndarray:
        return self._sae.tensors["W_dec"]

    def _scale_aware_rep(
        self,
        cid: int,
        members: tuple[int, ...],
        fires: Mapping[int, int],
        kl: Mapping[int, list[float]],
    ) -> int:
        """0.4·norm proximity to the cluster median + 0.4·min-max ablation KL
        + 0.2·min-max log fires; argmax, ties → lowest fid."""
        w_dec = self._decoder()
        check_feature_ids(f"cluster {cid}", members, w_dec.shape[0], repr(self._sae.source.display))
        norms = row_norms(w_dec, members)
        med = float(np.median(norms))
        prox = np.clip(1.0 - np.abs(norms - med) / (med + _EPS), 0.0, 1.0)
        if not any(kl.get(m) for m in members):
            warnings.warn(
                f"scale_aware: cluster {cid} (members {list(members)}) has no finite "
                "kl_ablate value; falling back to n_fires-only scoring for its ablation term",
                UserWarning,
                stacklevel=4,
            )
            abl = np.zeros(len(members))
        else:
            abl = _minmax(np.array([math.fsum(kl.get(m, [])) for m in members]))
        lf = _minmax(np.log(np.array([float(fires.get(m, 0)) for m in members]) + _EPS))
        score = 0.4 * prox + 0.4 * abl + 0.2 * lf
        return _argmax_lowest(members, score.tolist())

    def plan(self) -> CompressionPlan:
        """The clusters of the confirmed pairs and who represents each (memoised)."""
        if self._plan is None:
            reps = self.representatives or {}
            clusters = [
                replace(
                    c,
                    representative=reps[c.cluster_id],
                    zeroed=tuple(m for m in c.members if m != reps[c.cluster_id]),
                )
                if c.cluster_id in reps
                else c
                for c in self._default_clusters()
            ]
            self._plan = CompressionPlan(tuple(clusters), tuple(self.validation_report.feature_ids))
        return self._plan

    # ---------------------------------------------------------------- apply
    def compress(self, plan: CompressionPlan | None = None) -> tuple[SAE, CompressionPlan, float]:
        """The compressed SAE in memory, the plan with its norm fields filled
        in and the scale-compression ratio (nothing is written)."""
        plan = self.plan() if plan is None else plan
        if not isinstance(plan, CompressionPlan):
            raise TypeError(f"plan: got {type(plan).__name__}; expected a CompressionPlan")
        sae = self._sae
        w_src = sae.tensors["W_dec"]
        for c in plan.clusters:
            check_feature_ids(
                f"cluster {c.cluster_id}", c.members, w_src.shape[0], repr(sae.source.display)
            )
        member_norms = {c.cluster_id: row_norms(w_src, c.members) for c in plan.clusters}
        merged: dict[int, float] = {}
        if self.strategy == "merge":
            fires = fire_totals(self.validation_report.pairs)
            new, merged = merge_strategy(sae, plan, fires, self.merge_mode)
        else:
            new = zero_strategy(sae, plan)
        clusters = tuple(
            replace(
                c,
                cluster_norm_mean=float(np.mean(member_norms[c.cluster_id])),
                cluster_norm_std=float(np.std(member_norms[c.cluster_id])),
                merged_norm=merged.get(c.cluster_id),
            )
            for c in plan.clusters
        )
        patched = CompressionPlan(clusters, plan.feature_ids)
        return new, patched, _scale_ratio(patched, member_norms, self.strategy)

    def apply(
        self,
        plan: CompressionPlan | None = None,
        output_checkpoint: str | os.PathLike[str] | None = None,
    ) -> CompressionResult:
        """Write the compressed SAE atomically to ``output_checkpoint`` (the
        layout of spec 16 §2.5: folder in → folder out, file in → file +
        sidecar cfg) and report on it."""
        if output_checkpoint is None:
            raise CompressionError("Compressor.apply: output_checkpoint is required")
        plan_output(self._sae.source, output_checkpoint, "Compressor.apply")  # before any work
        new, patched, ratio = self.compress(plan)
        dictionary = self._debug_dictionary(patched, new.tensors["W_dec"])
        source_sha = self._sae.source_sha256()
        written = write_sae(
            new,
            output_checkpoint,
            provenance={
                "tool": "polygram compress",
                "source_sha256": source_sha,
                "n_features_zeroed": patched.n_features_zeroed,
            },
            owner="Compressor.apply",
        )
        assert self._sae.settings is not None
        report = CompressionReport(
            source_checkpoint=self._sae.source.display,
            source_checkpoint_sha256=source_sha,
            output_checkpoint=str(written.path),
            output_checkpoint_sha256=written.sha256,
            validation_report_dictionary_name=self.validation_report.dictionary_name,
            validation_report_schema_version=int(self.validation_report.schema_version),
            strategy=self.strategy,
            plan=patched,
            n_features_zeroed=patched.n_features_zeroed,
            n_features_kept=len(patched.clusters),
            n_clusters=len(patched.clusters),
            scale_compression_ratio=ratio,
            sae_settings=self._sae.settings.to_dict(),
            output_layout=written.layout,
            decoder_row_kept=decoder_row_kept(self._sae),
        )
        return CompressionResult(patched, report, written.path, dictionary)

    def run(self, output_checkpoint: str | os.PathLike[str]) -> CompressionResult:
        """``apply(plan(), output_checkpoint)``."""
        return self.apply(self.plan(), output_checkpoint)

    def _debug_dictionary(self, plan: CompressionPlan, w_dec: np.ndarray) -> Dictionary | None:
        """A Dictionary over the first ≤ 8 report ids, from the rows being
        written (zeroed features included, as all-zero projections)."""
        ids = list(plan.feature_ids[:_DEBUG_FEATURES])
        if not ids:
            return None
        check_feature_ids(
            "validation_report.feature_ids", ids, w_dec.shape[0], repr(self._sae.source.display)
        )
        return decoder_dictionary(ids, w_dec[ids], self.validation_report.dictionary_name)


def _scale_ratio(
    plan: CompressionPlan, member_norms: Mapping[int, np.ndarray], strategy: str
) -> float:
    """Preserved / source decoder-norm mass over clustered members only
    (``member_norms``: each cluster's source decoder-row norms, by id)."""
    if not plan.clusters:
        return 1.0
    denom = 0.0
    kept = 0.0
    for c in plan.clusters:
        denom += float(member_norms[c.cluster_id].sum())
        if strategy == "merge":
            assert c.merged_norm is not None
            kept += c.merged_norm * len(c.members)
        else:
            kept += float(member_norms[c.cluster_id][c.members.index(c.representative)])
    return 1.0 if denom <= 0 else kept / denom
