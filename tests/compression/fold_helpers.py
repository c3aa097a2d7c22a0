"""Small random SAEs of every architecture / normalisation for the fold and
quiet-regrow tests, and a plain silencing rule (spec 16 §1.6's zero)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from polygram.sae import SAE

ARCHITECTURES = ("standard", "jumprelu", "topk", "gated")
NORMALIZATIONS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")


@dataclass(frozen=True)
class Cluster:
    cluster_id: int
    representative: int
    zeroed: tuple[int, ...]


def random_sae(
    rng: np.random.Generator,
    arch: str,
    d_in: int,
    d_sae: int,
    *,
    normalize: str = "none",
    k: int | None = None,
) -> SAE:
    w_dec = rng.normal(size=(d_sae, d_in)).astype(np.float32)
    t: dict[str, Any] = {
        "W_enc": rng.normal(size=(d_in, d_sae)).astype(np.float32),
        "W_dec": w_dec,
        "b_dec": (0.1 * rng.normal(size=d_in)).astype(np.float32),
    }
    if arch == "gated":
        t["b_gate"] = (0.3 * rng.normal(size=d_sae)).astype(np.float32)
        t["b_mag"] = (0.3 * rng.normal(size=d_sae)).astype(np.float32)
        t["r_mag"] = (0.3 * rng.normal(size=d_sae)).astype(np.float32)
    else:
        t["b_enc"] = (0.3 * rng.normal(size=d_sae)).astype(np.float32)
    if arch == "jumprelu":
        t["threshold"] = np.abs(0.2 * rng.normal(size=d_sae)).astype(np.float32)
    return SAE(
        architecture=arch,
        tensors=t,
        k=(k or max(1, d_sae // 2)) if arch == "topk" else None,
        normalize_activations=normalize,
        norm_scaling_factor=0.7 if normalize == "expected_average_only_in" else None,
    )


def silence(sae: SAE, fids: Iterable[int]) -> SAE:
    """Encoder column, per-feature encoder biases and decoder row zeroed."""
    idx = np.asarray(sorted(fids), dtype=np.int64)
    edits: dict[str, np.ndarray] = {}
    for name, a in sae.tensors.items():
        b = np.array(a)
        if name == "W_enc":
            b[:, idx] = 0
        elif name in ("b_enc", "b_gate", "b_mag", "W_dec"):
            b[idx] = 0
        else:
            continue
        edits[name] = b
    return sae.replace_tensors(**edits)


def with_row(sae: SAE, j: int, row: np.ndarray) -> SAE:
    w = np.array(sae.tensors["W_dec"])
    w[j] = row
    return sae.replace_tensors(W_dec=w)
