"""A brute-force, per-token oracle of the SAE forward (spec 16 §1.2–§1.3),
written as plain Python loops over float64 scalars: no vectorisation, no
shared code with ``polygram.sae.forward``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Vec = list[float]


def _normalise(x: Sequence[float], mode: str, factor: float | None) -> tuple[Vec, Any]:
    d = len(x)
    if mode == "none":
        return list(x), None
    if mode == "expected_average_only_in":
        assert factor is not None
        return [factor * v for v in x], factor
    if mode == "constant_norm_rescale":
        norm = math.sqrt(sum(v * v for v in x))
        c = math.sqrt(d) / norm if norm > 0 else 1.0
        return [c * v for v in x], c
    mu = sum(x) / d
    centred = [v - mu for v in x]
    sigma = math.sqrt(sum(v * v for v in centred) / (d - 1))
    return [v / (sigma + 1e-5) for v in centred], (mu, sigma)


def _denormalise(y: Vec, mode: str, ctx: Any) -> Vec:
    if mode == "none":
        return y
    if mode in ("expected_average_only_in", "constant_norm_rescale"):
        return [v / ctx for v in y]
    mu, sigma = ctx
    return [v * sigma + mu for v in y]


def encode_token(
    t: Mapping[str, Any], x: Sequence[float], arch: str, opts: Mapping[str, Any]
) -> tuple[Vec, Any]:
    """``(f, ctx)`` of one token: the activations and the normalisation context."""
    w_enc, w_dec, b_dec = t["W_enc"], t["W_dec"], t["b_dec"]
    d_in, d_sae = len(w_enc), len(w_enc[0])
    xn, ctx = _normalise(x, opts.get("normalize", "none"), opts.get("factor"))
    if opts.get("apply_b_dec", True):
        xn = [xn[i] - b_dec[i] for i in range(d_in)]
    h = [sum(xn[i] * w_enc[i][j] for i in range(d_in)) for j in range(d_sae)]
    if arch == "gated":
        f = []
        for j in range(d_sae):
            gate = h[j] + t["b_gate"][j] > 0
            mag = h[j] * math.exp(t["r_mag"][j]) + t["b_mag"][j]
            f.append(max(mag, 0.0) if gate else 0.0)
        return f, ctx
    z = [h[j] + t["b_enc"][j] for j in range(d_sae)]
    if arch == "standard":
        return [max(v, 0.0) for v in z], ctx
    if arch == "jumprelu":
        return [max(v, 0.0) if v > t["threshold"][j] else 0.0 for j, v in enumerate(z)], ctx
    if opts.get("rescale"):
        norms = [math.sqrt(sum(v * v for v in row)) for row in w_dec]
        z = [z[j] * norms[j] for j in range(d_sae)]
    order = sorted(range(d_sae), key=lambda j: (-z[j], j))  # ties: lower index first
    keep = set(order[: opts["k"]])
    return [max(z[j], 0.0) if j in keep else 0.0 for j in range(d_sae)], ctx


def decode_token(
    t: Mapping[str, Any], f: Sequence[float], arch: str, opts: Mapping[str, Any], ctx: Any
) -> Vec:
    w_dec, b_dec = t["W_dec"], t["b_dec"]
    d_sae, d_in = len(w_dec), len(w_dec[0])
    f = list(f)
    if arch == "topk" and opts.get("rescale"):
        for j in range(d_sae):
            norm = math.sqrt(sum(v * v for v in w_dec[j]))
            f[j] = f[j] / norm if norm > 0 else 0.0
    y = [sum(f[j] * w_dec[j][i] for j in range(d_sae)) + b_dec[i] for i in range(d_in)]
    return _denormalise(y, opts.get("normalize", "none"), ctx)


def reconstruct_token(
    t: Mapping[str, Any], x: Sequence[float], arch: str, opts: Mapping[str, Any]
) -> Vec:
    f, ctx = encode_token(t, x, arch, opts)
    return decode_token(t, f, arch, opts, ctx)
