"""Reusable settings objects for the loop classes and the importer (spec 15 §7).

Each config is a frozen dataclass whose defaults equal the defaults of the
constructor it feeds, so a default-constructed config changes nothing.  The
constructors take ``config=`` and resolve every tuning field by one rule
(:func:`pick`): an explicit keyword that is not ``None`` wins, then the
config's field, and the config class holds the documented default.

``to_dict()`` is JSON-safe (tuples → lists, nested configs → dicts);
``from_dict()`` is its inverse and warns about (and drops) unknown keys.
See docs/config.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from typing import Any, ClassVar, TypeVar

from polygram.errors import ConfigError

__all__ = [
    "FROM_CONFIG",
    "CancellationConfig",
    "CompressionConfig",
    "EpochCompressionConfig",
    "RegrowConfig",
    "SAEImportConfig",
    "ValidationConfig",
    "config_of",
    "pick",
]

C = TypeVar("C", bound="_Config")

#: The signature default of a dataclass field resolved through ``config=``:
#: ``None`` (typed ``Any`` so the field keeps its resolved type).
FROM_CONFIG: Any = None

#: Keys polygram 0.15 writes that this port has no field for: dropped
#: silently when null (0.15's own default), warned about otherwise.
_UPSTREAM_ONLY_KEYS = frozenset({"confirmer", "encoding_partition", "learn_axis_assignment"})


# ----------------------------------------------------------------- checks
def _owner(obj: object) -> str:
    return type(obj).__name__


def _bool(obj: object, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{_owner(obj)}.{name}: got {value!r}; expected True or False")
    return value


def _number(obj: object, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{_owner(obj)}.{name}: got {value!r}; expected a number")
    return float(value)


def _in_range(obj: object, name: str, value: object, lo: float, hi: float) -> float:
    v = _number(obj, name, value)
    if not lo <= v <= hi:  # NaN fails too
        raise ConfigError(f"{_owner(obj)}.{name}: got {value!r}; allowed: a number in [{lo}, {hi}]")
    return v


def _int(obj: object, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{_owner(obj)}.{name}: got {value!r}; expected an integer >= {minimum}")
    if int(value) < minimum:
        raise ConfigError(f"{_owner(obj)}.{name}: got {value!r}; allowed: an integer >= {minimum}")
    return int(value)


def _opt_int(obj: object, name: str, value: object, minimum: int) -> int | None:
    return None if value is None else _int(obj, name, value, minimum)


def _choice(obj: object, name: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{_owner(obj)}.{name}: got {value!r}; expected one of {list(allowed)}")
    if value not in allowed:
        raise ConfigError(f"{_owner(obj)}.{name}: got {value!r}; allowed: {list(allowed)}")
    return value


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


# ------------------------------------------------------------ resolution
def config_of(cls: type[C], config: object, owner: str) -> C:
    """``config`` itself, or ``cls()`` (all defaults) for ``None``; any other
    class → ``TypeError``."""
    if config is None:
        return cls()
    if not isinstance(config, cls):
        raise TypeError(
            f"{owner}: config got {type(config).__name__}; expected a {cls.__name__} or None"
        )
    return config


def pick(explicit: Any, config: object, name: str) -> Any:
    """The precedence rule (spec 15 §0.3): an explicit non-``None`` value,
    else the config's field (whose default is the documented default)."""
    return explicit if explicit is not None else getattr(config, name)


