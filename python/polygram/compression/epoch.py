"""``EpochCompressor``: the ≤8-feature validate→compress loop scaled to a
whole SAE (spec 13).

Each iteration picks overlapping 8-feature *panels* by greedy seeded
coverage of the decoder-cosine pair graph (Rust: ``compression.panels``),
gates every pair of every panel inline (polygram overlap, Jaccard and
both-fire count from one cached pass of residuals — no ablation, no KL),
merges all panels' pairs into one synthetic ``ValidationReport``, silences
the redundant members with ``Compressor(strategy="zero")`` and repeats with
the zeroed features excluded, until no panel confirms a pair, the iteration
cap is hit, or the quality bound is breached: by default CE loss recovered
of the candidate may drop at most 0.01 below the SOURCE's on held-out
prompts, checked from iteration 0 on (``compression/quality.py``; the
upstream proxy remains for model-free runs on cached residuals).

The residuals come from one pre-pass over ``prompts`` at the SAE's hook (the
``behavioural`` extra, through ``polygram.runtime``) or are given as
``cached_residuals``, which makes ``run()`` torch-free.  Every SAE pass (fire
counts, panel gate, quality proxy) is ``polygram.sae.forward`` on the SAE's
own architecture, and each iteration compresses an in-memory SAE: no temp
checkpoint files.  See docs/epoch.md.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram._report_json import round6
from polygram.behavioural.report import (
    CandidatePair,
    ValidationReport,
    ValidationSummary,
)
from polygram.compression.clusters import connected_components
from polygram.compression.compressor import Compressor, decoder_dictionary
from polygram.compression.epoch_report import (
    EpochIteration,
    EpochReport,
    EpochResult,
    Panel,
)
from polygram.compression.panels import PANEL_SIZE, cosine_pair_graph, select_panels
from polygram.compression.quality import QualityBound, check_quality_settings, split_prompts
from polygram.errors import CompressionError
from polygram.runtime.devices import check_device
from polygram.sae import forward as saef
from polygram.sae.checkpoint import checkpoint_stem
from polygram.sae.load import load_sae
from polygram.sae.value import SAE
from polygram.sae.write import plan_output, write_sae

if TYPE_CHECKING:
    from polygram.dictionary import Dictionary
    from polygram.evals import EvalOptions

__all__ = [
    "EpochCompressor",
    "aggregate_panel_reports",
    "quality_delta",
    "validate_panel",
]

#: A std below this is replaced by 1 in the epoch Pearson (→ 0, not NaN).
_STD_FLOOR = 1e-12
#: What panel reports name when neither flag nor cfg gave the model / layer
#: (cached residuals need neither).
_UNKNOWN_MODEL, _UNKNOWN_LAYER = "unknown", -1

LAYER_ZERO_MESSAGE = (
    "layer 0 hooks the embeddings entering block 0, a dead zone for redundancy "
    "(ablating a feature there barely moves the model); use layer >= 5 (recommended: 10), "
    "or pass allow_layer_zero=True"
)


# ------------------------------------------------------------------ the math
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def quality_delta(x: np.ndarray, before: SAE, after: SAE) -> float:
    """0.0.1's ``cross_entropy_delta`` (the ``upstream_proxy``):
    ``mean_t Σ_d (P[t,d] − Q[t,d])²`` where ``P``/``Q`` softmax each token's
    reconstruction by the ``before`` / ``after`` SAE over the ``d_in`` axis.
    Not a cross-entropy — no language model is involved — but the quantity
    upstream reports under that name; in [0, 2].  Token chunks as the forward's."""
    t = x.shape[0]
    if t == 0:
        return 0.0
    step = saef.chunk_tokens(before.d_sae)
    total = 0.0
    for s in range(0, t, step):
        xs = x[s : s + step]
        p = _softmax(saef.reconstruct(before, xs))
        q = _softmax(saef.reconstruct(after, xs))
        total += float(np.square(p - q).sum())
    return total / t


