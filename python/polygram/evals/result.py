"""``EvalResult``: one SAE evaluated on one prompt set (spec 16 §5.5), and its
JSON (compact, sorted keys, floats to 6 significant figures, non-finite →
null; ``from_json`` requires every key and reads null as ``None``)."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from polygram._io import atomic_write_bytes
from polygram._report_json import dumps_report, load_report_source, require_keys, round6
from polygram.errors import EvalError

__all__ = ["EVAL_METRICS", "EVAL_SCHEMA_VERSION", "EvalResult"]

EVAL_SCHEMA_VERSION = 1

#: The float metrics (spec 16 §5.4), in the order docs and tables list them.
EVAL_METRICS: tuple[str, ...] = (
    "ce_loss_without_sae",
    "ce_loss_with_sae",
    "ce_loss_with_ablation",
    "ce_loss_score",
    "ce_loss_with_mean_ablation",
    "ce_loss_score_mean_ablation",
    "kl_div_with_sae",
    "kl_div_with_ablation",
    "kl_div_score",
    "mse",
    "mse_per_dim",
    "fvu",
    "explained_variance",
    "cossim",
    "l0",
    "l1",
    "frac_alive",
)
_STR = (
    "sae_source",
    "sae_sha256",
    "architecture",
    "model_name",
    "hook_name",
    "hook_kind",
    "dtype",
    "device",
    "sae_compute_dtype",
    "packing",
)
_INT = (
    "schema_version",
    "layer",
    "batch_size",
    "n_prompts",
    "n_truncated_prompts",
    "n_tokens",
    "n_ce_tokens",
    "n_dead",
    "n_dense",
)
_FLOAT = (*EVAL_METRICS, "dense_threshold", "wall_seconds")


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """The record of one evaluation.  Metrics are ``None`` when not computed
    (CE of a masked LM, the mean-ablation pair unless requested) and NaN when
    undefined (a denominator within 1e-12 of 0); both are JSON null.
    ``feature_frequency`` (float64, ``d_sae``) stays in Python: see
    :meth:`save_frequencies`."""

    schema_version: int = EVAL_SCHEMA_VERSION
    sae_source: str
    sae_sha256: str
    architecture: str
    model_name: str
    hook_name: str
    layer: int
    hook_kind: str
    dtype: str
    device: str
    sae_compute_dtype: str = "float32"
    batch_size: int
    context_size: int | None
    prepend_bos: bool | None
    packing: str
    splice_special: bool
    n_prompts: int
    n_truncated_prompts: int
    n_tokens: int
    n_ce_tokens: int
    ce_loss_without_sae: float | None
    ce_loss_with_sae: float | None
    ce_loss_with_ablation: float | None
    ce_loss_score: float | None
    ce_loss_with_mean_ablation: float | None = None
    ce_loss_score_mean_ablation: float | None = None
    kl_div_with_sae: float | None
    kl_div_with_ablation: float | None
    kl_div_score: float | None
    mse: float | None
    mse_per_dim: float | None
    fvu: float | None
    explained_variance: float | None
    cossim: float | None
    l0: float | None
    l1: float | None
    n_dead: int
    n_dense: int
    dense_threshold: float
    frac_alive: float | None
    wall_seconds: float
    sae_settings: dict[str, Any] = field(default_factory=dict)
    feature_frequency: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload (every field but ``feature_frequency``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "feature_frequency":
                continue
            v = getattr(self, f.name)
            out[f.name] = (None if v is None else round6(v)) if f.name in _FLOAT else v
        return out

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Compact sorted JSON; also written atomically to ``path`` when given."""
        return dumps_report(self.to_dict(), path)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> EvalResult:
        """Read JSON text or a file (a ``str`` starting with ``{`` is text)."""
        return cls.from_dict(load_report_source(source, "EvalResult.from_json"))

    @classmethod
    def from_dict(cls, doc: Any) -> EvalResult:
        """Inverse of :meth:`to_dict`; every key is required."""
        keys = [f.name for f in fields(cls) if f.name != "feature_frequency"]
        d = require_keys(doc, keys, "EvalResult")
        kw: dict[str, Any] = {}
        for name in keys:
            v = d[name]
            if name in _STR:
                kw[name] = _check(name, v, isinstance(v, str), "a string")
            elif name in _INT:
                ok = isinstance(v, Integral) and not isinstance(v, bool)
                kw[name] = int(_check(name, v, ok, "an integer"))
            elif name in _FLOAT:
                ok = v is None or (isinstance(v, Real) and not isinstance(v, bool))
                kw[name] = None if v is None else float(_check(name, v, ok, "a number or null"))
            elif name == "context_size":
                ok = v is None or (isinstance(v, Integral) and not isinstance(v, bool))
                kw[name] = _check(name, v, ok, "an integer or null")
            elif name in ("prepend_bos", "splice_special"):
                ok = isinstance(v, bool) or (v is None and name == "prepend_bos")
                kw[name] = _check(name, v, ok, "true or false")
            elif name == "sae_settings":
                kw[name] = _check(name, v, isinstance(v, dict), "a JSON object")
        if kw["schema_version"] != EVAL_SCHEMA_VERSION:
            raise EvalError(
                f"EvalResult: schema_version is {kw['schema_version']}; "
                f"this polygram reads {EVAL_SCHEMA_VERSION}"
            )
        for name in ("wall_seconds", "dense_threshold"):
            if kw[name] is None:
                raise EvalError(f"EvalResult: {name} is null; expected a number")
        return cls(**kw)

    def save_frequencies(self, path: str | os.PathLike[str]) -> Path:
        """Write ``feature_frequency`` as a float64 ``.npy`` (atomically)."""
        if self.feature_frequency is None:
            raise EvalError(
                "EvalResult.save_frequencies: this result has no feature_frequency "
                "(results read from JSON do not carry it)"
            )
        buf = io.BytesIO()
        np.save(buf, np.asarray(self.feature_frequency, dtype=np.float64))
        return atomic_write_bytes(path, buf.getvalue())

    def metric(self, name: str) -> float:
        """A metric of :data:`EVAL_METRICS` as a float (None → NaN)."""
        if name not in EVAL_METRICS:
            raise EvalError(f"unknown metric {name!r}; allowed: {', '.join(EVAL_METRICS)}")
        v = getattr(self, name)
        return math.nan if v is None else float(v)


def _check(name: str, v: Any, ok: bool, want: str) -> Any:
    if not ok:
        raise EvalError(f"EvalResult: {name} is {v!r}; expected {want}")
    return v
