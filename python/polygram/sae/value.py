"""The ``SAE`` value object (spec 16 §1.1).

An ``SAE`` is frozen and its arrays are read-only: strategies and regrow
make new SAEs with :meth:`SAE.replace_tensors`, never edit one in place.
Canonical tensors are held in canonical orientation (``W_enc (d_in, d_sae)``,
``W_dec (d_sae, d_in)``) as float32 — float64 when stored F64; BF16/F16 are
widened exactly.  ``layout`` remembers how each tensor was stored (name,
dtype, shape, transposed) so writers can put it back the same way;
``extra`` holds every other tensor of the file verbatim.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from polygram.errors import SAEFormatError, UnsupportedSAEError
from polygram.sae.architecture import (
    CANONICAL_TENSORS,
    REQUIRED_TENSORS,
    TENSOR_ALIASES,
    canonical_shape,
    check_architecture,
    check_normalize_activations,
)
from polygram.sae.settings import SAESettings, Setting

if TYPE_CHECKING:
    from polygram.sae.saelens import SAELensConfig

__all__ = ["SAE", "STORED_DTYPE", "SAESource", "TensorLayout"]

SourceKind = Literal["memory", "folder", "file"]

#: safetensors dtype of an in-memory numpy dtype (what a memory source stores).
STORED_DTYPE = {
    "float16": "F16", "float32": "F32", "float64": "F64", "bool": "BOOL",
    "int8": "I8", "uint8": "U8", "int16": "I16", "uint16": "U16",
    "int32": "I32", "uint32": "U32", "int64": "I64", "uint64": "U64",
}  # fmt: skip
_INT_DTYPES = ("I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "BOOL")


@dataclass(frozen=True)
class TensorLayout:
    """How one tensor was stored: its name in the file, safetensors dtype
    (``F32|F16|BF16|F64|…``), stored shape and whether it is the transpose of
    the canonical orientation (an ``nn.Linear`` weight)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    transposed: bool = False


@dataclass(frozen=True, eq=False)
class SAESource:
    """Where an SAE came from: ``kind`` ``memory`` (a mapping of arrays),
    ``folder`` (SAELens layout) or ``file`` (a ``.safetensors``).  ``path`` is
    what was given; ``weights`` / ``cfg_path`` / ``scaler_path`` the files read."""

    kind: SourceKind = "memory"
    path: Path | None = None
    weights: Path | None = None
    cfg_path: Path | None = None
    scaler_path: Path | None = None
    metadata: Mapping[str, str] | None = None
    _sha: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def display(self) -> str:
        """How reports name the source: the path given, or ``<in-memory>``."""
        return "<in-memory>" if self.path is None else str(self.path)


def _frozen(a: np.ndarray) -> np.ndarray:
    if a.flags.writeable:
        a = a.copy()
        a.flags.writeable = False
    return a


def _float_array(name: str, value: Any, where: str) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise SAEFormatError(f"{where}: {name} has dtype {a.dtype}; expected a float array")
    if a.dtype != np.float64:
        a = a.astype(np.float32, copy=False)
    return a


