"""The SAE forward pass the compression loop assumes: a SAE-Lens ReLU SAE
with the decoder bias subtracted on input (spec 12 §3, 13 §3.1).  numpy, any
float dtype; callers chunk over tokens so ``T × n_features`` activations are
never all held."""

from __future__ import annotations

import numpy as np

__all__ = ["TOKEN_CHUNK", "residual_stream", "sae_activations", "sae_reconstruct"]

#: Tokens per chunk of a whole-stream SAE forward.
TOKEN_CHUNK = 2048


def sae_activations(
    x: np.ndarray, w_enc: np.ndarray, b_enc: np.ndarray, b_dec: np.ndarray
) -> np.ndarray:
    """``relu((X − b_dec)·W_enc + b_enc)`` (a feature fires where this is > 0)."""
    return np.maximum((x - b_dec) @ w_enc + b_enc, 0)


def sae_reconstruct(
    x: np.ndarray,
    w_enc: np.ndarray,
    b_enc: np.ndarray,
    w_dec: np.ndarray,
    b_dec: np.ndarray,
) -> np.ndarray:
    """``sae_activations(X)·W_dec + b_dec``."""
    return sae_activations(x, w_enc, b_enc, b_dec) @ w_dec + b_dec


def residual_stream(
    x: np.ndarray,
    w_enc: np.ndarray,
    b_enc: np.ndarray,
    w_dec: np.ndarray,
    b_dec: np.ndarray,
    chunk: int = TOKEN_CHUNK,
) -> np.ndarray:
    """``R = X − sae_reconstruct(X)``: what the SAE fails to reconstruct,
    computed in token chunks."""
    out = np.empty(x.shape, dtype=np.result_type(x, w_enc, w_dec))
    for s in range(0, x.shape[0], chunk):
        xs = x[s : s + chunk]
        out[s : s + chunk] = xs - sae_reconstruct(xs, w_enc, b_enc, w_dec, b_dec)
    return out
