"""The one SAE forward (spec 16 §1.2–§1.4): encode, decode, reconstruct,
residual, fire counts and a feature's contribution, for the ``standard``,
``jumprelu``, ``topk`` and ``gated`` architectures, with
``apply_b_dec_to_input`` and every ``normalize_activations`` mode.

Every SAE pass in the package goes through these functions.  They take a
numpy array or a ``torch.Tensor`` of shape ``(..., d_in)`` and return the
same kind:

* **numpy**: computed in float32 (float64 for an F64 SAE);
* **torch**: the SAE's tensors are converted once per device to float32 and
  cached on the SAE; the input is cast to float32 and the result is float32
  on the input's device (callers that splice cast back themselves).

Both process tokens in chunks of at most :data:`TOKEN_CHUNK` tokens and
:data:`CHUNK_ACTIVATIONS` activations, so a full-SAE pass never holds more
than one chunk's ``tokens × d_sae`` pre-activations (plus, for TopK, its
selection masks) besides the requested output.

Math (per token ``x``; ``N_in``/``N_out`` the normalisation of §1.3)::

    x' = N_in(x) − b_dec·[apply_b_dec_to_input]
    standard  f = max(z, 0),             z = x'·W_enc + b_enc
    jumprelu  f = max(z, 0)·[z > θ]
    topk      f_j = max(z_j, 0) for the k largest z_j (ties: lower j), z_j·‖W_dec[j]‖ if rescaled
    gated     f = [x'·W_enc + b_gate > 0] · max(x'·W_enc·exp(r_mag) + b_mag, 0)
    x̂ = N_out(f̃·W_dec + b_dec),  f̃_j = f_j / ‖W_dec[j]‖ for rescaled TopK (0 where the norm is 0)

A feature *fires* where ``f > 0``, for every architecture.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram.errors import SAEFormatError

if TYPE_CHECKING:
    from polygram.sae.value import SAE

__all__ = [
    "CHUNK_ACTIVATIONS",
    "COMPUTE_DTYPE",
    "LAYER_NORM_EPS",
    "TOKEN_CHUNK",
    "chunk_tokens",
    "contribution",
    "decode",
    "encode",
    "encoder_input",
    "fire_counts",
    "output_scale",
    "reconstruct",
    "residual",
    "residual_stream",
    "sae_activations",
    "sae_reconstruct",
]

#: Tokens per chunk of a whole-stream SAE forward…
TOKEN_CHUNK = 2048
#: …and at most this many activations (tokens × d_sae) per chunk (64 MB float32).
CHUNK_ACTIVATIONS = 1 << 24
#: What the torch path computes in (stated in reports as ``sae_compute_dtype``).
COMPUTE_DTYPE = "float32"
LAYER_NORM_EPS = 1e-5


def chunk_tokens(d_sae: int) -> int:
    """Tokens per chunk for an SAE of width ``d_sae``."""
    return max(1, min(TOKEN_CHUNK, CHUNK_ACTIVATIONS // max(1, d_sae)))


# ------------------------------------------------------------------ backends
class _Numpy:
    """numpy primitives of the forward."""

    @staticmethod
    def relu(z: Any) -> Any:
        return np.maximum(z, 0)

    @staticmethod
    def kth_largest(z: Any, k: int) -> Any:
        d = z.shape[1]
        return np.partition(z, d - k, axis=1)[:, d - k]

    @staticmethod
    def cumsum(mask: Any) -> Any:
        return np.cumsum(mask, axis=1, dtype=np.int32)

    @staticmethod
    def count(mask: Any) -> Any:
        return mask.sum(axis=1, dtype=np.int32)

    @staticmethod
    def where(mask: Any, a: Any, b: float) -> Any:
        return np.where(mask, a, b)

    @staticmethod
    def row_norm(x: Any) -> Any:
        return np.sqrt(np.einsum("td,td->t", x, x))

    @staticmethod
    def row_std(x: Any) -> Any:
        return x.std(axis=1, ddof=1)


class _Torch:
    """torch primitives of the forward (same contracts as :class:`_Numpy`)."""

    @staticmethod
    def relu(z: Any) -> Any:
        return z.clamp_min(0)

    @staticmethod
    def kth_largest(z: Any, k: int) -> Any:
        return z.kthvalue(z.shape[1] - k + 1, dim=1).values

    @staticmethod
    def cumsum(mask: Any) -> Any:
        import torch

        return mask.cumsum(dim=1, dtype=torch.int32)

    @staticmethod
    def count(mask: Any) -> Any:
        import torch

        return mask.sum(dim=1, dtype=torch.int32)

    @staticmethod
    def where(mask: Any, a: Any, b: float) -> Any:
        return a.masked_fill(~mask, b)

    @staticmethod
    def row_norm(x: Any) -> Any:
        return x.norm(dim=1)

    @staticmethod
    def row_std(x: Any) -> Any:
        return x.std(dim=1, correction=1)


def _is_torch(x: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


# ------------------------------------------------------------ prepared params
def _derived(t: dict[str, Any], sae: SAE, norm: Callable[[Any], Any]) -> dict[str, Any]:
    """Quantities every chunk needs, computed once per backend / device."""
    if sae.architecture == "gated":
        t["exp_r_mag"] = t["r_mag"].exp() if hasattr(t["r_mag"], "exp") else np.exp(t["r_mag"])
    if sae.architecture == "topk" and sae.rescale_acts_by_decoder_norm:
        n = norm(t["W_dec"])
        t["dec_norm"] = n
        inv = n * 0
        inv[n > 0] = 1 / n[n > 0]
        t["inv_dec_norm"] = inv
    return t


def _numpy_params(sae: SAE) -> dict[str, Any]:
    key = "forward:numpy"
    if key not in sae._cache:
        t = dict(sae.tensors)
        sae._cache[key] = _derived(t, sae, _Numpy.row_norm)
    return dict(sae._cache[key])


def _torch_params(sae: SAE, device: Any) -> dict[str, Any]:
    import torch

    key = f"forward:torch:{device}"
    if key not in sae._cache:
        t = {
            n: torch.tensor(np.asarray(a, dtype=np.float32), device=device)
            for n, a in sae.tensors.items()
        }
        sae._cache[key] = _derived(t, sae, _Torch.row_norm)
    return dict(sae._cache[key])


class _Pass:
    """One forward call: the SAE, its prepared tensors, the backend."""

    def __init__(self, sae: SAE, x: Any) -> None:
        if sae.partial:
            raise SAEFormatError(
                f"SAE {sae.source.display}: a decoder-only SAE (load_sae(partial=True)) "
                "cannot be run; load it without partial=True"
            )
        self.sae = sae
        self.torch = _is_torch(x)
        self.ops: Any = _Torch if self.torch else _Numpy
        if self.torch:
            self.p = _torch_params(sae, x.device)
        else:
            self.p = _numpy_params(sae)

    # ---- inputs
    def tokens(self, x: Any, width: int, what: str) -> tuple[Any, tuple[int, ...]]:
        """``x`` as a 2-D float (tokens, width) array of the compute dtype."""
        shape = tuple(x.shape)
        if len(shape) < 1 or shape[-1] != width:
            raise ValueError(
                f"{what}: shape {list(shape)}; expected (..., {width}) for this SAE "
                f"(d_in={self.sae.d_in}, d_sae={self.sae.d_sae})"
            )
        lead = shape[:-1]
        if self.torch:
            return x.reshape(-1, width).float(), lead
        a = np.asarray(x)
        if a.dtype.kind not in "fiub":
            raise ValueError(f"{what}: dtype {a.dtype}; expected a float array")
        a = a.reshape(-1, width).astype(self.sae.dtype, copy=False)
        if not np.isfinite(a).all():
            raise ValueError(f"{what}: holds NaN or infinite values; every value must be finite")
        return a, lead

    def empty(self, rows: int, cols: int, integer: bool = False) -> Any:
        if self.torch:
            import torch

            dev = self.p["W_dec"].device
            return torch.empty(
                (rows, cols), dtype=torch.int64 if integer else torch.float32, device=dev
            )
        return np.empty((rows, cols), dtype=np.int64 if integer else self.sae.dtype)

    def columns(self, features: Iterable[int] | None) -> Any:
        if features is None:
            return None
        ids = [int(f) for f in features]
        bad = [f for f in ids if not 0 <= f < self.sae.d_sae]
        if bad:
            raise IndexError(
                f"features: {bad} out of range; the SAE has d_sae={self.sae.d_sae} features "
                f"(0..{self.sae.d_sae - 1})"
            )
        if self.torch:
            import torch

            return torch.tensor(ids, dtype=torch.long, device=self.p["W_dec"].device)
        return np.asarray(ids, dtype=np.int64)

    # ---- normalisation (§1.3): N_in returns the per-token context N_out needs
    def _factor(self) -> float:
        s = self.sae.norm_scaling_factor
        assert s is not None  # the SAE refuses expected_average_only_in without one
        return s

    def n_in(self, x: Any) -> tuple[Any, Any]:
        mode = self.sae.normalize_activations
        if mode == "none":
            return x, None
        if mode == "expected_average_only_in":
            return x * self._factor(), None
        if mode == "constant_norm_rescale":
            norm = self.ops.row_norm(x)
            c = self.ops.where(
                norm > 0, (self.sae.d_in**0.5) / self.ops.where(norm > 0, norm, 1.0), 1.0
            )
            return x * c[:, None], c
        mu = x.mean(axis=1) if not self.torch else x.mean(dim=1)
        xc = x - mu[:, None]
        sigma = self.ops.row_std(xc)
        return xc / (sigma[:, None] + LAYER_NORM_EPS), (mu, sigma)

    def n_out(self, y: Any, ctx: Any) -> Any:
        mode = self.sae.normalize_activations
        if mode == "none":
            return y
        if mode == "expected_average_only_in":
            return y / self._factor()
        if mode == "constant_norm_rescale":
            return y / ctx[:, None]
        mu, sigma = ctx
        return y * sigma[:, None] + mu[:, None]

    def rho(self, ctx: Any, n: int) -> Any:
        """Per-token factor of a decoded vector under ``N_out`` (1 / s / 1/c / σ)."""
        mode = self.sae.normalize_activations
        if mode == "none":
            return 1.0
        if mode == "expected_average_only_in":
            return 1.0 / self._factor()
        if mode == "constant_norm_rescale":
            return 1.0 / ctx
        return ctx[1]

    # ---- the architectures (§1.2)
    def acts(self, x: Any, cols: Any) -> tuple[Any, Any]:
        """Activations of one chunk (columns ``cols``, all when None) and the
        normalisation context."""
        p, ops, sae = self.p, self.ops, self.sae
        xn, ctx = self.n_in(x)
        if sae.apply_b_dec_to_input:
            xn = xn - p["b_dec"]
        arch = sae.architecture
        if arch == "topk":
            z = xn @ p["W_enc"] + p["b_enc"]
            if sae.rescale_acts_by_decoder_norm:
                z = z * p["dec_norm"]
            f = self.top_k(z, int(sae.k or 0))
            return (f if cols is None else f[:, cols]), ctx
        w_enc = p["W_enc"] if cols is None else p["W_enc"][:, cols]

        def col(name: str) -> Any:
            return p[name] if cols is None else p[name][cols]

        if arch == "gated":
            h = xn @ w_enc
            gate = (h + col("b_gate")) > 0
            return ops.where(gate, ops.relu(h * col("exp_r_mag") + col("b_mag")), 0.0), ctx
        z = xn @ w_enc + col("b_enc")
        if arch == "jumprelu":
            return ops.where(z > col("threshold"), ops.relu(z), 0.0), ctx
        return ops.relu(z), ctx

    def top_k(self, z: Any, k: int) -> Any:
        """ReLU of the ``k`` largest entries per row, ties to the lower index."""
        ops = self.ops
        v = ops.kth_largest(z, k)[:, None]
        above = z > v
        tied = z == v
        need = k - ops.count(above)
        keep = above | (tied & (ops.cumsum(tied) <= need[:, None]))
        return ops.where(keep, ops.relu(z), 0.0)

    def decoded(self, f: Any, ctx: Any) -> Any:
        p = self.p
        if self.sae.architecture == "topk" and self.sae.rescale_acts_by_decoder_norm:
            f = f * p["inv_dec_norm"]
        return self.n_out(f @ p["W_dec"] + p["b_dec"], ctx)

    def chunks(self, n: int) -> Iterable[slice]:
        step = chunk_tokens(self.sae.d_sae)
        return (slice(s, min(n, s + step)) for s in range(0, n, step))

    def needs_x(self) -> bool:
        return self.sae.normalize_activations in ("constant_norm_rescale", "layer_norm")

    def shaped(self, out: Any, lead: tuple[int, ...]) -> Any:
        return out.reshape(*lead, out.shape[-1])


# ------------------------------------------------------------------ the API
def encode(sae: SAE, x: Any, features: Sequence[int] | None = None) -> Any:
    """Feature activations ``f`` of ``x (..., d_in)``: ``(..., d_sae)``, or
    ``(..., len(features))`` for the listed columns (TopK still ranks every
    feature: a feature's value depends on all the others)."""
    run = _Pass(sae, x)
    xs, lead = run.tokens(x, sae.d_in, "encode: x")
    cols = run.columns(features)
    width = sae.d_sae if cols is None else len(cols)
    out = run.empty(xs.shape[0], width)
    for s in run.chunks(xs.shape[0]):
        out[s] = run.acts(xs[s], cols)[0]
    return run.shaped(out, lead)


def decode(sae: SAE, f: Any, x: Any = None) -> Any:
    """``x̂ = N_out(f̃·W_dec + b_dec)`` for activations ``f (..., d_sae)``;
    ``x`` (the un-normalised input) is needed for ``constant_norm_rescale``
    and ``layer_norm`` (``ValueError`` without it)."""
    run = _Pass(sae, f)
    fs, lead = run.tokens(f, sae.d_sae, "decode: f")
    xs = None
    if run.needs_x():
        if x is None:
            raise ValueError(
                f"decode: normalize_activations is {sae.normalize_activations!r}, so decoding "
                "needs x (the un-normalised input) to undo the normalisation; pass x="
            )
        xs, _ = run.tokens(x, sae.d_in, "decode: x")
        if xs.shape[0] != fs.shape[0]:
            raise ValueError(f"decode: f has {fs.shape[0]} tokens but x has {xs.shape[0]}")
    out = run.empty(fs.shape[0], sae.d_in)
    for s in run.chunks(fs.shape[0]):
        ctx = run.n_in(xs[s])[1] if xs is not None else None
        out[s] = run.decoded(fs[s], ctx)
    return run.shaped(out, lead)


def reconstruct(sae: SAE, x: Any) -> Any:
    """``x̂ = decode(encode(x), x)``, chunked (no full ``tokens × d_sae`` array)."""
    run = _Pass(sae, x)
    xs, lead = run.tokens(x, sae.d_in, "reconstruct: x")
    out = run.empty(xs.shape[0], sae.d_in)
    for s in run.chunks(xs.shape[0]):
        f, ctx = run.acts(xs[s], None)
        out[s] = run.decoded(f, ctx)
    return run.shaped(out, lead)


def residual(sae: SAE, x: Any) -> Any:
    """``x − reconstruct(x)``: what the SAE fails to reconstruct."""
    run = _Pass(sae, x)
    xs, lead = run.tokens(x, sae.d_in, "residual: x")
    out = run.empty(xs.shape[0], sae.d_in)
    for s in run.chunks(xs.shape[0]):
        f, ctx = run.acts(xs[s], None)
        out[s] = xs[s] - run.decoded(f, ctx)
    return run.shaped(out, lead)


def fire_counts(sae: SAE, x: Any) -> Any:
    """Tokens on which each feature fires (``f > 0``): int64 ``(d_sae,)``."""
    run = _Pass(sae, x)
    xs, _ = run.tokens(x, sae.d_in, "fire_counts: x")
    counts = run.empty(1, sae.d_sae, integer=True)[0]
    counts[:] = 0
    for s in run.chunks(xs.shape[0]):
        counts += (run.acts(xs[s], None)[0] > 0).sum(0)
    return counts


def contribution(sae: SAE, f_j: Any, j: int, x: Any = None) -> Any:
    """The model-space vector feature ``j`` adds at each token:
    ``f_j·W_dec[j]·ρ(x)`` with ``ρ`` = 1 (none), 1/s, 1/c(x), σ(x) (layer_norm),
    times ``1/‖W_dec[j]‖`` for rescaled TopK.  ``f_j`` has shape ``(...)``;
    the result ``(..., d_in)``.  ``x`` is needed as for :func:`decode`."""
    run = _Pass(sae, f_j)
    if isinstance(j, bool) or not isinstance(j, int | np.integer) or not 0 <= j < sae.d_sae:
        raise IndexError(f"contribution: feature {j!r} out of range 0..{sae.d_sae - 1}")
    shape = tuple(f_j.shape)
    fj = f_j.reshape(-1).float() if run.torch else np.asarray(f_j, sae.dtype).reshape(-1)
    w = run.p["W_dec"][j]
    if sae.architecture == "topk" and sae.rescale_acts_by_decoder_norm:
        w = w * run.p["inv_dec_norm"][j]
    rho: Any = 1.0
    if run.needs_x():
        if x is None:
            raise ValueError(
                f"contribution: normalize_activations is {sae.normalize_activations!r}, so the "
                "contribution depends on x (the un-normalised input); pass x="
            )
        xs, _ = run.tokens(x, sae.d_in, "contribution: x")
        if xs.shape[0] != fj.shape[0]:
            raise ValueError(f"contribution: f_j has {fj.shape[0]} tokens but x has {xs.shape[0]}")
        rho = run.rho(run.n_in(xs)[1], xs.shape[0])
    else:
        rho = run.rho(None, fj.shape[0])
    out = (fj * rho)[:, None] * w[None, :]
    return out.reshape(*shape, sae.d_in)


def encoder_input(sae: SAE, x: Any) -> Any:
    """``x' = N_in(x) − b_dec·[apply_b_dec_to_input]``, what every
    architecture's encoder multiplies (``z = x'·W_enc + b``): shape of ``x``.
    Rules that place an encoder column (quiet regrow) read projections of it."""
    run = _Pass(sae, x)
    xs, lead = run.tokens(x, sae.d_in, "encoder_input: x")
    out = run.empty(xs.shape[0], sae.d_in)
    for s in run.chunks(xs.shape[0]):
        xn = run.n_in(xs[s])[0]
        out[s] = xn - run.p["b_dec"] if sae.apply_b_dec_to_input else xn
    return run.shaped(out, lead)


def output_scale(sae: SAE, x: Any) -> Any:
    """``ρ(x)``, the per-token factor ``N_out`` gives a decoded direction
    (1, 1/s, 1/c(x), σ(x) for layer_norm), shape ``x.shape[:-1]``: the
    contribution of feature ``j`` is ``f_j·ρ(x)·W_dec[j]`` (times
    ``1/‖W_dec[j]‖`` for rescaled TopK).  What a least-squares fit of a
    decoder row in model space weights each token by."""
    run = _Pass(sae, x)
    xs, lead = run.tokens(x, sae.d_in, "output_scale: x")
    out = run.empty(xs.shape[0], 1)
    for s in run.chunks(xs.shape[0]):
        ctx = run.n_in(xs[s])[1] if run.needs_x() else None
        out[s, 0] = run.rho(ctx, s.stop - s.start)
    return out.reshape(lead)


# ------------------------------------------- standard-architecture wrappers
def sae_activations(
    x: np.ndarray, w_enc: np.ndarray, b_enc: np.ndarray, b_dec: np.ndarray
) -> np.ndarray:
    """Standard SAE: ``relu((X − b_dec)·W_enc + b_enc)`` (kept for
    compatibility; any float dtype).  Use :func:`encode` for an ``SAE``."""
    return _Numpy.relu((x - b_dec) @ w_enc + b_enc)


def sae_reconstruct(
    x: np.ndarray,
    w_enc: np.ndarray,
    b_enc: np.ndarray,
    w_dec: np.ndarray,
    b_dec: np.ndarray,
) -> np.ndarray:
    """Standard SAE: ``sae_activations(X)·W_dec + b_dec``."""
    return sae_activations(x, w_enc, b_enc, b_dec) @ w_dec + b_dec


def residual_stream(
    x: np.ndarray,
    w_enc: np.ndarray,
    b_enc: np.ndarray,
    w_dec: np.ndarray,
    b_dec: np.ndarray,
    chunk: int = TOKEN_CHUNK,
) -> np.ndarray:
    """Standard SAE: ``X − sae_reconstruct(X)`` in token chunks."""
    out = np.empty(x.shape, dtype=np.result_type(x, w_enc, w_dec))
    for s in range(0, x.shape[0], chunk):
        xs = x[s : s + chunk]
        out[s : s + chunk] = xs - sae_reconstruct(xs, w_enc, b_enc, w_dec, b_dec)
    return out
