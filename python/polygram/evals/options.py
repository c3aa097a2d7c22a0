"""``EvalOptions``: how an evaluation tokenises, batches and splices
(spec 16 §5.1).  ``None`` / :data:`UNSET` fields resolve by the settings
precedence of spec 16 §2.3 (explicit → the SAE's cfg → fallback)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Final

from polygram.errors import EvalError
from polygram.runtime import DEVICE_HELP, DTYPES, PACKINGS, check_device

__all__ = ["UNSET", "EvalOptions", "Unset"]


class Unset:
    """The type of :data:`UNSET`: "not given, take the cfg's value" — distinct
    from ``None`` where ``None`` itself means something (``prepend_bos=None``
    is the tokenizer's own default)."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


def _bad(name: str, value: object, allowed: str) -> EvalError:
    return EvalError(f"EvalOptions.{name} is {value!r}; allowed: {allowed}")


def _positive_int(name: str, value: object, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 1:
        raise _bad(name, value, "an integer >= 1" + (" or None" if optional else ""))


@dataclass(frozen=True)
class EvalOptions:
    """``batch_size`` rows per forward; ``context_size`` truncation (None: the
    cfg's, else the model's limit); ``prepend_bos`` (UNSET: the cfg's; None:
    the tokenizer's default); ``packing`` (:data:`PACKINGS`); ``device`` /
    ``dtype`` of the model; ``mean_ablation`` adds the mean-ablated sweep;
    ``dense_threshold`` for ``n_dense``; ``splice_special`` splices the SAE at
    special positions too (SAEBench's default); ``max_tokens`` stops after the
    first whole batch reaching that many evaluated tokens."""

    batch_size: int = 8
    context_size: int | None = None
    prepend_bos: bool | Unset | None = UNSET
    packing: str = "none"
    device: str | None = None
    dtype: str = "auto"
    mean_ablation: bool = False
    dense_threshold: float = 0.1
    splice_special: bool = False
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        _positive_int("batch_size", self.batch_size, optional=False)
        _positive_int("context_size", self.context_size, optional=True)
        _positive_int("max_tokens", self.max_tokens, optional=True)
        if not (self.prepend_bos is UNSET or self.prepend_bos is None) and not isinstance(
            self.prepend_bos, bool
        ):
            raise _bad("prepend_bos", self.prepend_bos, "True, False, None or UNSET")
        if self.packing not in PACKINGS:
            raise _bad("packing", self.packing, ", ".join(PACKINGS))
        if self.dtype not in DTYPES:
            raise _bad("dtype", self.dtype, ", ".join(DTYPES))
        if self.device is not None:
            try:
                check_device(self.device)
            except ValueError:
                raise _bad("device", self.device, f"{DEVICE_HELP} or None") from None
        for name in ("mean_ablation", "splice_special"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, getattr(self, name), "True or False")
        d = self.dense_threshold
        if isinstance(d, bool) or not isinstance(d, Real) or not math.isfinite(d) or not 0 <= d < 1:
            raise _bad("dense_threshold", d, "a finite number in [0, 1)")