def _unit64(rows: np.ndarray) -> np.ndarray:
    r = rows.astype(np.float64)
    norms = np.linalg.norm(r, axis=1)
    norms[norms < 1e-12] = 1.0
    return r / norms[:, None]


def _pearson_matrix(acts: np.ndarray) -> np.ndarray:
    """Pearson of every column pair: population covariance over population
    stds, a std < 1e-12 replaced by 1 — so a constant activation gives 0
    rather than NaN (the epoch rule; the validator reports NaN there)."""
    t = acts.shape[0]
    if t == 0:
        return np.zeros((acts.shape[1], acts.shape[1]))
    c = acts - acts.mean(axis=0)
    cov = (c.T @ c) / t
    std = np.sqrt(np.diag(cov))
    std[std < _STD_FLOOR] = 1.0
    return cov / np.outer(std, std)


def validate_panel(
    panel: Panel,
    sae: SAE,
    x: np.ndarray,
    *,
    model_name: str,
    layer: int,
    n_prompts: int,
    polygram_overlap_threshold: float,
    jaccard_threshold: float,
    min_both_fire: int,
) -> ValidationReport:
    """Inline gate of one panel (spec 13 §3.2 step 5) from the cached
    residuals ``x`` and the *current* SAE: every member pair
    ``i < j`` gets ``polygram_overlap = |G_ij|²`` of the panel's Dictionary,
    ``decoder_overlap = cos²``, fire counts, Jaccard and Pearson of the
    activations; KL fields are NaN.  A pair passes when polygram ≥ τ_p,
    Jaccard ≥ τ_J and both-fire ≥ m."""
    ids = list(panel.feature_ids)
    name = f"Panel{panel.panel_id}"
    rows = np.asarray(sae.tensors["W_dec"][ids])
    pairs: list[CandidatePair] = []
    if len(ids) >= 2:
        poly = np.abs(decoder_dictionary(ids, rows, name).gram()) ** 2
        u = _unit64(rows)
        cos2 = (u @ u.T) ** 2
        acts = np.asarray(saef.encode(sae, x, features=ids), dtype=np.float64)
        fires = acts > 0
        f = fires.astype(np.int64)
        n_fires = f.sum(axis=0)
        both = f.T @ f  # k × k token counts, exact in int64
        either = n_fires[:, None] + n_fires[None, :] - both
        pearson = _pearson_matrix(acts)
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                n_both, n_either = int(both[a, b]), int(either[a, b])
                jaccard = n_both / n_either if n_either else 0.0
                p = float(poly[a, b])
                pairs.append(
                    CandidatePair(
                        i=ids[a],
                        j=ids[b],
                        polygram_overlap=p,
                        decoder_overlap=float(cos2[a, b]),
                        jaccard=jaccard,
                        pearson_activation=float(pearson[a, b]),
                        kl_ablate_i=math.nan,
                        kl_ablate_j=math.nan,
                        kl_ratio_paired=math.nan,
                        kl_log_ratio_abs=math.nan,
                        n_fires_i=int(n_fires[a]),
                        n_fires_j=int(n_fires[b]),
                        n_both_fire=n_both,
                        n_either_fire=n_either,
                        gate_pass=bool(
                            p >= polygram_overlap_threshold
                            and jaccard >= jaccard_threshold
                            and n_both >= min_both_fire
                        ),
                    )
                )
    return ValidationReport(
        schema_version=1,
        dictionary_name=name,
        model_name=model_name,
        layer=layer,
        n_prompts=n_prompts,
        n_tokens=int(x.shape[0]),
        polygram_overlap_threshold=polygram_overlap_threshold,
        jaccard_threshold=jaccard_threshold,
        min_firing_rate=0.0,
        min_both_fire=min_both_fire,
        feature_ids=tuple(ids),
        pairs=tuple(pairs),
        summary=ValidationSummary.unmeasured("epoch_inline"),
        confirmed=tuple(sorted((c.i, c.j) for c in pairs if c.gate_pass)),
    )


