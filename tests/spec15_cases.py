"""The worked cases of spec 15 (``tests/data/reference_values_15.json``) and
the recipes that rebuild their inputs (``_meta.recipes``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from polygram.behavioural import CandidatePair, ValidationReport, ValidationSummary
from polygram.sae import SAEFeatureRecord, load_toy_sae

DATA = Path(__file__).parent / "data"
TOY = Path(__file__).parent / "fixtures" / "toy_sae.json"
CASES: dict[str, Any] = json.loads((DATA / "reference_values_15.json").read_text("utf-8"))
ATOL = 1e-9


def rows_of(recipe: Mapping[str, Any]) -> np.ndarray:
    """``gauss`` and ``planted`` projection rows."""
    rng = np.random.default_rng(recipe["seed"])
    n, d = recipe["n"], recipe["d"]
    if recipe["recipe"] == "gauss":
        return rng.standard_normal((n, d)) * recipe.get("scale", 1.0)
    assert recipe["recipe"] == "planted"
    centres = rng.standard_normal((recipe["n_groups"], d))
    noise = rng.standard_normal((n, d))
    return np.stack(
        [centres[i % recipe["n_groups"]] + recipe["sigma"] * noise[i] for i in range(n)]
    )


def records_of(recipe: Mapping[str, Any]) -> dict[int, SAEFeatureRecord]:
    if recipe["recipe"] == "toy":
        return load_toy_sae(TOY)
    rows = rows_of(recipe)
    labelled = recipe.get("labels") == "group_prefix"
    return {
        i: SAEFeatureRecord(
            feature_id=i,
            name=f"feat_{i}",
            projection=row,
            label=f"g{i % recipe['n_groups']}/f{i}" if labelled else None,
        )
        for i, row in enumerate(rows)
    }


def case_ids(case: Mapping[str, Any], records: Mapping[int, Any]) -> list[int]:
    ids = case["inputs"]["feature_ids"]
    return sorted(records) if ids == "all, in id order" else list(ids)


def synth_sae_arrays(spec: Mapping[str, Any]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(spec["seed"])
    n, d = spec["n"], spec["d"]
    w_dec = rng.standard_normal((n, d))
    for group in spec.get("groups", []):
        base = rng.standard_normal(d)
        for f in group:
            w_dec[f] = base + spec.get("noise", 0.0) * rng.standard_normal(d)
    w = w_dec.astype(np.float32)
    return {
        "W_dec": w,
        "W_enc": np.ascontiguousarray(w.T),
        "b_enc": np.full(n, spec.get("bias", 0.0), dtype=np.float32),
        "b_dec": np.zeros(d, dtype=np.float32),
    }


def write_synth_sae(
    path: Path,
    spec: Mapping[str, Any],
    keys: Sequence[str] | None = None,
    zero_first: Sequence[int] = (),
) -> Path:
    arrays = synth_sae_arrays(spec)
    for f in zero_first:  # the regrow cases: a zeroed slot before saving
        arrays["W_dec"][f] = 0
        arrays["W_enc"][:, f] = 0
        arrays["b_enc"][f] = 0
    if keys is not None:
        arrays = {k: arrays[k] for k in keys}
    save_file(arrays, str(path))
    return path


def residuals_of(spec: Mapping[str, Any]) -> np.ndarray:
    return (
        np.random.default_rng(spec["seed"])
        .standard_normal((spec["t"], spec["d"]))
        .astype(np.float32)
    )


def scored_pairs(seed: int, n: int, density: float = 1.0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            po, ja, do = rng.uniform(0, 1, 3)
            nfi, nfj = rng.integers(1, 100, 2)
            keep = rng.uniform() < density
            if keep:
                out.append(
                    {
                        "i": i,
                        "j": j,
                        "polygram_overlap": float(po),
                        "jaccard": float(ja),
                        "decoder_overlap": float(do),
                        "n_fires_i": int(nfi),
                        "n_fires_j": int(nfj),
                    }
                )
    return out


def hand_report(feature_ids: Sequence[int], pairs: Sequence[Mapping[str, Any]]) -> ValidationReport:
    """The ``report`` recipe: given pair fields over the recipe's defaults."""
    built = []
    for p in pairs:
        kw: dict[str, Any] = {
            "polygram_overlap": 0.5,
            "decoder_overlap": 0.5,
            "jaccard": 0.5,
            "pearson_activation": 0.0,
            "kl_ablate_i": math.nan,
            "kl_ablate_j": math.nan,
            "kl_ratio_paired": math.nan,
            "kl_log_ratio_abs": math.nan,
            "n_fires_i": 10,
            "n_fires_j": 10,
            "n_both_fire": 5,
            "n_either_fire": 15,
            "gate_pass": False,
        }
        kw.update({k: (math.nan if v is None else v) for k, v in p.items()})
        built.append(CandidatePair(**kw))
    return ValidationReport(
        schema_version=1,
        dictionary_name="HandReport",
        model_name="gpt2",
        layer=10,
        n_prompts=4,
        n_tokens=100,
        polygram_overlap_threshold=0.7,
        jaccard_threshold=0.3,
        min_firing_rate=0.01,
        min_both_fire=5,
        feature_ids=tuple(feature_ids),
        pairs=tuple(built),
        summary=ValidationSummary.unmeasured("hand"),
        confirmed=tuple((p.i, p.j) for p in built if p.gate_pass),
    )


def clusters_as_dicts(plan: Any) -> list[dict[str, Any]]:
    return [
        {
            "cluster_id": c.cluster_id,
            "members": list(c.members),
            "representative": c.representative,
            "zeroed": list(c.zeroed),
        }
        for c in plan.clusters
    ]
