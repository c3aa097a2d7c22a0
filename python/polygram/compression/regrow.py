"""Regrow: write a fresh direction into every zeroed SAE slot (spec 12).

After a :class:`~polygram.compression.Compressor` silences the redundant
members of each cluster, those slots are dead capacity.  ``Regrower`` gives
each one a direction the SAE does not yet explain: it runs the SAE on
residual-stream activations, k-means-clusters what the SAE fails to
reconstruct (``R = X − SAE(X)``) into exactly as many clusters as there are
zeroed slots, and writes centroid ``k`` (unit length) into the ``k``-th
zeroed slot in ascending id order, tied (encoder column = decoder row) with a
zero encoder bias — plus, per architecture (spec 16 §1.6), a zero JumpReLU
threshold and zero gated ``b_gate`` / ``b_mag`` / ``r_mag``.  One shot: no
training, no gradients, no other feature touched.  The activations are
either given (``cached_residuals``) or captured at the SAE's hook from a
model (``prompts``; needs the ``behavioural`` extra).  The SAE is any source
``load_sae`` accepts; the output keeps its layout and dtypes (spec 16 §2.5).
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram._report_json import dumps_report, load_report_source, require_keys, round6
from polygram.compression.choices import REGROW_STRATEGIES
from polygram.errors import CompressionError, missing
from polygram.evals.request import EvalRequest, check_evaluation, evaluate_before_after
from polygram.runtime.devices import check_device
from polygram.sae import forward as saef
from polygram.sae.checkpoint import checkpoint_stem
from polygram.sae.load import load_sae
from polygram.sae.value import SAE
from polygram.sae.write import plan_output, write_sae

if TYPE_CHECKING:
    from polygram.compression.report import CompressionReport
    from polygram.dictionary import Dictionary

__all__ = [
    "RegrowPlan",
    "RegrowReport",
    "RegrowResult",
    "RegrowSlot",
    "RegrowStrategy",
    "Regrower",
]

#: A residual stream whose global std is below this carries nothing to cluster.
_NO_SIGNAL = 1e-9


class RegrowStrategy(str, enum.Enum):
    """How zeroed slots are refilled; only ``residual_kmeans`` is implemented."""

    RESIDUAL_KMEANS = "residual_kmeans"
    HIGH_DECODER_NORM_RANDOM = "high_decoder_norm_random"
    ORTHOGONAL_NOISE_SCALED = "orthogonal_noise_scaled"


@dataclass(frozen=True)
class RegrowSlot:
    """One refilled slot: its k-means cluster size and the written norms
    (6 s.f.; 0.0 when the slot was left as it was)."""

    feature_id: int
    cluster_size: int
    decoder_norm: float
    encoder_norm: float


@dataclass(frozen=True)
class RegrowPlan:
    """What ``Regrower.plan()`` decided: the k-means input size, the zeroed
    slots it was given (ascending), the checkpoint's full id range and one
    :class:`RegrowSlot` per zeroed slot (ascending by id)."""

    strategy: str
    n_residual_tokens: int
    zeroed_input: tuple[int, ...]
    feature_ids: tuple[int, ...]
    slots: tuple[RegrowSlot, ...]


@dataclass(frozen=True, eq=False)
class RegrowReport:
    """What a regrow did, with provenance; JSON per spec 12 §5.  Schema 2
    (spec 18 §1) adds ``sae_settings``, ``output_layout`` and the evaluation
    blocks ``eval_before`` / ``eval_after`` / ``eval_change`` (spec 16 §6.1);
    schema-1 files read with all of them None."""

    source_checkpoint: str
    source_checkpoint_sha256: str
    output_checkpoint: str
    output_checkpoint_sha256: str
    strategy: str
    plan: RegrowPlan
    n_slots_repopulated: int
    n_slots_left_zero: int
    strategy_params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    schema_version: int = 2
    sae_settings: Mapping[str, Any] | None = None
    output_layout: str | None = None
    eval_before: Mapping[str, Any] | None = None
    eval_after: Mapping[str, Any] | None = None
    eval_change: Mapping[str, Any] | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegrowReport):
            return NotImplemented
        return _canonical(self) == _canonical(other)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "schema_version": self.schema_version,
            "source_checkpoint": self.source_checkpoint,
            "source_checkpoint_sha256": self.source_checkpoint_sha256,
            "output_checkpoint": self.output_checkpoint,
            "output_checkpoint_sha256": self.output_checkpoint_sha256,
            "strategy": self.strategy,
            "n_slots_repopulated": self.n_slots_repopulated,
            "n_slots_left_zero": self.n_slots_left_zero,
            # written twice like 0.0.1 (readers use the plan's copy)
            "feature_ids": list(plan.feature_ids),
            "plan": {
                "strategy": plan.strategy,
                "n_residual_tokens": plan.n_residual_tokens,
                "zeroed_input": list(plan.zeroed_input),
                "feature_ids": list(plan.feature_ids),
                "slots": [
                    {
                        "feature_id": s.feature_id,
                        "cluster_size": s.cluster_size,
                        "decoder_norm": round6(s.decoder_norm),
                        "encoder_norm": round6(s.encoder_norm),
                    }
                    for s in plan.slots
                ],
            },
            "strategy_params": {k: _param_json(v) for k, v in self.strategy_params.items()},
            "provenance": dict(self.provenance),
            "sae_settings": None if self.sae_settings is None else dict(self.sae_settings),
            "output_layout": self.output_layout,
            **{k: None if getattr(self, k) is None else dict(getattr(self, k)) for k in _EVAL_KEYS},
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Compact sorted JSON; also written atomically to ``path`` when given."""
        return dumps_report(self.to_dict(), path)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> RegrowReport:
        doc = require_keys(
            load_report_source(source, "RegrowReport.from_json"),
            _REPORT_KEYS,
            "RegrowReport.from_json",
        )
        owner = "RegrowReport.from_json"
        p = require_keys(doc["plan"], _PLAN_KEYS, f"{owner}: plan")
        if not isinstance(p["slots"], list):
            raise ValueError(f"{owner}: plan.slots is {p['slots']!r}; expected a JSON array")
        slots = [
            require_keys(s, _SLOT_KEYS, f"{owner}: plan.slots[{k}]")
            for k, s in enumerate(p["slots"])
        ]
        for name in ("strategy_params", "provenance"):
            if not isinstance(doc[name], dict):
                raise ValueError(f"{owner}: {name} is {doc[name]!r}; expected a JSON object")
        settings, layout = doc.get("sae_settings"), doc.get("output_layout")
        if settings is not None and not isinstance(settings, dict):
            raise ValueError(f"{owner}: sae_settings is {settings!r}; expected a JSON object")
        if layout is not None and not isinstance(layout, str):
            raise ValueError(f"{owner}: output_layout is {layout!r}; expected a string")
        for name in _EVAL_KEYS:
            if doc.get(name) is not None and not isinstance(doc[name], dict):
                raise ValueError(f"{owner}: {name} is {doc[name]!r}; expected a JSON object")
        try:
            return cls._from_checked(doc, p, slots)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{owner}: a value has the wrong type: {e}") from None

    @classmethod
    def _from_checked(
        cls, doc: Mapping[str, Any], p: Mapping[str, Any], slots: list[Mapping[str, Any]]
    ) -> RegrowReport:
        plan = RegrowPlan(
            strategy=str(p["strategy"]),
            n_residual_tokens=int(p["n_residual_tokens"]),
            zeroed_input=tuple(int(x) for x in p["zeroed_input"]),
            feature_ids=tuple(int(x) for x in p["feature_ids"]),
            slots=tuple(
                RegrowSlot(
                    feature_id=int(s["feature_id"]),
                    cluster_size=int(s["cluster_size"]),
                    decoder_norm=0.0 if s["decoder_norm"] is None else float(s["decoder_norm"]),
                    encoder_norm=0.0 if s["encoder_norm"] is None else float(s["encoder_norm"]),
                )
                for s in slots
            ),
        )
        params = {
            str(k): int(v) if isinstance(v, bool | int) else float("nan" if v is None else v)
            for k, v in doc["strategy_params"].items()
        }
        return cls(
            schema_version=int(doc["schema_version"]),
            source_checkpoint=str(doc["source_checkpoint"]),
            source_checkpoint_sha256=str(doc["source_checkpoint_sha256"]),
            output_checkpoint=str(doc["output_checkpoint"]),
            output_checkpoint_sha256=str(doc["output_checkpoint_sha256"]),
            strategy=str(doc["strategy"]),
            plan=plan,
            n_slots_repopulated=int(doc["n_slots_repopulated"]),
            n_slots_left_zero=int(doc["n_slots_left_zero"]),
            strategy_params=params,
            provenance={str(k): str(v) for k, v in doc["provenance"].items()},
            sae_settings=doc.get("sae_settings"),
            output_layout=doc.get("output_layout"),
            **{k: doc.get(k) for k in _EVAL_KEYS},
        )