def aggregate_panel_reports(reports: Sequence[ValidationReport], name: str) -> ValidationReport:
    """One synthetic report over every pair seen in any panel (spec 13 §3.2
    step 6): polygram/Jaccard/counts are the max over panels, decoder overlap
    the first panel's, Pearson the mean weighted by ``max(1, n_either)``,
    ``gate_pass`` true if any panel passed it.  Pairs sorted by ``(i, j)``."""
    if not reports:
        raise CompressionError("aggregate_panel_reports: no panel reports to aggregate")
    seen: dict[tuple[int, int], list[CandidatePair]] = {}
    for r in reports:
        for p in r.pairs:
            seen.setdefault((p.i, p.j), []).append(p)
    pairs = []
    for (i, j), group in sorted(seen.items()):
        w = np.array([max(1, g.n_either_fire) for g in group], dtype=np.float64)
        pearson = float(np.dot(w, [g.pearson_activation for g in group]) / w.sum())
        pairs.append(
            CandidatePair(
                i=i,
                j=j,
                polygram_overlap=max(g.polygram_overlap for g in group),
                decoder_overlap=group[0].decoder_overlap,
                jaccard=max(g.jaccard for g in group),
                pearson_activation=pearson,
                kl_ablate_i=math.nan,
                kl_ablate_j=math.nan,
                kl_ratio_paired=math.nan,
                kl_log_ratio_abs=math.nan,
                n_fires_i=max(g.n_fires_i for g in group),
                n_fires_j=max(g.n_fires_j for g in group),
                n_both_fire=max(g.n_both_fire for g in group),
                n_either_fire=max(g.n_either_fire for g in group),
                gate_pass=any(g.gate_pass for g in group),
            )
        )
    first = reports[0]
    return ValidationReport(
        schema_version=first.schema_version,
        dictionary_name=name,
        model_name=first.model_name,
        layer=first.layer,
        n_prompts=first.n_prompts,
        n_tokens=first.n_tokens,
        polygram_overlap_threshold=first.polygram_overlap_threshold,
        jaccard_threshold=first.jaccard_threshold,
        min_firing_rate=first.min_firing_rate,
        min_both_fire=first.min_both_fire,
        feature_ids=tuple(sorted({f for r in reports for f in r.feature_ids})),
        pairs=tuple(pairs),
        summary=ValidationSummary.unmeasured("epoch_synthesized"),
        confirmed=tuple((p.i, p.j) for p in pairs if p.gate_pass),
    )


# ------------------------------------------------------------------- checks
def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _err(message: str) -> CompressionError:
    return CompressionError(f"EpochCompressor.{message}")


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _err(f"{name}: got {value!r}; expected a number")
    return float(value)


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _err(f"{name}: got {value!r}; expected an integer >= {minimum}")
    if int(value) < minimum:
        raise _err(f"{name}: got {value}; must be >= {minimum}")
    return int(value)


