"""The model half of ``BehaviouralValidator.validate()`` (spec 10 §4, §8;
spec 16 §4), on :mod:`polygram.runtime`.

Imported only by ``validate()``; torch is imported by the runtime, lazily.

For a panel of ``n`` features over ``P`` prompts, with batches of ``B`` prompts
(right-padded, masked):

1. baseline: ``⌈P/B⌉`` forwards capturing the hooked tensor (``resid_pre``,
   ``resid_post``, ``attn_out`` or ``mlp_out`` of the layer); the panel's SAE
   activations are encoded right away at every real token, and the baseline
   log-probs are kept only at positions where some panel feature fires (never
   the full ``T × vocab``);
2. one ablation *sweep* per feature, over the prompts where it fires, ``B`` at
   a time: the hook subtracts the feature's contribution from the hooked
   tensor at its firing positions, and ``KL(baseline ‖ ablated)`` is taken at
   those positions — ``Σ_k ⌈P_k/B⌉`` forwards, and only ``T × n`` KL values kept;
3. pair aggregation and the summary, in numpy (``aggregate``, ``stats``).

Padding and special tokens (BOS, …) never enter a statistic: firing,
Jaccard, Pearson and KL are read at ``P_tok`` positions only — real and not a
special id, the evaluations' rule (spec 16 §5.2) — so the high-norm BOS
position neither fires nor is ablated.  ``n_tokens`` counts those positions.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from polygram.behavioural.aggregate import aggregate_pairs, check_candidates
from polygram.behavioural.report import (
    SCHEMA_VERSION,
    CandidatePair,
    ValidationReport,
    confirmed_pairs,
)
from polygram.behavioural.stats import summarise
from polygram.dictionary import Dictionary
from polygram.runtime import (
    HookPoint,
    LoadedModel,
    TokenizedPrompts,
    capture,
    default_context_size,
    forward,
    get_model,
    iter_batches,
    locate,
    make_batch,
    replace,
    require_torch,
    special_ids,
    tokenize_prompts,
)
from polygram.sae import SAE
from polygram.sae import forward as saef

__all__ = ["PanelSAE", "Sweepable", "kl_rows", "run_validation"]


class Sweepable(Protocol):
    """What the sweeps read from a ``BehaviouralValidator`` (a Protocol, so this
    module does not import the validator that imports it)."""

    dictionary: Dictionary

    @property
    def sae(self) -> SAE: ...

    feature_ids: Sequence[int]
    prompts: Sequence[str]
    layer: int | None  # resolved (never None) once the validator is built
    hook: str | None
    block_path: str | None
    model_name: str | None
    device: str | None
    dtype: str
    batch_size: int
    context_size: int | None
    prepend_bos: bool | None
    polygram_overlap_threshold: float
    jaccard_threshold: float
    min_firing_rate: float
    min_both_fire: int
    progress: bool


class PanelSAE:
    """The panel's features of an SAE: the validator's only SAE math, all of it
    through :mod:`polygram.sae.forward` (on the hooked tensor's device)."""

    def __init__(self, sae: SAE, ids: Sequence[int]):
        self.sae = sae
        self.ids = [int(i) for i in ids]
        self.d_in = sae.d_in

    def encode(self, x: Any) -> Any:
        """Panel activations ``[N, n]`` of hooked activations ``x`` ``[N, d_in]`` (float32)."""
        return saef.encode(self.sae, x, features=self.ids)

    def contribution(self, f: Any, k: int, x: Any) -> Any:
        """What panel feature ``k`` firing at ``f`` ``[M]`` adds to the hooked
        activations ``x`` ``[M, d_in]`` of those positions: ``[M, d_in]``."""
        return saef.contribution(self.sae, f, self.ids[k], x)


@dataclass
class _Prompt:
    """One prompt's baseline (on the device) and its place in the token axis."""

    row: int  # row in the TokenizedPrompts
    offset: int  # first token in the concatenated token axis
    acts: Any  # [length, n_features] float32, 0 at special-token positions
    tok: Any  # [length] bool: the position is in P_tok (not a special token)
    row_of: Any  # [length] int64: row in base_logp, -1 where no panel feature fires
    base_logp: Any  # [n_fire_any, vocab] float32 baseline log-probs


def _say(v: Sweepable, text: str) -> None:
    if v.progress:
        print(f"polygram validate: {text}", file=sys.stderr, flush=True)


def run_validation(v: Sweepable, candidates: Sequence[CandidatePair]) -> ValidationReport:
    """Run the behavioural stage for ``v`` and aggregate ``candidates``."""
    ids = list(v.feature_ids)
    check_candidates(candidates, ids)  # before any model work: a bad list fails fast
    torch = require_torch("BehaviouralValidator.validate()")  # before reading the SAE
    sae = v.sae  # loaded once, by the validator
    bad = [f for f in ids if not 0 <= f < sae.d_sae]
    if bad:
        raise ValueError(
            f"feature_ids: {bad} out of range; {sae.source.display!r} holds features "
            f"0..{sae.d_sae - 1}"
        )
    assert v.layer is not None and v.hook is not None and v.model_name is not None
    _say(v, f"loading {v.model_name!r}")
    lm = get_model(v.model_name, v.device, v.dtype)
    hook = HookPoint(v.layer, v.hook)
    locate(lm, hook, block_path=v.block_path)  # layout and layer range, before any forward
    panel = PanelSAE(sae, ids)
    size = v.context_size if v.context_size is not None else default_context_size(lm.config)
    tokens = tokenize_prompts(lm.tokenizer, v.prompts, prepend_bos=v.prepend_bos, context_size=size)

    with torch.no_grad():
        prompts = _baseline(v, lm, hook, tokens, panel)
        in_tok = np.concatenate([p.tok.cpu().numpy() for p in prompts])
        n_tokens = int(in_tok.sum())
        acts = np.concatenate([p.acts.cpu().numpy() for p in prompts], axis=0)
        n_fires = (acts > 0).sum(axis=0)  # firing tokens per feature
        for k, fid in enumerate(ids):
            rate = float(n_fires[k] / n_tokens)
            if rate < v.min_firing_rate:
                warnings.warn(
                    f"feature {fid} fires on {rate:.4g} of the {n_tokens} tokens, below "
                    f"min_firing_rate={v.min_firing_rate:g}; its pairs rest on few tokens",
                    RuntimeWarning,
                    stacklevel=4,
                )
        kl = np.zeros((in_tok.size, len(ids)), dtype=np.float32)
        with replace(lm, hook, lambda x: x, block_path=v.block_path) as ablate:
            for k, fid in enumerate(ids):
                n_fwd, n_prompts = _sweep(lm, ablate, tokens, prompts, k, panel, kl, v.batch_size)
                _say(
                    v,
                    f"sweep {k + 1}/{len(ids)}: feature {fid} ablated in {n_prompts} of "
                    f"{len(prompts)} prompts ({int(n_fires[k])} firing tokens, {n_fwd} forwards)",
                )

    acts, kl = acts[in_tok], kl[in_tok]
    pairs = aggregate_pairs(
        candidates,
        {fid: acts[:, k] for k, fid in enumerate(ids)},
        {fid: kl[:, k] for k, fid in enumerate(ids)},
        polygram_overlap_threshold=v.polygram_overlap_threshold,
        jaccard_threshold=v.jaccard_threshold,
        min_both_fire=v.min_both_fire,
    )
    return ValidationReport(
        schema_version=SCHEMA_VERSION,
        dictionary_name=v.dictionary.name,
        model_name=v.model_name,
        layer=v.layer,
        n_prompts=len(v.prompts),
        n_tokens=n_tokens,
        polygram_overlap_threshold=v.polygram_overlap_threshold,
        jaccard_threshold=v.jaccard_threshold,
        min_firing_rate=v.min_firing_rate,
        min_both_fire=v.min_both_fire,
        feature_ids=tuple(ids),
        pairs=tuple(pairs),
        summary=summarise(pairs),
        confirmed=confirmed_pairs(pairs),
        n_clusters=len({f.cluster for f in v.dictionary.features}),
        sae_settings=None if sae.settings is None else sae.settings.to_dict(),
    )


def _baseline(
    v: Sweepable,
    lm: LoadedModel,
    hook: HookPoint,
    tokens: TokenizedPrompts,
    panel: PanelSAE,
) -> list[_Prompt]:
    import torch

    out: list[_Prompt] = []
    offset = 0
    special = special_ids(lm.tokenizer)
    with capture(lm, hook, block_path=v.block_path) as cap:
        for batch in iter_batches(tokens, batch_size=v.batch_size, device=lm.device):
            logits = forward(lm, batch)
            x = cap.take()  # [B, T, d] float32
            if x.shape[-1] != panel.d_in:
                raise ValueError(
                    f"sae_checkpoint: d_model {panel.d_in} does not match the model's hidden "
                    f"size {x.shape[-1]} at {hook.name} ({v.model_name!r})"
                )
            tok = batch.token_mask(special)[batch.mask]
            acts = (panel.encode(batch.real(x)) * tok[:, None]).split(list(batch.lengths))
            toks = tok.split(list(batch.lengths))
            for b, row in enumerate(batch.rows):
                a = acts[b]  # [length, n]
                pos = torch.nonzero((a > 0).any(dim=1)).flatten()
                row_of = torch.full((a.shape[0],), -1, dtype=torch.long, device=a.device)
                row_of[pos] = torch.arange(pos.numel(), device=a.device)
                base_logp = torch.log_softmax(logits[b, pos], dim=-1)
                out.append(_Prompt(row, offset, a, toks[b], row_of, base_logp))
                offset += a.shape[0]
    _say(v, f"baseline: {len(out)} prompts, {offset} tokens captured at {hook.name}")
    return out


def kl_rows(torch: Any, base_logp: Any, ablated_logits: Any) -> Any:
    """Per-row ``max(0, KL(p ‖ q))`` in nats, ``p = exp(base_logp)``,
    ``q = softmax(ablated_logits)`` (float32, log-sum-exp normalised).  Tokens
    with ``p = 0`` contribute 0 (0.0.1 let ``0 · (−inf)`` make the row NaN)."""
    log_q = torch.log_softmax(ablated_logits, dim=-1)
    prob = base_logp.exp()
    terms = torch.where(prob > 0, prob * (base_logp - log_q), torch.zeros_like(prob))
    return terms.sum(dim=-1).clamp_min(0.0)


def _sweep(
    lm: LoadedModel,
    ablate: replace,
    tokens: TokenizedPrompts,
    prompts: list[_Prompt],
    k: int,
    panel: PanelSAE,
    kl: np.ndarray,
    batch_size: int,
) -> tuple[int, int]:
    """Ablate feature ``k`` in every prompt where it fires, ``batch_size``
    prompts per forward; write its KL into ``kl[:, k]``.  Returns
    ``(forwards run, prompts ablated)``."""
    import torch

    firing = [p for p in prompts if bool((p.acts[:, k] > 0).any())]
    n_fwd = 0
    for start in range(0, len(firing), batch_size):
        chunk = firing[start : start + batch_size]
        batch = make_batch(tokens, [p.row for p in chunk], lm.device)
        b_idx, t_idx, base, where = [], [], [], []
        for b, p in enumerate(chunk):
            pos = torch.nonzero(p.acts[:, k] > 0).flatten()
            b_idx.append(torch.full_like(pos, b))
            t_idx.append(pos)
            base.append(p.base_logp[p.row_of[pos]])
            where.append(p.offset + pos.cpu().numpy())
        bi, ti = torch.cat(b_idx), torch.cat(t_idx)
        f = torch.cat([p.acts[t, k] for p, t in zip(chunk, t_idx, strict=True)])

        def edit(x: Any, bi: Any = bi, ti: Any = ti, f: Any = f) -> Any:
            x[bi, ti] -= panel.contribution(f, k, x[bi, ti])
            return x

        ablate.edit = edit
        logits = forward(lm, batch)
        n_fwd += 1
        values = kl_rows(torch, torch.cat(base), logits[bi, ti])
        kl[np.concatenate(where), k] = values.cpu().numpy()
    return n_fwd, len(firing)