_REPORT_KEYS = (
    "schema_version",
    "source_checkpoint",
    "source_checkpoint_sha256",
    "output_checkpoint",
    "output_checkpoint_sha256",
    "strategy",
    "plan",
    "n_slots_repopulated",
    "n_slots_left_zero",
    "strategy_params",
    "provenance",
)


#: The evaluation blocks of spec 16 §6.1 (None when no evaluation was asked for).
_EVAL_KEYS = ("eval_before", "eval_after", "eval_change")
_PLAN_KEYS = ("strategy", "n_residual_tokens", "zeroed_input", "feature_ids", "slots")
_SLOT_KEYS = ("feature_id", "cluster_size", "decoder_norm", "encoder_norm")


def _param_json(v: Any) -> Any:
    return int(v) if isinstance(v, bool | int | np.integer) else round6(float(v))


def _canonical(r: RegrowReport) -> Any:
    """A comparable form in which NaN equals NaN (norms and params)."""

    def f(x: float) -> Any:
        return "nan" if x != x else x

    slots = tuple(
        (s.feature_id, s.cluster_size, f(s.decoder_norm), f(s.encoder_norm)) for s in r.plan.slots
    )
    plan = (
        r.plan.strategy,
        r.plan.n_residual_tokens,
        r.plan.zeroed_input,
        r.plan.feature_ids,
        slots,
    )
    params = tuple(
        sorted((k, f(v) if isinstance(v, float) else v) for k, v in r.strategy_params.items())
    )
    return (
        r.schema_version,
        r.source_checkpoint,
        r.source_checkpoint_sha256,
        r.output_checkpoint,
        r.output_checkpoint_sha256,
        r.strategy,
        plan,
        r.n_slots_repopulated,
        r.n_slots_left_zero,
        params,
        tuple(sorted(r.provenance.items())),
        json.dumps(r.sae_settings, sort_keys=True),
        r.output_layout,
        *(json.dumps(getattr(r, k), sort_keys=True) for k in _EVAL_KEYS),
    )


