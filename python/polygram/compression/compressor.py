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

``plan_with_target(K)`` and ``plan_pareto(Ks)`` rank every report pair by
``score_field`` instead and join them until K clusters remain (spec 15 §3;
the walk lives in :mod:`polygram.compression.pareto`).  Representatives come
from :mod:`polygram.compression.representatives` in every mode.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from numbers import Integral
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from polygram.behavioural.report import CandidatePair, ValidationReport
from polygram.compression.choices import REP_SELECTIONS, SCORE_FIELDS
from polygram.compression.clusters import connected_components
from polygram.compression.pareto import (
    ParetoOutcome,
    ParetoReport,
    check_target,
    check_targets,
    walk_targets,
)
from polygram.compression.report import (
    ClusterPlan,
    CompressionPlan,
    CompressionReport,
    CompressionResult,
)
from polygram.compression.representatives import PairTable, choose_representatives
from polygram.compression.strategies import (
    MERGE_MODES,
    STRATEGIES,
    MergeMode,
    check_feature_ids,
    decoder_row_kept,
    merge_strategy,
    row_norms,
    zero_strategy,
)
from polygram.config import FROM_CONFIG, CompressionConfig, config_of, pick
from polygram.errors import CompressionError
from polygram.evals.request import EvalRequest, check_evaluation, evaluate_before_after
from polygram.sae.load import load_sae
from polygram.sae.value import SAE
from polygram.sae.write import plan_output, write_sae

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary

__all__ = ["REP_SELECTIONS", "Compressor", "debug_size", "decoder_dictionary", "fire_totals"]

_DEBUG_FEATURES = 8  # the debugging Dictionary covers the first ≤ 8 report ids


def decoder_dictionary(
    ids: Sequence[int],
    rows: np.ndarray,
    name: str,
    *,
    encoding: Any = None,
    assign_phase_knobs: bool = False,
    assign_amp_knobs: bool = False,
) -> Dictionary:
    """A Dictionary (γ assigned) over features ``ids``, ``rows[k]`` being
    feature ``ids[k]``'s decoder row: the one builder of the loop's debugging
    and panel dictionaries (Compressor, the epoch's gate and final dictionary)."""
    from polygram.sae import from_sae_lens
    from polygram.sae.records import SAEFeatureRecord

    records = {f: SAEFeatureRecord(f, f"feat_{f}", rows[k]) for k, f in enumerate(ids)}
    return from_sae_lens(
        records,
        list(ids),
        assign_gamma=True,
        name=name,
        encoding=encoding,
        assign_phase_knobs=assign_phase_knobs,
        assign_amp_knobs=assign_amp_knobs,
        clustered=False,
    )[0]


def debug_size(encoding: Any) -> int:
    """How many features a debugging Dictionary covers: 8, or fewer when the
    encoding holds fewer (an HEA of two qubits holds 4)."""
    from polygram.encoding import MPSRung1

    cap = getattr(MPSRung1() if encoding is None else encoding, "max_features", _DEBUG_FEATURES)
    return min(_DEBUG_FEATURES, int(cap))


def fire_totals(pairs: Iterable[CandidatePair]) -> dict[int, int]:
    """Σ fire counts per feature over ``pairs``: ``n_fires_i`` to ``p.i``,
    ``n_fires_j`` to ``p.j`` (the weights of ``merge``'s ``freq_weighted``)."""
    tot: dict[int, int] = defaultdict(int)
    for p in pairs:
        tot[p.i] += int(p.n_fires_i)
        tot[p.j] += int(p.n_fires_j)
    return dict(tot)