@dataclass(frozen=True, eq=False)
class SAE:
    """A sparse autoencoder polygram can run and rewrite (spec 16 §1.1).

    Construct through :func:`polygram.sae.load_sae` (which resolves cfg,
    aliases, orientation and settings) or directly from canonical arrays.
    ``partial=True`` accepts a checkpoint lacking some of its architecture's
    tensors (``load_sae(partial=True)``, decoder-only inputs); it stays True
    only when some are missing, and such an SAE can be edited and written,
    not run.
    """

    architecture: str
    tensors: Mapping[str, np.ndarray]
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)
    layout: Mapping[str, TensorLayout] = field(default_factory=dict)
    k: int | None = None
    rescale_acts_by_decoder_norm: bool = False
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    norm_scaling_factor: float | None = None
    settings: SAESettings | None = None
    cfg: SAELensConfig | None = field(default=None, repr=False)
    source: SAESource = field(default_factory=SAESource)
    partial: bool = False
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        where = f"SAE {self.source.display}"
        arch = check_architecture(self.architecture, where)
        tensors: dict[str, np.ndarray] = {}
        for name, value in self.tensors.items():
            if name not in CANONICAL_TENSORS:
                raise SAEFormatError(
                    f"{where}: {name!r} is not a canonical tensor name; allowed: "
                    f"{', '.join(CANONICAL_TENSORS)} (keep other tensors in extra)"
                )
            tensors[name] = _float_array(name, value, where)
        # partial allows a decoder-only subset; an SAE that has them all is complete anyway
        complete = all(n in tensors for n in REQUIRED_TENSORS[arch])
        object.__setattr__(self, "partial", bool(self.partial) and not complete)
        need = ("W_dec",) if self.partial else REQUIRED_TENSORS[arch]
        lacking = [n for n in need if n not in tensors]
        if lacking:
            name = lacking[0]
            raise SAEFormatError(
                f"{where}: the {arch} architecture needs tensor {name!r} (aliases tried: "
                f"{', '.join(TENSOR_ALIASES[name])}); the SAE holds "
                f"{', '.join(sorted(tensors)) or 'no tensors'}"
            )
        w_dec = tensors["W_dec"]
        if w_dec.ndim != 2:
            raise SAEFormatError(
                f"{where}: W_dec has shape {list(w_dec.shape)}; expected (d_sae, d_in)"
            )
        d_sae, d_in = w_dec.shape
        if d_sae == 0 or d_in == 0:
            raise SAEFormatError(f"{where}: W_dec has shape {list(w_dec.shape)}; both must be > 0")
        for name, a in tensors.items():
            want = canonical_shape(name, d_in, d_sae)
            if a.shape != want:
                raise SAEFormatError(
                    f"{where}: {name} has shape {list(a.shape)} but d_in={d_in}, d_sae={d_sae} "
                    f"(from W_dec) need {list(want)}"
                )
            _check_finite(name, a, where)
        object.__setattr__(self, "architecture", arch)
        object.__setattr__(
            self, "tensors", MappingProxyType({n: _frozen(a) for n, a in tensors.items()})
        )
        object.__setattr__(
            self,
            "extra",
            MappingProxyType({str(n): _frozen(np.asarray(a)) for n, a in self.extra.items()}),
        )
        self._check_options(where, d_in, d_sae)
        layout = {
            n: TensorLayout(n, STORED_DTYPE.get(a.dtype.name, "F32"), a.shape)
            for n, a in {**tensors, **self.extra}.items()
        }
        layout.update(self.layout)
        object.__setattr__(self, "layout", MappingProxyType(layout))
        if self.settings is None:
            object.__setattr__(self, "settings", self._explicit_settings())

    def _check_options(self, where: str, d_in: int, d_sae: int) -> None:
        norm = check_normalize_activations(self.normalize_activations, where)
        object.__setattr__(self, "normalize_activations", norm)
        if self.architecture == "topk":
            k = self.k
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= d_sae:
                raise SAEFormatError(
                    f"{where}: k is {k!r}; a topk SAE needs an integer k in [1, d_sae={d_sae}] "
                    "(cfg k, a 'k' tensor, or --k)"
                )
            object.__setattr__(self, "k", int(k))
        nsf = self.norm_scaling_factor
        if nsf is not None:
            if (
                isinstance(nsf, bool)
                or not isinstance(nsf, int | float)
                or not (math.isfinite(nsf) and nsf > 0)
            ):
                raise SAEFormatError(
                    f"{where}: norm_scaling_factor is {nsf!r}; expected a finite number > 0"
                )
            object.__setattr__(self, "norm_scaling_factor", float(nsf))
        if self.partial:
            return
        if norm == "expected_average_only_in" and nsf is None:
            raise UnsupportedSAEError(
                f"{where}: normalize_activations is 'expected_average_only_in' but no scaling "
                "factor is known; pass norm_scaling_factor=… (--norm-scaling-factor; 1.0 "
                "reproduces SAELens' load_from_disk, which applies none)"
            )
        if norm == "layer_norm" and d_in < 2:
            raise UnsupportedSAEError(
                f"{where}: normalize_activations 'layer_norm' needs d_in >= 2 (an unbiased "
                f"std over {d_in} value is undefined)"
            )

    def _explicit_settings(self) -> SAESettings:
        return SAESettings(
            architecture=Setting(self.architecture, "explicit"),
            k=Setting(self.k, "explicit" if self.k is not None else "default"),
            rescale_acts_by_decoder_norm=Setting(self.rescale_acts_by_decoder_norm, "explicit"),
            apply_b_dec_to_input=Setting(self.apply_b_dec_to_input, "explicit"),
            normalize_activations=Setting(self.normalize_activations, "explicit"),
            norm_scaling_factor=Setting(
                self.norm_scaling_factor,
                "explicit" if self.norm_scaling_factor is not None else "default",
            ),
        )

    # ------------------------------------------------------------- shape
    @property
    def d_in(self) -> int:
        return int(self.tensors["W_dec"].shape[1])

    @property
    def d_sae(self) -> int:
        return int(self.tensors["W_dec"].shape[0])

    @property
    def dtype(self) -> np.dtype[Any]:
        """The in-memory float dtype of the forward (float64 for an F64 SAE)."""
        return np.dtype(np.float64 if self.tensors["W_dec"].dtype == np.float64 else np.float32)

    @property
    def stored_dtype(self) -> str:
        """W_dec's stored dtype (``F32|F16|BF16|F64|…``): the SAE's cfg ``dtype``."""
        return self.layout["W_dec"].dtype

    # ------------------------------------------------------------- edits
    def replace_tensors(self, **arrays: np.ndarray) -> SAE:
        """A copy with some canonical tensors replaced (names and shapes
        checked); every other tensor, the layout and the settings are kept.
        A tensor stored as an integer type becomes F32 once edited; a 0-d
        ``threshold`` is written back 0-d only while all its values agree."""
        where = f"SAE.replace_tensors ({self.source.display})"
        tensors = dict(self.tensors)
        layout = dict(self.layout)
        for name, value in arrays.items():
            if name not in tensors:
                raise SAEFormatError(
                    f"{where}: {name!r} is not a tensor of this {self.architecture} SAE; "
                    f"it holds {', '.join(tensors)}"
                )
            a = _float_array(name, value, where)
            if a.shape != tensors[name].shape:
                raise SAEFormatError(
                    f"{where}: {name} has shape {list(a.shape)}; expected "
                    f"{list(tensors[name].shape)}"
                )
            tensors[name] = a.astype(tensors[name].dtype, copy=False)
            old = layout[name]
            if old.dtype in _INT_DTYPES:
                layout[name] = replace(old, dtype="F32")
        return replace(self, tensors=tensors, layout=layout)

    def stored_tensors(self, canonical: bool = False) -> dict[str, tuple[np.ndarray, TensorLayout]]:
        """Every tensor as it is to be written: stored name → (array in stored
        orientation and shape, layout).  ``canonical=True`` renames aliases to
        the canonical names and keeps canonical orientation (the layout of a
        folder written from a file or memory source).  A 0-d ``threshold``
        stays 0-d while all its values agree."""
        out: dict[str, tuple[np.ndarray, TensorLayout]] = {}
        for name, a in self.tensors.items():
            lay = self.layout[name]
            if canonical:
                lay = replace(lay, name=name, transposed=False)
                if lay.shape != ():
                    lay = replace(lay, shape=a.shape)
            arr = a.T if lay.transposed else a
            if lay.shape == ():
                if arr.size and bool((arr == arr.reshape(-1)[0]).all()):
                    arr = arr.reshape(-1)[:1].reshape(())
                else:
                    lay = replace(lay, shape=arr.shape)
            out[lay.name] = (arr, lay)
        for name, a in self.extra.items():
            out[name] = (a, self.layout[name])
        return out

    # ----------------------------------------------------------- identity
    def source_sha256(self) -> str:
        """sha256 of the weights file read; for an in-memory SAE, of
        ``safetensors.numpy.save`` of its canonical arrays."""
        src = self.source
        if src.weights is not None:
            if "weights" not in src._sha:
                from polygram._io import sha256_file

                src._sha["weights"] = sha256_file(src.weights)
            return src._sha["weights"]
        if "memory" not in self._cache:
            from safetensors.numpy import save

            blob = save({n: np.ascontiguousarray(a) for n, a in self.tensors.items()})
            self._cache["memory"] = hashlib.sha256(blob).hexdigest()
        return str(self._cache["memory"])


def _check_finite(name: str, a: np.ndarray, where: str) -> None:
    """Refuse NaN / ±inf (it would spread silently through every forward);
    checked in row blocks so no full-size boolean temporary is made."""
    flat = a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, 1)
    step = max(1, (1 << 16) // max(1, flat.shape[1]))
    for lo in range(0, flat.shape[0], step):
        ok = np.isfinite(flat[lo : lo + step])
        if not ok.all():
            r, c = np.argwhere(~ok)[0]
            index = [lo + int(r), int(c)] if a.ndim == 2 else [lo + int(r)]
            raise SAEFormatError(
                f"{where}: {name} holds a non-finite value at index {index} "
                f"({float(flat[lo + r, c])!r}); every value must be finite"
            )
