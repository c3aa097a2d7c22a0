"""A synthetic SAE with planted redundancy for the epoch tests, and residuals
that make its redundant groups fire together.

Groups of near-duplicate features (tied encoder columns, so members fire on
the same tokens; near-parallel decoder rows, so their polygram overlap is
high); every other feature is a random unit direction that fires rarely.
Group ``A``'s first member has a tiny decoder norm (lowest priority) and
exactly the same encoder column as the rest of ``A``, so it is ``A``'s
representative (tied fire counts → lowest id) and, after ``A`` is
compressed, the next anchor comes from group ``B``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from polygram.compression.epoch import EpochCompressor

N_SAE = 24
D_MODEL = 16
N_TOKENS = 1500
GROUP_A = (0, 1, 2, 3)
GROUP_B = (8, 9, 10)


def planted_sae(seed: int = 0, *, extra: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((N_SAE, D_MODEL))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    w_enc = dirs.T.copy()
    w_dec = dirs.copy()
    b_enc = np.full(N_SAE, -1.6)
    for group, scale in ((GROUP_A, 3.0), (GROUP_B, 2.0)):
        base = dirs[group[0]]
        for f in group:
            w_enc[:, f] = base  # identical encoders: identical firing
            noisy = base + 0.02 * rng.standard_normal(D_MODEL)
            w_dec[f] = scale * noisy / np.linalg.norm(noisy)
        b_enc[list(group)] = -1.0
    w_dec[GROUP_A[0]] /= 3.0  # lowest priority in A, but A's representative
    out = {
        "W_enc": w_enc.astype(np.float32),
        "b_enc": b_enc.astype(np.float32),
        "W_dec": w_dec.astype(np.float32),
        "b_dec": np.zeros(D_MODEL, np.float32),
    }
    if extra:  # a tensor the SAE does not use (a threshold would make it JumpReLU)
        out["log_feature_sparsity"] = np.arange(N_SAE, dtype=np.float64)
    return out


def write_planted_sae(path: Path, seed: int = 0, *, extra: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(planted_sae(seed, extra=extra), str(path))
    return path


def residuals(seed: int = 1, n_tokens: int = N_TOKENS) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_tokens, D_MODEL)).astype(np.float32)


def make_epoch(sae: Path, **kw: Any) -> EpochCompressor:
    """An EpochCompressor on cached residuals with the polygram gate off (the
    planted groups are found by Jaccard) and no progress output."""
    args: dict[str, Any] = {
        "prompts": [],
        "layer": 5,
        "cached_residuals": residuals(),
        "polygram_overlap_threshold": 0.0,
        "progress": False,
    }
    args.update(kw)
    return EpochCompressor(sae, **args)


def epoch_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``polygram compress-epoch`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "polygram.cli", "compress-epoch", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
