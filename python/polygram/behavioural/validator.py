"""``BehaviouralValidator``: does Polygram's predicted overlap rank real
co-firing?  (spec 10 §2–§5)

Two stages: :meth:`~BehaviouralValidator.predict` enumerates every panel
pair with its polygram overlap ``|G_ij|²`` and decoder cos² (numpy only,
never torch); :meth:`~BehaviouralValidator.validate`
runs the model — one baseline pass, then one ablation sweep per selected
feature, batched through :mod:`polygram.runtime` — and fills in co-firing
and ablation-KL statistics (``polygram.behavioural.sweeps``, imported lazily).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from polygram.behavioural.aggregate import decoder_cos2
from polygram.behavioural.report import CandidatePair, ValidationReport, unmeasured_pair
from polygram.config import FROM_CONFIG, ValidationConfig, config_of, pick
from polygram.dictionary import Dictionary
from polygram.errors import HookError
from polygram.runtime import HOOK_KINDS, check_device, check_dtype
from polygram.sae.load import load_sae
from polygram.sae.records import selected_ids
from polygram.sae.value import SAE

__all__ = ["LAYER_ZERO_NOTE", "MAX_FEATURES_PER_DICTIONARY", "BehaviouralValidator"]

#: The rung-1 MPS capacity (0.0.1's constant); a dictionary is held to its
#: encoding's ``max_features`` (this, for an encoding that declares none).
MAX_FEATURES_PER_DICTIONARY = 8

LAYER_ZERO_NOTE = (
    "layer=0 hooks the model input (the embeddings entering block 0), a structural dead "
    "zone for ablation-KL: removing a feature there barely moves the next-token "
    "distribution (upstream measured ≈5e-5 nats at block 0 against ≈1 nat at blocks 5 and "
    "10 of GPT-2 small; see docs/research/deeper-layer-ablation-probe.md). Use a deeper "
    "layer (>= 5 recommended, 10 for GPT-2 small), or pass allow_layer_zero=True to run "
    "at layer 0 anyway."
)


def unit_interval(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1], or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: got {value!r}; must be a number in [0, 1]")
    return float(value)


def existing_checkpoint(name: str, path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path to an existing file, or ValueError naming ``name``."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name}: {str(p)!r} not found on disk (or not a file)")
    return p


@dataclass
class BehaviouralValidator:
    """Validate a Polygram dictionary of SAE features against a real model.

    ``dictionary`` is the Dictionary built from ``feature_ids`` (same order,
    e.g. by ``from_sae_lens``); ``sae_checkpoint`` any source of
    :func:`polygram.sae.load_sae` (an ``SAE``, a mapping of arrays, a SAELens
    folder, a ``.safetensors`` file; any of the four architectures).
    ``layer`` and ``hook`` the hook point the SAE reads (``resid_pre``, the
    block's input, by default; also ``resid_post``, ``attn_out``,
    ``mlp_out``); with neither given, the cfg's ``hook_name``, else
    :class:`~polygram.errors.HookError`.  ``model_name``, ``context_size``
    and ``prepend_bos`` default to the cfg's (the model falls back to
    ``gpt2`` with a :class:`~polygram.errors.PolygramDefaultWarning`).  The
    resolved values are written back to these fields.  A pair is confirmed when
    ``polygram_overlap >= polygram_overlap_threshold``, ``jaccard >=
    jaccard_threshold`` and ``n_both_fire >= min_both_fire``.
    ``min_firing_rate`` only warns.  The five gate fields (thresholds, firing
    rate, both-fire count, ``allow_layer_zero``) left ``None`` come from
    ``config`` (a :class:`~polygram.config.ValidationConfig`), else its
    defaults 0.7 / 0.30 / 0.01 / 5 / False.  ``progress`` prints one stderr
    line per stage and sweep.

    Runtime (docs/runtime.md): ``batch_size`` prompts per forward
    (right-padded, masked; results agree with batch 1 to float precision),
    ``device`` (``auto|cpu|mps|cuda|cuda:N``), ``dtype``
    (``auto|float32|bfloat16|float16``), ``context_size`` (prompts are cut to
    it; None: the model's own limit), ``prepend_bos`` (None: the tokenizer's
    default), ``block_path`` (the block list of a model outside the hook
    table; residual hooks only).
    """

    dictionary: Dictionary
    sae_checkpoint: SAE | Mapping[str, Any] | str | os.PathLike[str]
    feature_ids: Sequence[int]
    prompts: Sequence[str]
    layer: int | None = None
    model_name: str | None = None
    polygram_overlap_threshold: float = FROM_CONFIG
    jaccard_threshold: float = FROM_CONFIG
    min_firing_rate: float = FROM_CONFIG
    min_both_fire: int = FROM_CONFIG
    allow_layer_zero: bool = FROM_CONFIG
    device: str | None = None
    progress: bool = True
    batch_size: int = 8
    dtype: str = "auto"
    context_size: int | None = None
    prepend_bos: bool | None = None
    hook: str | None = None
    block_path: str | None = None
    config: ValidationConfig | None = None
    _decoder_rows_cache: np.ndarray | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _sae: SAE = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the gate fields left None: config, else ValidationConfig's defaults
        cfg = config_of(ValidationConfig, self.config, "BehaviouralValidator")
        for name in (
            "polygram_overlap_threshold",
            "jaccard_threshold",
            "min_firing_rate",
            "min_both_fire",
            "allow_layer_zero",
        ):
            setattr(self, name, pick(getattr(self, name), cfg, name))
        if isinstance(self.feature_ids, str | bytes):
            raise ValueError(
                f"feature_ids: got {self.feature_ids!r}; expected a sequence of integers"
            )
        ids = list(self.feature_ids)
        n_feat = len(self.dictionary.features)
        if len(ids) != n_feat:
            raise ValueError(
                f"feature_ids: length {len(ids)} does not match the dictionary's "
                f"{n_feat} features ({self.dictionary.name!r}); give one id per feature, "
                "in dictionary order"
            )
        cap = int(getattr(self.dictionary.encoding, "max_features", MAX_FEATURES_PER_DICTIONARY))
        if len(ids) > cap:
            raise ValueError(
                f"feature_ids: {len(ids)} features exceed the per-dictionary cap of {cap}"
            )
        for name in ("polygram_overlap_threshold", "jaccard_threshold", "min_firing_rate"):
            setattr(self, name, unit_interval(name, getattr(self, name)))
        mbf = self.min_both_fire
        if isinstance(mbf, bool) or not isinstance(mbf, Integral) or mbf < 1:
            raise ValueError(f"min_both_fire: got {mbf!r}; must be an integer >= 1")
        self.min_both_fire = int(mbf)
        layer = self.layer
        if layer is not None and (
            isinstance(layer, bool) or not isinstance(layer, Integral) or layer < 0
        ):
            raise ValueError(f"layer: got {layer!r}; must be an integer >= 0 (a block index)")
        if self.hook is not None and self.hook not in HOOK_KINDS:
            raise HookError(f"hook: got {self.hook!r}; expected one of {', '.join(HOOK_KINDS)}")
        if layer is not None:  # 0.0.1's order: the layer-0 rule before prompts and SAE
            self._layer_zero_rule(int(layer), self.hook)
        if isinstance(self.prompts, str | bytes):
            raise ValueError("prompts: got a single string; expected a sequence of prompts")
        if not list(self.prompts):
            raise ValueError("prompts: empty; give at least one prompt")
        self._resolve_sae(None if layer is None else int(layer))
        if layer is None:  # the cfg gave the hook
            self._layer_zero_rule(int(self.layer or 0), self.hook)
        prompts = list(self.prompts)
        # beyond 0.0.1's checks (which come first, in its order)
        self.feature_ids = selected_ids(ids)
        out_of_range = [f for f in self.feature_ids if not 0 <= f < self._sae.d_sae]
        if out_of_range:
            raise ValueError(
                f"feature_ids: {out_of_range} out of range; {self._sae.source.display!r} holds "
                f"features 0..{self._sae.d_sae - 1}"
            )
        bad = [k for k, p in enumerate(prompts) if not isinstance(p, str) or not p]
        if bad:
            raise ValueError(
                f"prompts: entries {bad[:10]} are not non-empty strings; each prompt must be text"
            )
        self.prompts = prompts
        check_device(self.device)  # the name only; availability is checked by validate()
        self.dtype = check_dtype(self.dtype)
        for name, low in (("batch_size", 1), ("context_size", 1)):
            value = getattr(self, name)
            if value is None and name == "context_size":
                continue
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"{name}: got {value!r}; must be an integer >= {low}")
            setattr(self, name, int(value))
        if self.prepend_bos is not None and not isinstance(self.prepend_bos, bool):
            raise ValueError(f"prepend_bos: got {self.prepend_bos!r}; expected True, False or None")

    def _layer_zero_rule(self, layer: int, hook: str | None) -> None:
        """Layer 0's block input is the embeddings (spec 10): refused, or warned
        with ``allow_layer_zero``; the other hook kinds at layer 0 are fine."""
        if layer == 0 and hook in (None, "resid_pre"):
            if not self.allow_layer_zero:
                raise ValueError(LAYER_ZERO_NOTE)
            warnings.warn(LAYER_ZERO_NOTE, RuntimeWarning, stacklevel=4)

    def _resolve_sae(self, layer: int | None) -> None:
        """Load the SAE and resolve the hook, model and tokenisation settings
        (flag → cfg → fallback, spec 16 §2.3); the hook is required."""
        if self.model_name is not None and (
            not isinstance(self.model_name, str) or not self.model_name
        ):
            raise ValueError(f"model_name: got {self.model_name!r}; expected a non-empty string")
        sae = load_sae(
            self.sae_checkpoint,
            layer=layer,
            hook=self.hook,
            model_name=self.model_name,
            context_size=self.context_size,
            prepend_bos=self.prepend_bos,
        )
        assert sae.settings is not None
        sae.settings.require_hook("BehaviouralValidator")
        settings = sae.settings.with_fallbacks(
            "BehaviouralValidator", sae.source.display, has_cfg=sae.cfg is not None
        )
        self._sae = replace(sae, settings=settings)
        self.layer, self.hook = settings.require_hook("BehaviouralValidator")
        self.model_name = str(settings.model_name.value)
        self.context_size = settings.context_size.value
        self.prepend_bos = settings.prepend_bos.value

    @property
    def sae(self) -> SAE:
        """The SAE (loaded once, at construction; its settings resolved)."""
        return self._sae

    # ------------------------------------------------------------------ predict
    def predict(self) -> list[CandidatePair]:
        """Every panel pair ``a < b`` (row-major, panel order) with
        ``polygram_overlap = |G_ab|²`` and decoder cos²; behavioural fields
        NaN, counters 0, ``gate_pass`` False.  Never imports torch."""
        poly = np.abs(self.dictionary.gram()) ** 2
        ids = list(self.feature_ids)
        rows = np.asarray(self._sae.tensors["W_dec"])[ids]
        self._decoder_rows_cache = rows
        cos2 = decoder_cos2(rows)
        n = len(ids)
        return [
            unmeasured_pair(ids[a], ids[b], float(poly[a, b]), float(cos2[a, b]))
            for a in range(n)
            for b in range(a + 1, n)
        ]

    # ----------------------------------------------------------------- validate
    def validate(self, candidates: Sequence[CandidatePair] | None = None) -> ValidationReport:
        """Run the model (torch + transformers, the ``[behavioural]`` extra)
        and aggregate ``candidates`` (default: :meth:`predict`) into a report.
        Cost: ``⌈P/B⌉ + Σ_k ⌈P_k/B⌉`` forwards for ``P`` prompts, batch size
        ``B`` and ``P_k`` prompts where feature ``k`` fires; the model is loaded
        once per process (:func:`polygram.runtime.get_model`)."""
        from polygram.behavioural.sweeps import run_validation

        if candidates is None:
            candidates = self.predict()
        return run_validation(self, list(candidates))

    def run(self) -> ValidationReport:
        """``validate(predict())``."""
        return self.validate(self.predict())
