"""SAEs for the evaluation tests on the tiny models, and a plain-torch
recomputation of an evaluation (batch 1, its own hook, its own SAE formula)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from polygram.sae import SAE
from polygram.sae.settings import SAESettings, Setting

PROMPTS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman.",
    "Quantum states interfere when their phases differ.",
    "Sparse autoencoders find features that fire together.",
    "the quick brown fox jumps over the lazy dog",
    "The dog sat on the fox.",
    "Features fire when their phases interfere.",
    "A cat barked.",
]


def settings(model: Path | str, layer: int = 2, kind: str = "resid_pre", **kw: Any) -> SAESettings:
    return SAESettings(
        architecture=Setting(kw.pop("architecture", "standard"), "explicit"),
        layer=Setting(layer, "explicit"),
        hook_kind=Setting(kind, "explicit"),
        model_name=Setting(str(model), "cfg"),
        **{k: Setting(v, "cfg") for k, v in kw.items()},
    )


def exact_sae(model: Path | str, d: int, **kw: Any) -> SAE:
    """``f = [relu(x), relu(−x)]``, ``x̂ = f·[I; −I] = x`` exactly."""
    eye = np.eye(d, dtype=np.float32)
    t = {
        "W_enc": np.concatenate([eye, -eye], 1),
        "b_enc": np.zeros(2 * d, np.float32),
        "W_dec": np.concatenate([eye, -eye], 0),
        "b_dec": np.zeros(d, np.float32),
    }
    return SAE(
        "standard",
        t,
        settings=settings(model, apply_b_dec_to_input=False, **kw),
        apply_b_dec_to_input=False,
    )


def random_sae(model: Path | str, d: int, d_sae: int = 24, seed: int = 0, **kw: Any) -> SAE:
    """A lossy standard SAE: random unit decoder rows, encoder = their transpose."""
    g = np.random.default_rng(seed)
    w = g.normal(size=(d_sae, d)).astype(np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    t = {
        "W_enc": w.T.copy(),
        "b_enc": g.normal(scale=0.1, size=d_sae).astype(np.float32),
        "W_dec": w,
        "b_dec": g.normal(scale=0.1, size=d).astype(np.float32),
    }
    return SAE("standard", t, settings=settings(model, **kw))


def oracle_evaluate(
    model_dir: Path, sae: SAE, prompts: list[str], layer: int = 2
) -> dict[str, Any]:
    """Batch-1 forwards of the HF model with a hand-written pre-hook on block
    ``layer`` and the standard SAE formula; metrics by ``eval_oracle``."""
    import torch
    from eval_oracle import oracle_lm, oracle_sae
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    t = {k: torch.from_numpy(np.array(v)) for k, v in sae.tensors.items()}
    b_in = t["b_dec"] if sae.apply_b_dec_to_input else 0.0

    def recon(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.relu((x - b_in) @ t["W_enc"] + t["b_enc"])
        return f @ t["W_dec"] + t["b_dec"], f

    special = set(tok.all_special_ids) | {tok.bos_token_id, tok.eos_token_id}
    xs, xhs, fs = [], [], []
    per = {"clean": [], "sae": [], "zero": []}
    ids_all = []
    for p in prompts:
        ids = torch.tensor([[tok.bos_token_id, *tok(p, add_special_tokens=False)["input_ids"]]])
        ids_all.append(ids)
        keep = torch.tensor([int(i) not in special for i in ids[0]])
        for mode in per:
            seen: list[torch.Tensor] = []

            def hook(
                _m: Any,
                args: tuple[Any, ...],
                mode: str = mode,
                seen: list = seen,
                keep: Any = keep,
            ) -> Any:
                h = args[0]
                seen.append(h.detach().clone())
                if mode == "clean":
                    return None
                if mode == "zero":
                    return (torch.zeros_like(h), *args[1:])
                out = h.clone()
                out[0, keep] = recon(h[0, keep])[0]
                return (out, *args[1:])

            handle = model.transformer.h[layer].register_forward_pre_hook(hook)
            with torch.no_grad():
                per[mode].append(model(ids).logits)
            handle.remove()
            if mode == "clean":
                x = seen[0][0, keep]
                xh, f = recon(x)
                xs.append(x), xhs.append(xh), fs.append(f)
    # one "batch" per prompt: each is its own row, no padding
    out: dict[str, Any] = {"ce": {}, "kl": {}}
    ce_lists: dict[str, list[float]] = {k: [] for k in per}
    kl_lists: dict[str, list[float]] = {"sae": [], "zero": []}
    for i, ids in enumerate(ids_all):
        r = oracle_lm(
            ids,
            torch.ones_like(ids),
            special,
            per["clean"][i],
            {"sae": per["sae"][i], "zero": per["zero"][i]},
        )
        n_ce, n_tok = len(r["ce_pos"]), len(r["tok_pos"])
        for k in ce_lists:
            ce_lists[k].append((r["ce"][k] * n_ce, n_ce))
        for k in kl_lists:
            kl_lists[k].append((r["kl"][k] * n_tok, n_tok))

    def pooled(v: list[tuple[float, int]]) -> float:
        return sum(a for a, n in v if n) / sum(n for _, n in v)

    out["ce"] = {k: pooled(v) for k, v in ce_lists.items()}
    out["kl"] = {k: pooled(v) for k, v in kl_lists.items()}
    out["sae"] = oracle_sae(torch.cat(xs), torch.cat(xhs), torch.cat(fs))
    out["n_tokens"] = sum(x.shape[0] for x in xs)
    return out


def confirmed_report(feature_ids: list[int], confirmed: list[tuple[int, int]]) -> Any:
    """A synthetic ValidationReport confirming ``confirmed`` (every pair of
    ``feature_ids`` listed, the confirmed ones passing the gate)."""
    import math
    from itertools import combinations

    from polygram.behavioural import CandidatePair, ValidationReport, ValidationSummary

    ok = {tuple(sorted(p)) for p in confirmed}
    pairs = [
        CandidatePair(
            i=i,
            j=j,
            polygram_overlap=0.9,
            decoder_overlap=0.9,
            jaccard=0.5,
            pearson_activation=math.nan,
            kl_ablate_i=math.nan,
            kl_ablate_j=math.nan,
            kl_ratio_paired=math.nan,
            kl_log_ratio_abs=math.nan,
            n_fires_i=10 + i,
            n_fires_j=10 + j,
            n_both_fire=8,
            n_either_fire=12,
            gate_pass=(i, j) in ok,
        )
        for i, j in combinations(sorted(feature_ids), 2)
    ]
    return ValidationReport(
        schema_version=1, dictionary_name="Synth", model_name="tiny", layer=2, n_prompts=8,
        n_tokens=64, polygram_overlap_threshold=0.5, jaccard_threshold=0.3,
        min_firing_rate=0.0, min_both_fire=1, feature_ids=tuple(sorted(feature_ids)),
        pairs=tuple(pairs), summary=ValidationSummary.unmeasured("synthetic"),
        confirmed=tuple(sorted(ok)),
    )  # fmt: skip