# ------------------------------------------------------------ the mixin
class _Config:
    """``to_dict`` / ``from_dict`` for the frozen config dataclasses."""

    #: fields held as tuples (JSON lists are turned back into tuples)
    _TUPLES: ClassVar[tuple[str, ...]] = ()
    #: fields holding a nested config: name → its class
    _NESTED: ClassVar[dict[str, type[_Config]]] = {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, _Config):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, dict):
                v = dict(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Rebuild a config from :meth:`to_dict` output (or 0.15's): lists of
        tuple fields become tuples, nested dicts become configs, unknown keys
        are dropped with a ``UserWarning``; the constructor's checks then run."""
        if not isinstance(data, Mapping):
            raise TypeError(
                f"{cls.__name__}.from_dict: got {type(data).__name__}; expected a mapping"
            )
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                if key in _UPSTREAM_ONLY_KEYS:
                    if value is not None:
                        warnings.warn(
                            f"{cls.__name__}.from_dict: ignoring key {key!r} (a polygram 0.15 "
                            "option this port does not have)",
                            UserWarning,
                            stacklevel=2,
                        )
                    continue
                warnings.warn(
                    f"{cls.__name__}.from_dict: ignoring unknown key {key!r}",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            nested = cls._NESTED.get(key)
            if nested is not None and isinstance(value, Mapping):
                value = nested.from_dict(value)
            elif key in cls._TUPLES and isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)


# ------------------------------------------------------------ the configs
@dataclass(frozen=True)
class ValidationConfig(_Config):
    """The gate of ``BehaviouralValidator`` (and of the epoch's panels)."""

    polygram_overlap_threshold: float = 0.7
    jaccard_threshold: float = 0.30
    min_firing_rate: float = 0.01
    min_both_fire: int = 5
    allow_layer_zero: bool = False

    def __post_init__(self) -> None:
        for name in ("polygram_overlap_threshold", "jaccard_threshold", "min_firing_rate"):
            _set(self, name, _in_range(self, name, getattr(self, name), 0.0, 1.0))
        _set(self, "min_both_fire", _int(self, "min_both_fire", self.min_both_fire, 1))
        _bool(self, "allow_layer_zero", self.allow_layer_zero)


_OPTIMIZE_METHODS = ("grid", "scipy")


def _default_optimize() -> dict[str, Any]:
    return {"method": "grid", "max_steps": 50}


@dataclass(frozen=True)
class CancellationConfig(_Config):
    """The search settings of ``Cancellation``."""

    _TUPLES = ("grid_outer",)

    tolerance: float = 0.05
    preserve_tiers: bool = True
    optimize: dict[str, Any] = field(default_factory=_default_optimize)
    grid_outer: tuple[int, int] = (5, 5)
    min_amp_overlap: float = 0.0

    def __post_init__(self) -> None:
        _set(self, "tolerance", _in_range(self, "tolerance", self.tolerance, 0.0, 1.0))
        _bool(self, "preserve_tiers", self.preserve_tiers)
        if not isinstance(self.optimize, Mapping):
            raise TypeError(
                f"CancellationConfig.optimize: got {self.optimize!r}; expected a mapping like "
                "{'method': 'grid', 'max_steps': 50}"
            )
        unknown = sorted(set(self.optimize) - {"method", "max_steps"}, key=str)
        if unknown:
            raise ConfigError(
                f"CancellationConfig.optimize: unknown key(s) {unknown}; allowed: "
                "['max_steps', 'method']"
            )
        opt = {**_default_optimize(), **self.optimize}  # a copy: the caller's dict stays theirs
        _choice(self, "optimize['method']", opt["method"], _OPTIMIZE_METHODS)
        opt["max_steps"] = _int(self, "optimize['max_steps']", opt["max_steps"], 1)
        _set(self, "optimize", opt)
        g = self.grid_outer
        if isinstance(g, str) or not isinstance(g, Sequence) or len(g) != 2:
            raise TypeError(
                f"CancellationConfig.grid_outer: got {g!r}; expected a pair of integers >= 1"
            )
        _set(
            self,
            "grid_outer",
            (_int(self, "grid_outer[0]", g[0], 1), _int(self, "grid_outer[1]", g[1], 1)),
        )
        _set(
            self,
            "min_amp_overlap",
            _in_range(self, "min_amp_overlap", self.min_amp_overlap, 0.0, 1.0),
        )


@dataclass(frozen=True)
class CompressionConfig(_Config):
    """The choices of ``Compressor`` (threshold, target-K and Pareto modes)."""

    strategy: str = "zero"
    rep_selection: str = "n_fires"
    merge_mode: str = "freq_weighted"
    target_n_features_kept: int | None = None
    score_field: str = "polygram_overlap"

    def __post_init__(self) -> None:
        # imported here: importing polygram.compression runs its __init__,
        # whose compressor imports this module
        from polygram.compression.choices import (
            MERGE_MODES,
            REP_SELECTIONS,
            SCORE_FIELDS,
            STRATEGIES,
        )

        _choice(self, "strategy", self.strategy, STRATEGIES)
        _choice(self, "rep_selection", self.rep_selection, REP_SELECTIONS)
        _choice(self, "merge_mode", self.merge_mode, MERGE_MODES)
        _set(
            self,
            "target_n_features_kept",
            _opt_int(self, "target_n_features_kept", self.target_n_features_kept, 1),
        )
        _choice(self, "score_field", self.score_field, SCORE_FIELDS)


@dataclass(frozen=True)
class EpochCompressionConfig(_Config):
    """The loop settings of ``EpochCompressor``; ``validation`` supplies its
    gate (thresholds, firing rate, both-fire count) when given."""

    _NESTED: ClassVar[dict[str, type[_Config]]] = {"validation": ValidationConfig}

    coverage_target: float = 0.95
    cosine_threshold: float = 0.30
    n_visits_per_feature: int = 3
    max_iterations: int = 5
    quality_delta_multiplier: float = 2.0
    validation: ValidationConfig | None = None

    def __post_init__(self) -> None:
        ct = _number(self, "coverage_target", self.coverage_target)
        if not 0.0 < ct <= 1.0:
            raise ConfigError(
                f"EpochCompressionConfig.coverage_target: got {self.coverage_target!r}; "
                "allowed: a number in (0, 1]"
            )
        _set(self, "coverage_target", ct)
        _set(
            self,
            "cosine_threshold",
            _in_range(self, "cosine_threshold", self.cosine_threshold, -1.0, 1.0),
        )
        _set(
            self,
            "n_visits_per_feature",
            _int(self, "n_visits_per_feature", self.n_visits_per_feature, 1),
        )
        _set(self, "max_iterations", _int(self, "max_iterations", self.max_iterations, 1))
        q = _number(self, "quality_delta_multiplier", self.quality_delta_multiplier)
        if math.isnan(q) or q <= 0:
            raise ConfigError(
                f"EpochCompressionConfig.quality_delta_multiplier: got "
                f"{self.quality_delta_multiplier!r}; allowed: a number > 0 (inf turns the "
                "quality guard off)"
            )
        _set(self, "quality_delta_multiplier", q)
        if self.validation is not None and not isinstance(self.validation, ValidationConfig):
            raise TypeError(
                f"EpochCompressionConfig.validation: got {type(self.validation).__name__}; "
                "expected a ValidationConfig or None"
            )


@dataclass(frozen=True, kw_only=True)
class RegrowConfig(_Config):
    """The settings of ``Regrower.from_compression_report``.  ``model_name``
    and ``layer`` may stay ``None``: they are needed only to capture residuals
    from prompts (spec 18 §3)."""

    _TUPLES = ("prompts",)

    model_name: str | None = None
    layer: int | None = None
    strategy: str = "residual_kmeans"
    prompts: tuple[str, ...] | None = None
    seed: int = 0
    n_init: int = 4
    top_k: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        from polygram.compression.choices import REGROW_STRATEGIES  # see CompressionConfig

        if self.model_name is not None and (
            not isinstance(self.model_name, str) or not self.model_name
        ):
            raise (TypeError if not isinstance(self.model_name, str) else ConfigError)(
                f"RegrowConfig.model_name: got {self.model_name!r}; allowed: a non-empty "
                "model name or None"
            )
        _set(self, "layer", _opt_int(self, "layer", self.layer, 0))
        _choice(self, "strategy", self.strategy, REGROW_STRATEGIES)
        if self.prompts is not None:
            p = self.prompts
            if isinstance(p, str) or not isinstance(p, Sequence):
                raise TypeError(
                    f"RegrowConfig.prompts: got {p!r}; expected a sequence of strings or None"
                )
            if not all(isinstance(s, str) for s in p):
                raise TypeError("RegrowConfig.prompts: every prompt must be a string")
            _set(self, "prompts", tuple(p))
        _set(self, "seed", _int(self, "seed", self.seed, 0))
        _set(self, "n_init", _int(self, "n_init", self.n_init, 1))
        _set(self, "top_k", _opt_int(self, "top_k", self.top_k, 0))
        if self.device is not None and not isinstance(self.device, str):
            raise TypeError(f"RegrowConfig.device: got {self.device!r}; expected a str or None")


@dataclass(frozen=True)
class SAEImportConfig(_Config):
    """The options of ``from_sae_lens``.  ``None`` fields defer to the
    profile (``n_clusters``, ``gamma_range``) or to ``clustered``."""

    _TUPLES = ("gamma_range",)

    assign_gamma: bool = False
    gamma_range: tuple[float, float] | None = None
    n_clusters: int | None = None
    profile: str | None = None
    assign_amp_knobs: bool = False
    assign_phase_knobs: bool = False

    def __post_init__(self) -> None:
        for name in ("assign_gamma", "assign_amp_knobs", "assign_phase_knobs"):
            _bool(self, name, getattr(self, name))
        g = self.gamma_range
        if g is not None:
            if isinstance(g, str) or not isinstance(g, Sequence) or len(g) != 2:
                raise TypeError(
                    f"SAEImportConfig.gamma_range: got {g!r}; expected a (low, high) pair or None"
                )
            lo = _number(self, "gamma_range[0]", g[0])
            hi = _number(self, "gamma_range[1]", g[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ConfigError(
                    f"SAEImportConfig.gamma_range: got {g!r}; allowed: finite low <= high"
                )
            _set(self, "gamma_range", (lo, hi))
        _set(self, "n_clusters", _opt_int(self, "n_clusters", self.n_clusters, 1))
        if self.profile is not None and not isinstance(self.profile, str):
            raise TypeError(
                f"SAEImportConfig.profile: got {self.profile!r}; expected a profile name or None"
            )