@dataclass(frozen=True)
class RegrowResult:
    plan: RegrowPlan
    report: RegrowReport
    output_checkpoint: Path
    dictionary: Dictionary


# ----------------------------------------------------------------- the math
def _kmeans(r: np.ndarray, k: int, n_init: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (in ``r``'s dtype) and cluster sizes of scikit-learn's Lloyd
    k-means, seeded (k-means++ init, sklearn defaults otherwise)."""
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise missing("scikit-learn", "regrow", "Regrower (residual k-means)") from None
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed, algorithm="lloyd").fit(r)
    sizes = np.bincount(km.labels_, minlength=k)
    return km.cluster_centers_.astype(r.dtype, copy=False), sizes


# ------------------------------------------------------------------ checks
def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise CompressionError(f"Regrower.{name}: got {value!r}; expected an integer >= {minimum}")
    if int(value) < minimum:
        raise CompressionError(f"Regrower.{name}: got {value}; must be >= {minimum}")
    return int(value)


# ----------------------------------------------------------------- Regrower
@dataclass
class Regrower:
    """Refill zeroed SAE slots from the residual stream (spec 12).

    ``sae_checkpoint`` is any source of :func:`polygram.sae.load_sae`.
    Exactly one of ``prompts`` (captured through the model at the SAE's hook)
    and ``cached_residuals`` (a ``(T, d_in)`` float array) supplies the
    activations.  ``model_name`` / ``layer`` override the SAE's cfg; with
    prompts and neither flag nor cfg naming them, the fallbacks ``gpt2`` /
    layer 10 are used with a :class:`~polygram.errors.PolygramDefaultWarning`
    (spec 18 §3).  ``evaluation`` (an :class:`~polygram.evals.EvalRequest`)
    evaluates source and output and records ``eval_before/eval_after/eval_change``.
    """

    sae_checkpoint: SAE | Mapping[str, Any] | str | os.PathLike[str]
    strategy: str | RegrowStrategy
    zeroed: Iterable[int]
    seed: int = 0
    n_init: int = 4
    prompts: Sequence[str] | None = None
    cached_residuals: np.ndarray | None = None
    model_name: str | None = None
    layer: int | None = None
    device: str | None = None
    evaluation: EvalRequest | None = None
    _provenance: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _plan: RegrowPlan | None = field(default=None, init=False, repr=False)
    _new: SAE | None = field(default=None, init=False, repr=False)
    _sae: SAE = field(init=False, repr=False)

    def __post_init__(self) -> None:
        strategy = (
            self.strategy.value if isinstance(self.strategy, RegrowStrategy) else self.strategy
        )
        if strategy not in REGROW_STRATEGIES:
            raise CompressionError(
                f"Regrower.strategy: unsupported strategy {self.strategy!r}; "
                f"allowed: {list(REGROW_STRATEGIES)}"
            )
        self.strategy = strategy
        if isinstance(self.zeroed, str | bytes) or not isinstance(self.zeroed, Iterable):
            raise CompressionError(f"Regrower.zeroed: got {self.zeroed!r}; expected integer ids")
        zeroed = set()
        for fid in self.zeroed:
            if isinstance(fid, bool) or not isinstance(fid, int | np.integer):
                raise CompressionError(f"Regrower.zeroed: id {fid!r} is not an integer")
            if fid < 0:
                raise CompressionError(f"Regrower.zeroed: id {fid} must be non-negative")
            zeroed.add(int(fid))
        if self.layer is not None:
            self.layer = _check_int("layer", self.layer, 0)
        self._sae = load_sae(self.sae_checkpoint, model_name=self.model_name, layer=self.layer)
        n = self._sae.d_sae
        bad = sorted(f for f in zeroed if f >= n)
        if bad:
            raise CompressionError(
                f"Regrower.zeroed: ids {bad} out of range for {n} features in "
                f"{self._sae.source.display!r}"
            )
        self.zeroed = zeroed
        self.seed = _check_int("seed", self.seed, 0)
        self.n_init = _check_int("n_init", self.n_init, 1)
        check_evaluation("Regrower", self.evaluation, self._sae)
        if (self.prompts is None) == (self.cached_residuals is None):
            raise CompressionError(
                "Regrower: give exactly one of prompts (captured from model_name) or "
                "cached_residuals (a (tokens, d_model) array)"
            )
        if self.prompts is not None:
            if isinstance(self.prompts, str) or not all(isinstance(p, str) for p in self.prompts):
                raise CompressionError("Regrower.prompts: expected a sequence of strings")
            self.prompts = list(self.prompts)
            if not self.prompts:
                raise CompressionError("Regrower.prompts: must be non-empty")
            try:
                check_device(self.device)
            except ValueError as e:
                raise CompressionError(f"Regrower.{e}") from None
            # the model and hook the prompts are run through: flag → cfg → warned fallback
            assert self._sae.settings is not None
            settings = self._sae.settings.with_fallbacks(
                "Regrower", self._sae.source.display, has_cfg=self._sae.cfg is not None
            )
            self._sae = replace(self._sae, settings=settings)
        else:
            x = np.asarray(self.cached_residuals)
            if x.ndim != 2:
                raise CompressionError(
                    f"Regrower.cached_residuals: shape {x.shape}; must be 2D (tokens, d_model)"
                )
            if x.dtype not in (np.float32, np.float64):
                raise CompressionError(
                    f"Regrower.cached_residuals: dtype {x.dtype}; must be float32 or float64"
                )
            if not np.isfinite(x).all():
                raise CompressionError("Regrower.cached_residuals: holds non-finite values")
            self.cached_residuals = np.ascontiguousarray(x, dtype=np.float32)

    @classmethod
    def from_compression_report(
        cls,
        report: CompressionReport,
        sae_checkpoint: SAE | Mapping[str, Any] | str | os.PathLike[str],
        *,
        strategy: str | RegrowStrategy,
        prompts: Sequence[str] | None = None,
        cached_residuals: np.ndarray | None = None,
        seed: int = 0,
        n_init: int = 4,
        model_name: str | None = None,
        layer: int | None = None,
        device: str | None = None,
        evaluation: EvalRequest | None = None,
    ) -> Regrower:
        """Regrow the slots a :class:`CompressionReport` zeroed, recording the
        report's checkpoints and dictionary name as provenance.  ``sae_checkpoint``
        is normally that report's output checkpoint."""
        zeroed = sorted({fid for c in report.plan.clusters for fid in c.zeroed})
        self = cls(
            sae_checkpoint,
            strategy,
            zeroed,
            seed=seed,
            n_init=n_init,
            prompts=prompts,
            cached_residuals=cached_residuals,
            model_name=model_name,
            layer=layer,
            device=device,
            evaluation=evaluation,
        )
        self._provenance = {
            "compression_report_source_sha256": str(report.source_checkpoint_sha256),
            "compression_report_output_sha256": str(report.output_checkpoint_sha256),
            "compression_report_dictionary_name": str(report.validation_report_dictionary_name),
        }
        return self

    @property
    def provenance(self) -> Mapping[str, str]:
        return dict(self._provenance)

    @property
    def sae(self) -> SAE:
        """The source SAE (loaded once; its settings resolved)."""
        return self._sae

    # -------------------------------------------------------------- stages
    def _residuals(self) -> np.ndarray:
        if self.cached_residuals is not None:
            return self.cached_residuals
        from polygram.runtime import HookPoint, capture_activations, get_model

        assert self.prompts is not None and self._sae.settings is not None
        s = self._sae.settings
        layer, kind = s.require_hook("Regrower")
        model = get_model(str(s.model_name.value), device=self.device)
        return capture_activations(
            model,
            HookPoint(layer, kind),
            self.prompts,
            prepend_bos=s.prepend_bos.value,
            context_size=s.context_size.value,
        )

    def plan(self) -> RegrowPlan:
        """Run the k-means and stage the regrown SAE (memoised)."""
        if self._plan is not None:
            return self._plan
        sae = self._sae
        ids = tuple(range(sae.d_sae))
        x = self._residuals()
        if x.shape[1] != sae.d_in:
            raise CompressionError(
                f"Regrower: residuals have width {x.shape[1]} but the SAE's d_in is {sae.d_in}"
            )
        zeroed = sorted(self.zeroed)
        if not zeroed:
            self._new = sae  # written unchanged by apply()
            self._plan = RegrowPlan(str(self.strategy), x.shape[0], (), ids, ())
            return self._plan
        if self.strategy != RegrowStrategy.RESIDUAL_KMEANS.value:
            raise NotImplementedError(
                f"Regrower strategy {self.strategy!r} is reserved and not implemented; "
                f"use 'residual_kmeans'"
            )
        t, k = x.shape[0], len(zeroed)
        if t < k:
            raise CompressionError(
                f"n_residual_tokens={t} is less than the K={k} zeroed slots; k-means needs at "
                "least one token per slot: give more prompts or residuals"
            )
        r = saef.residual(sae, x)
        if float(np.std(r)) < _NO_SIGNAL:
            raise RuntimeError(
                "Regrower: the residual stream has no signal (std < 1e-9): the SAE reconstructs "
                "these activations exactly, so there is nothing to regrow from"
            )
        centroids, sizes = _kmeans(r, k, self.n_init, self.seed)
        fids = np.asarray(zeroed, dtype=np.int64)
        c_norms = np.linalg.norm(centroids.astype(np.float64), axis=1)
        # an empty cluster or a (numerically) zero centroid leaves its slot as it was
        write = (sizes > 0) & (c_norms >= 1e-12)
        w = fids[write]
        u = centroids[write].astype(np.float64) / c_norms[write, None]
        new = regrow_slots(sae, w, u)
        dec_norms = np.zeros(k)
        enc_norms = np.zeros(k)
        dec_norms[write] = np.linalg.norm(new.tensors["W_dec"][w].astype(np.float64), axis=1)
        enc_norms[write] = np.linalg.norm(new.tensors["W_enc"][:, w].astype(np.float64), axis=0)
        slots = [
            RegrowSlot(fid, int(size), round6(dn) or 0.0, round6(en) or 0.0)
            for fid, size, dn, en in zip(zeroed, sizes, dec_norms, enc_norms, strict=True)
        ]
        self._new = new
        self._plan = RegrowPlan(str(self.strategy), t, tuple(zeroed), ids, tuple(slots))
        return self._plan

    def apply(
        self,
        plan: RegrowPlan | None = None,
        output_checkpoint: str | os.PathLike[str] | None = None,
    ) -> RegrowResult:
        """Write the regrown SAE atomically to ``output_checkpoint`` (every
        tensor, name and dtype of the source kept; spec 16 §2.5) and report it."""
        if output_checkpoint is None:
            raise CompressionError("Regrower.apply: output_checkpoint is required")
        plan_output(self._sae.source, output_checkpoint, "Regrower.apply")  # before any work
        own = self.plan()
        # 0.0.1 wrote this instance's tensors whatever plan was passed; refuse a
        # plan the tensors do not match instead of reporting it.
        if plan is not None and plan != own:
            raise CompressionError(
                "Regrower.apply: the plan was not produced by this Regrower's plan(); the "
                "tensors written always come from this instance's plan"
            )
        assert self._new is not None and self._sae.settings is not None  # staged by plan()
        n_regrown = sum(1 for s in own.slots if s.cluster_size > 0)
        # evaluated before anything is written: a failed evaluation leaves no output
        evals = (
            None
            if self.evaluation is None
            else evaluate_before_after(self._sae, self._new, self.evaluation)
        )
        source_sha = self._sae.source_sha256()
        written = write_sae(
            self._new,
            output_checkpoint,
            provenance={
                "tool": "polygram regrow",
                "source_sha256": source_sha,
                "n_features_regrown": n_regrown,
            },
            owner="Regrower.apply",
        )
        report = RegrowReport(
            source_checkpoint=self._sae.source.display,
            source_checkpoint_sha256=source_sha,
            output_checkpoint=str(written.path),
            output_checkpoint_sha256=written.sha256,
            strategy=str(self.strategy),
            plan=own,
            n_slots_repopulated=n_regrown,
            n_slots_left_zero=sum(1 for s in own.slots if s.cluster_size == 0),
            strategy_params={"seed": self.seed, "n_init": self.n_init},
            provenance=dict(self._provenance),
            sae_settings=self._sae.settings.to_dict(),
            output_layout=written.layout,
            **({} if evals is None else evals.blocks(str(written.path), written.sha256)),
        )
        return RegrowResult(own, report, written.path, self._debug_dictionary(self._new))

    def run(self, output_checkpoint: str | os.PathLike[str]) -> RegrowResult:
        """``apply(plan(), output_checkpoint)``."""
        return self.apply(self.plan(), output_checkpoint)

    def _debug_dictionary(self, new: SAE) -> Dictionary:
        """The first (≤ 8) regrown slots as a Dictionary, for a quick look."""
        from polygram.compression.compressor import decoder_dictionary

        n = new.d_sae
        ids = [i for i in sorted(self.zeroed)[:8] or range(8) if i < n]
        src = self._sae.source
        stem = checkpoint_stem(src.path) if src.path is not None else "in_memory"
        name = self._provenance.get("compression_report_dictionary_name", f"Regrown_{stem}")
        return decoder_dictionary(ids, np.asarray(new.tensors["W_dec"])[ids], name)


def regrow_slots(sae: SAE, fids: np.ndarray, units: np.ndarray) -> SAE:
    """``sae`` with unit directions ``units[k]`` written into slots ``fids[k]``
    (spec 16 §1.6): ``W_dec[j] = u``, ``W_enc[:, j] = u``, ``b_enc[j] = 0``;
    jumprelu ``threshold[j] = 0``; gated ``b_gate[j] = b_mag[j] = r_mag[j] = 0``.
    The slot then fires where ``x'·u > 0`` in every architecture."""
    edits = {name: np.array(sae.tensors[name]) for name in sae.tensors if name != "b_dec"}
    edits["W_dec"][fids, :] = units
    edits["W_enc"][:, fids] = units.T
    for name in ("b_enc", "threshold", "b_gate", "b_mag", "r_mag"):
        if name in edits:
            edits[name][fids] = 0
    return sae.replace_tensors(**edits)