@dataclass
class Compressor:
    """Plan and apply the compression of one validation report.

    ``sae_checkpoint`` is any source of :func:`polygram.sae.load_sae` (an
    ``SAE``, a mapping of arrays, a SAELens folder, a ``.safetensors`` file;
    decoder-only checkpoints too); it is loaded once, at construction.
    ``strategy`` ∈ {``zero``, ``merge``}; ``rep_selection`` ∈ {``n_fires``,
    ``scale_aware``, ``kl_attribution``}; ``merge_mode`` ∈
    {``freq_weighted``, ``simple_mean``} (checked even for ``zero``);
    ``representatives`` overrides the chosen representative of named
    clusters of ``plan()`` (``{cluster_id: fid}``).  ``target_n_features_kept``
    makes ``run()`` compress to that many clusters; ``score_field`` ranks the
    pairs of target-K and Pareto plans.  Fields left ``None`` come from
    ``config`` (a :class:`~polygram.config.CompressionConfig`), else its
    defaults.  ``encoding`` and the knob flags shape only the debugging
    Dictionary.  ``evaluation`` (an :class:`~polygram.evals.EvalRequest`)
    evaluates source and output on its prompts and records
    ``eval_before/eval_after/eval_change``.  ``plan()`` is memoised on the
    instance: change a field afterwards and build a new ``Compressor`` instead.
    """

    validation_report: ValidationReport
    sae_checkpoint: SAE | Mapping[str, Any] | str | os.PathLike[str]
    strategy: str = FROM_CONFIG
    rep_selection: str = FROM_CONFIG
    merge_mode: str = FROM_CONFIG
    representatives: dict[int, int] | None = None
    target_n_features_kept: int | None = None
    score_field: str = FROM_CONFIG
    config: CompressionConfig | None = None
    encoding: Any = None
    assign_phase_knobs: bool = False
    assign_amp_knobs: bool = False
    evaluation: EvalRequest | None = None
    _plan: CompressionPlan | None = field(default=None, init=False, repr=False, compare=False)
    _defaults: tuple[ClusterPlan, ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _table: PairTable | None = field(default=None, init=False, repr=False, compare=False)
    _sae: SAE = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.validation_report, ValidationReport):
            raise TypeError(
                f"Compressor.validation_report: got {type(self.validation_report).__name__}; "
                "expected a ValidationReport"
            )
        cfg = config_of(CompressionConfig, self.config, "Compressor")
        for name in ("strategy", "rep_selection", "merge_mode", "score_field"):
            setattr(self, name, pick(getattr(self, name), cfg, name))
        target = pick(self.target_n_features_kept, cfg, "target_n_features_kept")
        self.target_n_features_kept = None if target is None else check_target(target)
        for name, value, allowed in (
            ("strategy", self.strategy, STRATEGIES),
            ("rep_selection", self.rep_selection, REP_SELECTIONS),
            ("merge_mode", self.merge_mode, MERGE_MODES),
            ("score_field", self.score_field, SCORE_FIELDS),
        ):
            if value not in allowed:
                raise CompressionError(
                    f"unsupported {name} {value!r}; allowed: {', '.join(allowed)}"
                )
        for name in ("assign_phase_knobs", "assign_amp_knobs"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"Compressor.{name}: got {getattr(self, name)!r}; expected True or False"
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
        check_evaluation("Compressor", self.evaluation, self._sae)

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

    def _pair_table(self) -> PairTable:
        if self._table is None:
            self._table = PairTable.of(self.validation_report.pairs)
        return self._table

    def _norms(self, members: tuple[int, ...]) -> np.ndarray:
        w_dec = self._sae.tensors["W_dec"]
        check_feature_ids("cluster", members, w_dec.shape[0], repr(self._sae.source.display))
        return row_norms(w_dec, members)

    def _clusters(self, components: Sequence[tuple[int, ...]]) -> tuple[ClusterPlan, ...]:
        """``components`` with the rule-chosen representative of each."""
        reps = choose_representatives(
            str(self.rep_selection), components, self._pair_table(), self._norms
        )
        return tuple(
            ClusterPlan(cid, members, rep, tuple(m for m in members if m != rep))
            for cid, (members, rep) in enumerate(zip(components, reps, strict=True))
        )

    def _default_clusters(self) -> tuple[ClusterPlan, ...]:
        """The confirmed pairs' clusters with the rule-chosen representative
        (no overrides; memoised, so checking ``representatives`` and ``plan()``
        share one computation)."""
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
        self._defaults = self._clusters(connected_components(list(report.confirmed)))
        return self._defaults

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

    def plan_with_target(self, target_n_features_kept: int | None = None) -> CompressionPlan:
        """The plan with ``target_n_features_kept`` clusters (the argument, else
        the field): all report pairs ranked by ``score_field`` and joined
        greedily (spec 15 §3.2); ``representatives`` do not apply."""
        target = target_n_features_kept
        if target is None:
            target = self.target_n_features_kept
        if target is None:
            raise CompressionError(
                "plan_with_target: no target; pass target_n_features_kept (an integer >= 1) "
                "or set it on the Compressor / its CompressionConfig"
            )
        return self.plan_pareto([check_target(target)]).outcomes[0].plan

    def plan_pareto(self, targets: Iterable[int]) -> ParetoReport:
        """One plan per target K (deduplicated, descending) from one sort and
        one walk of the ranked pairs: the compression-vs-K curve."""
        ks = check_targets(targets)
        report = self.validation_report
        walk = walk_targets(report.pairs, str(self.score_field), ks)
        feature_ids = tuple(report.feature_ids)
        outcomes = tuple(
            ParetoOutcome(
                k, walk.reached[k], CompressionPlan(self._clusters(walk.components(k)), feature_ids)
            )
            for k in ks
        )
        return ParetoReport(
            sae_checkpoint=self._sae.source.display,
            sae_checkpoint_sha256=self._sae.source_sha256(),
            score_field=str(self.score_field),
            targets=ks,
            outcomes=outcomes,
            n_features_input=int(self._sae.tensors["W_dec"].shape[0]),
        )

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
            mode = cast(MergeMode, self.merge_mode)  # checked against MERGE_MODES
            new, merged = merge_strategy(sae, plan, fires, mode)
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
        # evaluated before anything is written: a failed evaluation leaves no output
        evals = (
            None
            if self.evaluation is None
            else evaluate_before_after(self._sae, new, self.evaluation)
        )
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
            **({} if evals is None else evals.blocks(str(written.path), written.sha256)),
        )
        return CompressionResult(patched, report, written.path, dictionary)

    def run(self, output_checkpoint: str | os.PathLike[str]) -> CompressionResult:
        """``apply(plan_with_target(), …)`` when ``target_n_features_kept`` is
        set, else ``apply(plan(), …)``."""
        plan = self.plan() if self.target_n_features_kept is None else self.plan_with_target()
        return self.apply(plan, output_checkpoint)

    def _debug_dictionary(self, plan: CompressionPlan, w_dec: np.ndarray) -> Dictionary | None:
        """A Dictionary over the first min(8, encoding cap) report ids, from the
        rows being written (zeroed features included, as all-zero projections)."""
        ids = list(plan.feature_ids[: debug_size(self.encoding)])
        if not ids:
            return None
        check_feature_ids(
            "validation_report.feature_ids", ids, w_dec.shape[0], repr(self._sae.source.display)
        )
        return decoder_dictionary(
            ids,
            w_dec[ids],
            self.validation_report.dictionary_name,
            encoding=self.encoding,
            assign_phase_knobs=self.assign_phase_knobs,
            assign_amp_knobs=self.assign_amp_knobs,
        )


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