def _restricted_graph(
    previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    eligible: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray | None:
    """The previous iteration's pair graph restricted to ``eligible``, when
    that is exactly what recomputing would give: ``eligible`` is a subset of
    the previous set and its decoder rows are bitwise unchanged (the zero
    strategy only touches the rows it silences, which leave the set).  The
    edge order (row-major) survives the monotone position map.  ``None``
    when the graph must be recomputed."""
    if previous is None:
        return None
    prev_ids, prev_rows, prev_edges = previous
    pos = np.searchsorted(prev_ids, eligible)
    if (pos >= len(prev_ids)).any() or not np.array_equal(prev_ids[pos], eligible):
        return None
    if not np.array_equal(prev_rows[pos], rows):
        return None
    new_pos = np.full(len(prev_ids), -1, dtype=np.int64)
    new_pos[pos] = np.arange(len(eligible))
    mapped = new_pos[prev_edges]
    return mapped[(mapped >= 0).all(axis=1)]


# ------------------------------------------------------------ the compressor
@dataclass(eq=False)
class EpochCompressor:
    """Greedy-panel epoch compression of a whole SAE (spec 13).

    ``sae_checkpoint`` is any source of :func:`polygram.sae.load_sae`, any
    of the four architectures.  Activations at the SAE's hook are captured
    once from ``prompts`` (needs torch + transformers), or taken from
    ``cached_residuals`` (a ``(tokens, d_in)`` float array; ``prompts`` may
    then be empty).  ``layer`` / ``model_name`` override the SAE's cfg; with
    prompts and neither naming them, ``gpt2`` / layer 10 are used with a
    :class:`~polygram.errors.PolygramDefaultWarning`.  Defaults are polygram
    0.0.1's (the ``thorough`` profile of later versions).  ``progress``
    prints one stderr line per iteration.

    The quality bound (spec 16 §6.2): ``quality_metric`` ∈ {``ce_loss_score``,
    ``kl_div_with_sae``, ``upstream_proxy``} or None (``ce_loss_score`` when
    prompts give a model — ``kl_div_with_sae`` for a masked LM —, else
    ``upstream_proxy``); ``quality_tolerance`` (None: 0.01 for the CE score,
    0.05 nats for KL); ``eval_prompts`` (None: the last 25 % of ``prompts``,
    the first 75 % then gate and pre-pass) evaluated with ``eval_options``.
    """

    sae_checkpoint: SAE | Mapping[str, Any] | str | os.PathLike[str]
    prompts: Sequence[str]
    layer: int | None = None
    model_name: str | None = None
    strategy: str = "zero"
    device: str | None = None
    coverage_target: float = 0.95
    cosine_threshold: float = 0.30
    n_visits_per_feature: int = 3
    n_panels_max: int = 1000
    min_firing_rate: float = 0.01
    max_iterations: int = 5
    quality_delta_multiplier: float = 2.0
    polygram_overlap_threshold: float = 0.7
    jaccard_threshold: float = 0.30
    min_both_fire: int = 5
    save_intermediate_reports: bool = False
    allow_layer_zero: bool = False
    cached_residuals: np.ndarray | None = None
    progress: bool = True
    quality_metric: str | None = None
    quality_tolerance: float | None = None
    eval_prompts: Sequence[str] | None = None
    eval_options: EvalOptions | None = None
    _zeroed: set[int] = field(default_factory=set, init=False, repr=False)
    _debug: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _sae: SAE = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # checks in 0.0.1's order (spec 13 §2), then this port's extras
        self._sae = load_sae(self.sae_checkpoint)
        if isinstance(self.prompts, str | bytes) or not isinstance(self.prompts, Sequence):
            raise _err(f"prompts: got {self.prompts!r}; expected a non-empty sequence of strings")
        prompts = list(self.prompts)
        bad = [k for k, p in enumerate(prompts) if not isinstance(p, str) or not p]
        if bad:
            raise _err(f"prompts: entries {bad[:10]} are not non-empty strings")
        if not prompts and self.cached_residuals is None:
            raise _err("prompts: must be non-empty (or give cached_residuals)")
        self.prompts = prompts
        if self.strategy != "zero":
            raise _err(
                f"strategy: got {self.strategy!r}; the epoch loop supports only the 'zero' strategy"
            )
        ct = _real("coverage_target", self.coverage_target)
        if not 0.0 < ct <= 1.0:
            raise _err(f"coverage_target: got {ct!r}; must satisfy 0 < coverage_target <= 1")
        self.coverage_target = ct
        thr = _real("cosine_threshold", self.cosine_threshold)
        if not -1.0 <= thr <= 1.0:
            raise _err(f"cosine_threshold: got {thr!r}; must be in [-1, 1]")
        self.cosine_threshold = thr
        self.n_visits_per_feature = _int("n_visits_per_feature", self.n_visits_per_feature, 1)
        self.n_panels_max = _int("n_panels_max", self.n_panels_max, 1)
        mfr = _real("min_firing_rate", self.min_firing_rate)
        if not 0.0 <= mfr <= 1.0:
            raise _err(f"min_firing_rate: got {mfr!r}; must be in [0, 1]")
        self.min_firing_rate = mfr
        self.max_iterations = _int("max_iterations", self.max_iterations, 1)
        qdm = _real("quality_delta_multiplier", self.quality_delta_multiplier)
        # NaN would silently disable the guard in 0.0.1; inf is the way to do that
        if math.isnan(qdm) or qdm <= 0:
            raise _err(
                f"quality_delta_multiplier: got {qdm!r}; must be > 0 (inf turns the quality "
                "guard off)"
            )
        self.quality_delta_multiplier = qdm
        layer = self.layer
        if layer is not None and (
            isinstance(layer, bool) or not isinstance(layer, Integral) or layer < 0
        ):
            raise _err(f"layer: got {layer!r}; must be an integer >= 0 (a block index)")
        self.layer = None if layer is None else int(layer)
        # gate values: 0.0.1 did not range-check these here (spec 13 §9.9)
        for name in ("polygram_overlap_threshold", "jaccard_threshold"):
            v = _real(name, getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise _err(f"{name}: got {v!r}; must be in [0, 1]")
            setattr(self, name, v)
        self.min_both_fire = _int("min_both_fire", self.min_both_fire, 0)
        self._check_quality_settings()
        try:
            check_device(self.device)
        except ValueError as e:
            raise _err(str(e)) from None
        if self.model_name is not None and (
            not isinstance(self.model_name, str) or not self.model_name
        ):
            raise _err(f"model_name: got {self.model_name!r}; expected a non-empty string")
        self._sae = load_sae(self._sae, model_name=self.model_name, layer=self.layer)
        settings = self._sae.settings
        assert settings is not None
        if self.cached_residuals is None:  # a model pass: flag → cfg → warned fallback
            settings = settings.with_fallbacks(
                "EpochCompressor", self._sae.source.display, has_cfg=self._sae.cfg is not None
            )
            self._sae = replace(self._sae, settings=settings)
        # the layer-0 rule (spec 13) is about the block input: resid_pre only
        at_embeddings = settings.layer.value == 0 and settings.hook_kind.value in (
            None,
            "resid_pre",
        )
        if at_embeddings and not self.allow_layer_zero:
            raise _err(f"layer: {LAYER_ZERO_MESSAGE}")
        if self.cached_residuals is not None:
            x = np.asarray(self.cached_residuals)
            if x.ndim != 2 or x.dtype.kind != "f":
                raise _err(
                    f"cached_residuals: got a {x.dtype} array of shape {x.shape}; expected "
                    "a float (tokens, d_model) array"
                )
            if x.shape[0] == 0:
                raise _err("cached_residuals: has no tokens")
            if not np.isfinite(x).all():
                raise _err("cached_residuals: holds non-finite values")
            self.cached_residuals = np.ascontiguousarray(x, dtype=np.float32)

    def _check_quality_settings(self) -> None:
        from polygram.evals import EvalOptions

        self.quality_metric, self.quality_tolerance = check_quality_settings(
            "EpochCompressor", self.quality_metric, self.quality_tolerance
        )
        if self.eval_prompts is not None:
            ep = self.eval_prompts
            if isinstance(ep, str | bytes) or not isinstance(ep, Sequence) or not ep:
                raise _err("eval_prompts: expected a non-empty sequence of strings or None")
            bad = [k for k, p in enumerate(ep) if not isinstance(p, str) or not p]
            if bad:
                raise _err(f"eval_prompts: entries {bad[:10]} are not non-empty strings")
            self.eval_prompts = list(ep)
        if self.eval_options is not None and not isinstance(self.eval_options, EvalOptions):
            raise _err(
                f"eval_options: got {type(self.eval_options).__name__}; expected EvalOptions"
            )
        real = self.quality_metric in ("ce_loss_score", "kl_div_with_sae")
        if real and self.eval_prompts is None and not self.prompts:
            raise _err(
                f"quality_metric: {self.quality_metric!r} needs eval_prompts (or prompts): it "
                "is measured by running the model; with cached residuals only, use "
                "quality_metric='upstream_proxy'"
            )

    def _prompt_split(self) -> tuple[list[str], list[str] | None]:
        """``(gate, bound)`` prompts (spec 18 §3): ``eval_prompts`` when given;
        with cached residuals all the prompts bound (none are captured); else
        the first 75 % gate and pre-pass, the last 25 % bound."""
        prompts = list(self.prompts)
        if self.eval_prompts is not None:
            return prompts, list(self.eval_prompts)
        if self.cached_residuals is not None:
            return prompts, prompts or None
        return split_prompts(prompts)

    # ------------------------------------------------------------- stages
    def _say(self, text: str) -> None:
        if self.progress:
            print(f"polygram compress-epoch: {text}", file=sys.stderr, flush=True)

    @property
    def sae(self) -> SAE:
        """The source SAE (loaded once; its settings resolved)."""
        return self._sae

    def _residuals(self, prompts: Sequence[str]) -> np.ndarray:
        if self.cached_residuals is not None:
            return self.cached_residuals
        from polygram.runtime import HookPoint, capture_activations, get_model

        s = self._sae.settings
        assert s is not None
        layer, kind = s.require_hook("EpochCompressor")
        model = get_model(str(s.model_name.value), device=self.device)
        return capture_activations(
            model,
            HookPoint(layer, kind),
            prompts,
            prepend_bos=s.prepend_bos.value,
            context_size=s.context_size.value,
        )

    def _run_names(self) -> tuple[str, int]:
        """Model name and layer the panel reports record."""
        s = self._sae.settings
        assert s is not None
        model = s.model_name.value if s.model_name.value is not None else _UNKNOWN_MODEL
        layer = s.layer.value if s.layer.value is not None else _UNKNOWN_LAYER
        return str(model), int(layer)

    @property
    def debug(self) -> dict[str, Any]:
        """Internals of the last ``run()``: firing rates, priorities, the
        eligible set and pair-graph size per iteration, the quality deltas."""
        return self._debug

    def run(self, output_checkpoint: str | os.PathLike[str]) -> EpochResult:
        """Compress until convergence and write the result atomically to
        ``output_checkpoint`` (which must not resolve to the source; the layout
        of spec 16 §2.5: folder in → folder out, file in → file + sidecar cfg)."""
        self._zeroed = set()  # 0.0.1 kept it across runs (spec 13 §9.7)
        source = self._sae
        out = plan_output(source.source, output_checkpoint, "EpochCompressor.run").path
        source_sha = source.source_sha256()
        t0 = time.monotonic()

        gate_prompts, bound_prompts = self._prompt_split()
        bound = QualityBound.open(
            self.quality_metric,
            self.quality_tolerance,
            self.quality_delta_multiplier,
            source,
            bound_prompts,
            self.eval_options,
            device=self.device,
        )
        x = self._residuals(gate_prompts)
        n, d = source.d_sae, source.d_in
        if x.shape[1] != d:
            raise _err(f"run: residuals have width {x.shape[1]} but the SAE's d_in is {d}")
        t = x.shape[0]
        counts = saef.fire_counts(source, x)
        firing_rate = (counts / t).astype(np.float32)
        decoder_norm = np.linalg.norm(
            np.asarray(source.tensors["W_dec"], dtype=np.float32), axis=1
        ).astype(np.float32)
        priority = firing_rate * decoder_norm
        n_prompts = len(gate_prompts)
        self._debug = {
            "n_tokens": t,
            "firing_rate": firing_rate,
            "decoder_norm": decoder_norm,
            "priority": priority,
            "iterations": [],
        }
        self._say(
            f"pre-pass: {t} tokens, {int((firing_rate >= self.min_firing_rate).sum())} of {n} "
            f"features fire on >= {self.min_firing_rate:g} of them"
        )
        eval_before = bound.start(source)
        if eval_before is not None and bound.real:
            self._say(
                f"quality bound: {bound.metric} of the source = "
                f"{_fmt(eval_before.metric(bound.metric))} on {eval_before.n_tokens} tokens "
                f"(tolerance {bound.tolerance:g})"
            )

        current = source
        model_name, layer = self._run_names()
        iterations: list[EpochIteration] = []
        fingerprints: list[frozenset[frozenset[int]]] = []
        final_coverage = 1.0
        reason = "max_iterations"
        synth_name = f"EpochSynth_{self._stem()}"
        graph: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

        for k in range(self.max_iterations):
            mask = firing_rate >= self.min_firing_rate
            mask[sorted(self._zeroed)] = False
            eligible = np.flatnonzero(mask).astype(np.int64)
            rows = np.asarray(current.tensors["W_dec"][eligible], dtype=np.float32)
            edges = _restricted_graph(graph, eligible, rows)
            reused = edges is not None
            if edges is None:
                edges = cosine_pair_graph(rows, self.cosine_threshold)
            graph = (eligible, rows, edges)
            sel = select_panels(
                rows,
                priority[eligible],
                edges,
                n_visits_per_feature=self.n_visits_per_feature,
                n_panels_max=self.n_panels_max,
                coverage_target=self.coverage_target,
                panel_size=PANEL_SIZE,
            )
            final_coverage = sel.coverage
            fids = eligible.tolist()
            if sel.single_feature:
                warnings.warn(
                    f"iteration {k}: feature {fids[sel.panels[0].anchor]} is the only eligible "
                    "feature; a single-feature panel cannot confirm any pair",
                    RuntimeWarning,
                    stacklevel=2,
                )
            panels = tuple(
                Panel(
                    panel_id=p,
                    anchor=fids[sp.anchor],
                    feature_ids=tuple(fids[m] for m in sp.members),
                    cosines_to_anchor=tuple(round6(c) or 0.0 for c in sp.cosines),
                )
                for p, sp in enumerate(sel.panels)
            )
            self._debug["iterations"].append(
                {
                    "n_eligible": len(fids),
                    "n_edges": sel.n_edges,
                    "graph_reused": reused,
                    "n_covered": sel.n_covered,
                    "coverage": sel.coverage,
                }
            )
            stop = "no_more_priority_candidates" if k == 0 else "stable_clusters"
            if not panels:
                self._say(f"iteration {k}: no eligible features, stopping ({stop})")
                reason = stop
                break

            reports = [
                validate_panel(
                    p,
                    current,
                    x,
                    model_name=model_name,
                    layer=layer,
                    n_prompts=n_prompts,
                    polygram_overlap_threshold=self.polygram_overlap_threshold,
                    jaccard_threshold=self.jaccard_threshold,
                    min_both_fire=self.min_both_fire,
                )
                for p in panels
            ]
            paths = self._write_panel_reports(out.parent, k, reports)
            synth = aggregate_panel_reports(reports, synth_name)
            if not synth.confirmed:
                iterations.append(EpochIteration(k, panels, paths, 0, 0, (), 0.0, stop))
                self._say(
                    f"iteration {k}: {len(panels)} panels, coverage {sel.coverage:.4g}, "
                    f"0 confirmed pairs, stopping ({stop})"
                )
                reason = stop
                break

            components = connected_components(list(synth.confirmed))
            reps = {
                cid: min(members, key=lambda f: (-int(counts[f]), f))
                for cid, members in enumerate(components)
            }
            new_state, clusters = self._compress(current, synth, reps)
            fingerprint = frozenset(frozenset(c.members) for c in clusters)
            delta = quality_delta(x, current, new_state)
            quality = bound.check(new_state, delta)
            zeroed_now = tuple(sorted({f for c in clusters for f in c.zeroed}))
            previous = current
            current = new_state
            self._zeroed |= set(zeroed_now)

            breached = quality.breached
            if breached:
                state = "quality_bound_breached"
            elif fingerprint in fingerprints:
                state = "stable_clusters"
            elif k == self.max_iterations - 1:
                state = "max_iterations"
            else:
                state = "continuing"
            fingerprints.append(fingerprint)
            ce = round6(delta)
            iterations.append(
                EpochIteration(
                    iteration=k,
                    panels=panels,
                    validation_report_paths=paths,
                    confirmed_pair_count=len(synth.confirmed),
                    clusters_compressed=len(clusters),
                    features_zeroed_this_iteration=zeroed_now,
                    cross_entropy_delta=math.nan if ce is None else ce,
                    convergence_state=state,
                    quality_metric=quality.metric,
                    quality_value=quality.value,
                    quality_reference=quality.reference,
                    quality_change=quality.change,
                    quality_breached=quality.breached,
                )
            )
            self._debug["iterations"][-1]["quality_delta"] = delta
            self._say(
                f"iteration {k}: {len(panels)} panels, coverage {sel.coverage:.4g}, "
                f"{len(synth.confirmed)} confirmed pairs, {len(zeroed_now)} features zeroed, "
                + (
                    f"{quality.metric} {_fmt(quality.value)} (change {_fmt(quality.change)}), "
                    if bound.real
                    else ""
                )
                + f"delta {delta:.6g} ({state})"
            )
            if breached:
                current = previous
                self._zeroed -= set(zeroed_now)
                reason = state
                break
            if state != "continuing":
                reason = state
                break

        eval_after = bound.finish(current, unchanged=current is source)
        written = write_sae(
            current,
            output_checkpoint,
            provenance={
                "tool": "polygram compress-epoch",
                "source_sha256": source_sha,
                "n_features_zeroed": len(self._zeroed),
            },
            owner="EpochCompressor.run",
        )
        assert source.settings is not None
        report = EpochReport(
            source_checkpoint=source.source.display,
            source_checkpoint_sha256=source_sha,
            output_checkpoint=str(written.path),
            output_checkpoint_sha256=written.sha256,
            convergence_reason=reason,
            n_features_zeroed_total=len(self._zeroed),
            n_panels_total=sum(len(it.panels) for it in iterations),
            coverage_achieved=round6(final_coverage) or 0.0,
            wall_seconds=time.monotonic() - t0,
            iterations=tuple(iterations),
            sae_settings=source.settings.to_dict(),
            output_layout=written.layout,
            quality_metric=bound.metric,
            quality_tolerance=bound.tolerance,
            n_gate_prompts=len(gate_prompts),
            n_eval_prompts=len(bound_prompts or ()),
            eval_before=None if eval_before is None else eval_before.to_dict(),
            eval_after=None
            if eval_after is None
            else replace(
                eval_after, sae_source=str(written.path), sae_sha256=written.sha256
            ).to_dict(),
        )
        self._say(
            f"done: {reason}, {len(self._zeroed)} features zeroed over {len(iterations)} "
            f"iteration(s), output {str(out)!r}"
        )
        return EpochResult(report, written.path, self._final_dictionary(current))

    def _write_panel_reports(
        self, out_dir: Path, k: int, reports: Sequence[ValidationReport]
    ) -> tuple[str, ...]:
        if not self.save_intermediate_reports:
            return ()
        where = out_dir / "epoch_intermediate"
        paths = []
        for p, r in enumerate(reports):
            path = where / f"iter{k}_panel{p}.json"
            r.to_json(path)
            paths.append(str(path))
        return tuple(paths)

    def _compress(self, sae: SAE, synth: ValidationReport, reps: dict[int, int]) -> tuple[SAE, Any]:
        """One ``Compressor(strategy="zero")`` pass over the in-memory ``sae``;
        returns the new SAE and the clusters."""
        new, plan, _ = Compressor(synth, sae, strategy="zero", representatives=reps).compress()
        return new, plan.clusters

    def _stem(self) -> str:
        path = self._sae.source.path
        return checkpoint_stem(path) if path is not None else "in_memory"

    def _final_dictionary(self, sae: SAE) -> Dictionary:
        """Up to 8 zeroed features (all-zero rows, as in 0.0.1), or features
        0..7 when nothing was zeroed."""
        w_dec = np.asarray(sae.tensors["W_dec"])
        ids = sorted(self._zeroed)[:PANEL_SIZE] or list(range(min(PANEL_SIZE, w_dec.shape[0])))
        return decoder_dictionary(ids, w_dec[ids], f"Epoch_{self._stem()}")
