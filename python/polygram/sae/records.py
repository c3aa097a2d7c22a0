"""``SAEFeatureRecord``: one SAE feature as the importer sees it.

Dtype policy: constructing a record coerces its projection to float64
(spec 05 §5.4; exact for every float and integer input).  Checkpoint
loaders bypass the constructor (``_trusted``) and hand over read-only
float32 row views of a single decoder array, so a 16k-feature SAE is held
once, at float32, whatever the number of records (spec 05 §5.6, memory).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from polygram.errors import CapacityError, FeatureSelectionError, SAEFormatError

__all__ = ["SAEFeatureRecord", "as_projection"]


def as_projection(value: Any, *, owner: str = "SAEFeatureRecord") -> np.ndarray:
    """``value`` as a read-only 1-D finite float64 array (spec 05 §5.4:
    construction coerces the projection to float64).

    A float64 ndarray is wrapped in a read-only *view* (no copy, and the
    caller's array keeps its own flags); anything else is converted once
    (every float and integer dtype converts exactly).
    """
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        arr = value.view()
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise SAEFormatError(f"{owner}.projection: not a numeric vector ({e})") from None
        if arr.dtype.kind == "b":
            raise SAEFormatError(f"{owner}.projection: got a boolean array; expected floats")
        if arr.dtype.kind not in "iufO":
            raise SAEFormatError(
                f"{owner}.projection: dtype {arr.dtype} is not numeric; expected real numbers"
            )
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise SAEFormatError(
                f"{owner}.projection: dtype {arr.dtype} is not numeric ({e})"
            ) from None
    if arr.ndim != 1:
        raise SAEFormatError(
            f"{owner}.projection: shape {arr.shape}; expected a 1-D vector (one decoder row)"
        )
    if arr.shape[0] == 0:
        raise SAEFormatError(f"{owner}.projection: empty vector; expected at least one component")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise SAEFormatError(
            f"{owner}.projection: component {bad} is {float(arr[bad])!r}; "
            "every value must be finite"
        )
    arr.flags.writeable = False
    return arr


def _optional_float(owner: str, field: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise SAEFormatError(f"{owner}.{field}: got {value!r}; expected a finite number or None")
    v = float(value)
    if not math.isfinite(v):
        raise SAEFormatError(f"{owner}.{field}: got {v!r}; expected a finite number or None")
    return v


@dataclass(frozen=True, eq=False)
class SAEFeatureRecord:
    """One SAE feature: its index in ``d_sae``, a name, its decoder row
    (``projection``) and optional label / activation statistics.

    ``label`` of the form ``"<cluster>/<anything>"`` lets ``from_sae_lens``
    cluster by label.  Equality compares every field, projections by value.
    """

    feature_id: int
    name: str
    projection: np.ndarray
    label: str | None = None
    activation_mean: float | None = None
    activation_std: float | None = None

    def __post_init__(self) -> None:
        fid = self.feature_id
        if isinstance(fid, bool) or not isinstance(fid, Integral) or int(fid) < 0:
            raise SAEFormatError(
                f"SAEFeatureRecord.feature_id: got {fid!r}; expected a non-negative integer "
                "(an index into d_sae)"
            )
        object.__setattr__(self, "feature_id", int(fid))
        owner = f"SAEFeatureRecord({int(fid)})"
        if not isinstance(self.name, str) or not self.name:
            raise SAEFormatError(f"{owner}.name: got {self.name!r}; expected a non-empty string")
        if self.label is not None and not isinstance(self.label, str):
            raise SAEFormatError(f"{owner}.label: got {self.label!r}; expected a string or None")
        object.__setattr__(self, "projection", as_projection(self.projection, owner=owner))
        for field in ("activation_mean", "activation_std"):
            object.__setattr__(self, field, _optional_float(owner, field, getattr(self, field)))

    @classmethod
    def _trusted(cls, feature_id: int, name: str, row: np.ndarray) -> SAEFeatureRecord:
        """Loader fast path: ``row`` is a read-only 1-D float32/float64 view
        already checked finite in bulk, so per-record validation (one numpy
        pass per row, 16k rows on a real SAE) is skipped."""
        rec = object.__new__(cls)
        for field, value in (
            ("feature_id", feature_id),
            ("name", name),
            ("projection", row),
            ("label", None),
            ("activation_mean", None),
            ("activation_std", None),
        ):
            object.__setattr__(rec, field, value)
        return rec

    @property
    def dim(self) -> int:
        """Length of the decoder row (``d_in``)."""
        return int(self.projection.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SAEFeatureRecord):
            return NotImplemented
        return (
            self.feature_id == other.feature_id
            and self.name == other.name
            and self.label == other.label
            and self.activation_mean == other.activation_mean
            and self.activation_std == other.activation_std
            and np.array_equal(self.projection, other.projection)
        )

    def __hash__(self) -> int:
        return hash((self.feature_id, self.name, self.label))

    def __repr__(self) -> str:
        extra = "" if self.label is None else f", label={self.label!r}"
        return (
            f"SAEFeatureRecord({self.feature_id}, {self.name!r}, "
            f"projection=<{self.projection.dtype}[{self.dim}]>{extra})"
        )


def selected_ids(
    feature_ids: Iterable[int], *, cap: int | None = None, encoding: str = ""
) -> list[int]:
    """A feature selection as a list of distinct ints: non-empty, integers
    only, no repeats; with ``cap``, at most that many (checked first)."""
    if isinstance(feature_ids, str | bytes):
        raise FeatureSelectionError(
            f"feature_ids: got {feature_ids!r}; expected a sequence of integers"
        )
    try:
        ids = list(feature_ids)
    except TypeError:
        raise FeatureSelectionError(
            f"feature_ids: got {feature_ids!r}; expected a sequence of integers"
        ) from None
    if cap is not None and len(ids) > cap:
        raise CapacityError(
            f"feature_ids: {len(ids)} selected but {encoding} holds at most {cap} features; "
            "select fewer"
        )
    if not ids:
        raise FeatureSelectionError("feature_ids: empty selection; give at least one id")
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, Integral)]
    if bad:
        raise FeatureSelectionError(f"feature_ids: {bad!r} are not integers")
    ids = [int(i) for i in ids]
    seen: set[int] = set()
    dups = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if dups:
        raise FeatureSelectionError(f"feature_ids: repeated id(s) {dups}; each id may appear once")
    return ids
