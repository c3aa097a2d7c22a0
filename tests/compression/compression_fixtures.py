"""Fixtures for the compression tests: hand-built validation reports and a
small synthetic SAE checkpoint (spec 11 §9)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from polygram.behavioural import CandidatePair, ValidationReport, ValidationSummary

N_FEATURES, D_MODEL = 16, 8


def _pair(
    i: int,
    j: int,
    confirmed: bool,
    n_fires: Mapping[int, int],
    kl_ablate: Mapping[int, float],
) -> CandidatePair:
    hi = confirmed
    return CandidatePair(
        i=i,
        j=j,
        polygram_overlap=0.8 if hi else 0.1,
        decoder_overlap=0.9 if hi else 0.1,
        jaccard=0.5 if hi else 0.05,
        pearson_activation=math.nan,
        kl_ablate_i=kl_ablate.get(i, math.nan),
        kl_ablate_j=kl_ablate.get(j, math.nan),
        kl_ratio_paired=math.nan,
        kl_log_ratio_abs=math.nan,
        n_fires_i=n_fires[i],
        n_fires_j=n_fires[j],
        n_both_fire=8 if hi else 1,
        n_either_fire=15 if hi else 5,
        gate_pass=hi,
    )


def report_from_pairs(
    feature_ids: Iterable[int],
    pairs: Iterable[CandidatePair],
    confirmed: Iterable[tuple[int, int]],
    name: str = "SynthDict",
) -> ValidationReport:
    return ValidationReport(
        schema_version=1,
        dictionary_name=name,
        model_name="gpt2",
        layer=10,
        n_prompts=4,
        n_tokens=64,
        polygram_overlap_threshold=0.5,
        jaccard_threshold=0.3,
        min_firing_rate=0.0,
        min_both_fire=1,
        feature_ids=tuple(feature_ids),
        pairs=tuple(pairs),
        summary=ValidationSummary.unmeasured("synthetic"),
        confirmed=tuple(confirmed),
    )


def build_report(
    n_features: int,
    confirmed: Iterable[tuple[int, int]],
    n_fires: Mapping[int, int] | None = None,
    kl_ablate: Mapping[int, float] | None = None,
    feature_ids: Iterable[int] | None = None,
) -> ValidationReport:
    """A report over every pair of ``feature_ids`` (default ``range(n)``) in
    panel order — so ``i > j`` wherever the ids are not ascending.

    Confirmed pairs get polygram 0.8 / decoder 0.9 / Jaccard 0.5 / both 8 /
    either 15, the rest 0.1 / 0.1 / 0.05 / 1 / 5; ``n_fires`` defaults to
    ``10·(fid + 1)``, ``kl_ablate`` to NaN.
    """
    ids = list(range(n_features)) if feature_ids is None else list(feature_ids)
    conf = [(int(i), int(j)) for i, j in confirmed]
    conf_set = {frozenset(p) for p in conf}
    fires = {f: 10 * (f + 1) for f in ids} if n_fires is None else {**n_fires}
    for f in ids:
        fires.setdefault(f, 0)
    kl = dict(kl_ablate or {})
    pairs = [
        _pair(a, b, frozenset((a, b)) in conf_set, fires, kl)
        for a, b in itertools.combinations(ids, 2)
    ]
    return report_from_pairs(ids, pairs, conf)


def synth_sae(
    path: Path,
    *,
    seed: int = 0,
    n: int = N_FEATURES,
    d: int = D_MODEL,
    row_norms: Mapping[int, float] | None = None,
    biases: bool = False,
) -> Path:
    """A canonical float32 SAE: standard-normal W_enc/W_dec, zero biases
    (random with ``biases``), decoder rows rescaled to ``row_norms``."""
    rng = np.random.default_rng(seed)
    w_dec = rng.standard_normal((n, d)).astype(np.float32)
    for f, norm in (row_norms or {}).items():
        row = w_dec[f].astype(np.float64)
        w_dec[f] = (row * (norm / np.linalg.norm(row))).astype(np.float32)
    tensors = {
        "W_enc": rng.standard_normal((d, n)).astype(np.float32),
        "b_enc": (rng.standard_normal(n) if biases else np.zeros(n)).astype(np.float32),
        "W_dec": w_dec,
        "b_dec": (rng.standard_normal(d) if biases else np.zeros(d)).astype(np.float32),
    }
    save_file(tensors, str(path))
    return path
