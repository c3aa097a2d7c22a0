"""The torch half of ``BehaviouralValidator.validate()`` (spec 10 §4, §8).

Imported only by ``validate()``; torch and transformers are imported inside
the functions, so ``import polygram.behavioural`` never needs them.

Pipeline, for a panel of ``n`` features and ``P`` prompts of ``T`` tokens
in all:

1. baseline: one batch-1 forward per prompt; a forward pre-hook on block
   ``layer`` captures the residual entering it; the panel's SAE activations
   are encoded right away and the baseline log-probs are kept only at
   positions where some panel feature fires (never the full ``T × vocab``);
2. one ablation *sweep* per feature: for each prompt where it fires, one
   forward with ``f·W_dec[fid]`` subtracted from the block input at the
   firing positions (on device), and ``KL(baseline ‖ ablated)`` at those
   positions — so at most ``P × (1 + n)`` forwards, and only ``T × n`` KL
   values are kept;
3. pair aggregation and the summary, in numpy (``aggregate``, ``stats``).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram.behavioural.aggregate import aggregate_pairs, check_candidates
from polygram.behavioural.report import (
    SCHEMA_VERSION,
    CandidatePair,
    ValidationReport,
    confirmed_pairs,
)
from polygram.behavioural.stats import summarise
from polygram.errors import MissingDependencyError

if TYPE_CHECKING:
    from polygram.behavioural.validator import BehaviouralValidator

__all__ = [
    "DEVICES",
    "capture_block_inputs",
    "check_device",
    "hooked_block",
    "kl_rows",
    "load_model",
    "require_torch",
    "resolve_device",
    "run_validation",
]

DEVICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")


def require_torch(what: str = "BehaviouralValidator.validate()") -> Any:
    """``torch`` (and a check that ``transformers`` imports), or an
    ImportError naming the ``[behavioural]`` extra."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"{what} needs torch and transformers, which are not importable ({e}); "
            "install the extra: pip install 'polygram[behavioural]'"
        ) from e
    return torch


def load_model(
    model_name: str, device: str | None, what: str = "BehaviouralValidator.validate()"
) -> tuple[Any, Any, Any, str]:
    """``(torch, tokenizer, model, device)``: the causal LM in eval mode,
    gradients off, on the resolved device, in the dtype it loads as."""
    torch = require_torch(what)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = resolve_device(torch, device)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model: Any = AutoModelForCausalLM.from_pretrained(model_name)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.to(dev)
    return torch, tokenizer, model, dev


def _tokenize(tokenizer: Any, text: str, device: str, n: int) -> dict[str, Any]:
    """Batch-1 model inputs for one prompt (tokenizer defaults: no padding,
    no truncation, BOS only where the tokenizer adds one)."""
    enc = tokenizer(text, return_tensors="pt")
    inputs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask") if k in enc}
    if int(inputs["input_ids"].shape[1]) == 0:
        raise ValueError(f"prompts[{n}]: {text!r} tokenizes to no tokens")
    return inputs


def _capture_into(captured: list[Any]) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], None]:
    """A forward pre-hook (``with_kwargs=True``) appending the block input to ``captured``."""

    def capture(_m: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        captured.append(_hidden(args, kwargs).detach())

    return capture


def _captured_once(captured: list[Any], layer: int) -> Any:
    if len(captured) != 1:
        raise RuntimeError(
            f"the hook on block {layer} fired {len(captured)} times in one forward; expected once"
        )
    return captured[0][0].float()  # batch row 0: [seq, d_model]


def capture_block_inputs(
    model_name: str, layer: int, prompts: Sequence[str], device: str | None = None
) -> np.ndarray:
    """The residual stream entering block ``layer``, one batch-1 forward per
    prompt, concatenated over prompts: float32 ``[T, d_model]``.  No logits
    are kept.  (Used by the Regrower's residual capture.)"""
    torch, tokenizer, model, dev = load_model(model_name, device, "residual capture")
    block = hooked_block(model, layer)
    captured: list[Any] = []
    capture = _capture_into(captured)

    rows = []
    handle = block.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        with torch.no_grad():
            for n, text in enumerate(prompts):
                inputs = _tokenize(tokenizer, text, dev, n)
                captured.clear()
                model(**inputs)
                rows.append(_captured_once(captured, layer).cpu().numpy())
    finally:
        handle.remove()
    if not rows:
        raise ValueError("prompts: empty; give at least one prompt")
    return np.concatenate(rows, axis=0).astype(np.float32, copy=False)


def check_device(requested: object) -> str:
    """The lower-cased device name (``None`` or ``""`` → ``"auto"``), or
    ValueError naming the allowed ones; torch-free, so constructors can call it."""
    name = requested or "auto"
    if not isinstance(name, str) or name.lower() not in DEVICES:
        raise ValueError(
            f"device: unsupported device {requested!r}; expected one of {', '.join(DEVICES)} "
            "or None"
        )
    return name.lower()


def resolve_device(torch: Any, requested: str | None) -> str:
    """``None``/``"auto"`` → cuda, else mps, else cpu (with a RuntimeWarning);
    an explicit ``"cuda"``/``"mps"`` must be available."""
    name = check_device(requested)
    cuda_ok = bool(torch.cuda.is_available())
    mps = getattr(getattr(torch, "backends", None), "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "cuda":
        if not cuda_ok:
            raise ValueError("device='cuda': no CUDA device is available to torch")
        return "cuda"
    if name == "mps":
        if not mps_ok:
            raise ValueError("device='mps': the MPS backend is not available in this torch build")
        return "mps"
    if name == "cpu":
        return "cpu"
    if cuda_ok:
        return "cuda"
    if mps_ok:
        return "mps"
    warnings.warn(
        "device='auto': no CUDA or MPS device found, running on CPU (model forwards will be "
        "slow for real models); pass device='cpu' to silence this",
        RuntimeWarning,
        stacklevel=3,
    )
    return "cpu"


def hooked_block(model: Any, layer: int) -> Any:
    """The block whose input is the SAE's hook point: ``model.transformer.h``
    (GPT-2 family) or ``model.model.layers`` (Llama/Gemma/Mistral family)."""
    blocks = getattr(getattr(model, "transformer", None), "h", None)
    if blocks is None:
        blocks = getattr(getattr(model, "model", None), "layers", None)
    if blocks is None:
        raise ValueError(
            f"model: cannot find the transformer blocks of {type(model).__name__}; supported "
            "are models with model.transformer.h (GPT-2 family) or model.model.layers "
            "(Llama/Gemma/Mistral family)"
        )
    if not 0 <= layer < len(blocks):
        raise IndexError(
            f"layer: {layer} is out of range; {type(model).__name__} has {len(blocks)} blocks "
            f"(layers 0..{len(blocks) - 1})"
        )
    return blocks[layer]


def _hidden(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # the block input is the first positional argument (transformers up to
    # 5.x); accept the keyword form too
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    raise RuntimeError(
        "the hooked block was called without hidden states (no positional argument and no "
        "hidden_states keyword); this transformers version is not supported"
    )


def _with_hidden(
    args: tuple[Any, ...], kwargs: dict[str, Any], h: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if args:
        return (h, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": h}


@dataclass
class _Prompt:
    """One prompt's cached tensors (on device) and its place in the token axis."""

    inputs: dict[str, Any]
    offset: int
    length: int
    acts: Any  # [seq, n_features] float32
    row_of: Any  # [seq] int64: row in base_logp, -1 where no panel feature fires
    base_logp: Any  # [n_fire_any, vocab] float32 baseline log-probs


def _say(v: BehaviouralValidator, text: str) -> None:
    if v.progress:
        print(f"polygram validate: {text}", file=sys.stderr, flush=True)


def _load_sae(v: BehaviouralValidator) -> dict[str, np.ndarray]:
    from polygram.sae.checkpoint import check_sae_shapes, load_sae_checkpoint

    sae = load_sae_checkpoint(v.sae_checkpoint)
    check_sae_shapes(v.sae_checkpoint, sae)
    n_sae = sae["W_dec"].shape[0]
    bad = [f for f in v.feature_ids if not 0 <= f < n_sae]
    if bad:
        raise ValueError(
            f"feature_ids: {bad} out of range; {str(v.sae_checkpoint)!r} holds features "
            f"0..{n_sae - 1}"
        )
    return sae


def run_validation(
    v: BehaviouralValidator, candidates: Sequence[CandidatePair]
) -> ValidationReport:
    """Run the behavioural stage for ``v`` and aggregate ``candidates``."""
    ids = list(v.feature_ids)
    check_candidates(candidates, ids)  # before any model work: a bad list fails fast
    require_torch()  # fail on a missing extra before reading the SAE
    sae = _load_sae(v)
    _say(v, f"loading {v.model_name!r}")
    torch, tokenizer, model, device = load_model(v.model_name, v.device)
    block = hooked_block(model, v.layer)

    d_model = sae["W_dec"].shape[1]
    w_enc = torch.from_numpy(np.ascontiguousarray(sae["W_enc"][:, ids])).to(device)
    b_enc = torch.from_numpy(np.ascontiguousarray(sae["b_enc"][ids])).to(device)
    w_dec = torch.from_numpy(np.ascontiguousarray(sae["W_dec"][ids])).to(device)
    b_dec = torch.from_numpy(np.ascontiguousarray(sae["b_dec"])).to(device)
    del sae

    with torch.no_grad():
        prompts = _baseline(v, torch, tokenizer, model, block, device, d_model, w_enc, b_enc, b_dec)
        n_tokens = sum(p.length for p in prompts)
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
        kl = np.zeros((n_tokens, len(ids)), dtype=np.float32)
        for k, fid in enumerate(ids):
            n_fwd = _sweep(torch, model, block, prompts, k, w_dec[k], kl)
            _say(
                v,
                f"sweep {k + 1}/{len(ids)}: feature {fid} ablated in {n_fwd} of "
                f"{len(prompts)} prompts ({int(n_fires[k])} firing tokens)",
            )

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
    )


def _forward(model: Any, inputs: dict[str, Any]) -> Any:
    return model(**inputs).logits[0].float()


def _baseline(
    v: BehaviouralValidator,
    torch: Any,
    tokenizer: Any,
    model: Any,
    block: Any,
    device: str,
    d_model: int,
    w_enc: Any,
    b_enc: Any,
    b_dec: Any,
) -> list[_Prompt]:
    captured: list[Any] = []
    capture = _capture_into(captured)

    out: list[_Prompt] = []
    offset = 0
    handle = block.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        for n, text in enumerate(v.prompts):
            inputs = _tokenize(tokenizer, text, device, n)
            seq = int(inputs["input_ids"].shape[1])
            captured.clear()
            logits = _forward(model, inputs)
            resid = _captured_once(captured, v.layer)  # [seq, d_model]
            if resid.shape[-1] != d_model:
                raise ValueError(
                    f"sae_checkpoint: d_model {d_model} does not match the model's hidden size "
                    f"{resid.shape[-1]} at layer {v.layer} ({v.model_name!r})"
                )
            acts = torch.relu((resid - b_dec) @ w_enc + b_enc)  # [seq, n_features]
            fires_any = (acts > 0).any(dim=1)
            row_of = torch.full((seq,), -1, dtype=torch.long, device=resid.device)
            pos = torch.nonzero(fires_any).flatten()
            row_of[pos] = torch.arange(pos.numel(), device=resid.device)
            base_logp = torch.log_softmax(logits[pos], dim=-1)
            out.append(_Prompt(inputs, offset, seq, acts, row_of, base_logp))
            offset += seq
    finally:
        handle.remove()
    _say(v, f"baseline: {len(out)} prompts, {offset} tokens captured at layer {v.layer}")
    return out


def _ablation_hook(
    positions: Any, delta: Any
) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]:
    """A pre-hook replacing the block input ``h`` by ``h − delta`` at ``positions``
    (batch row 0), in float32 and cast back to ``h``'s dtype."""

    def hook(
        _m: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        h = _hidden(args, kwargs)
        h2 = h.clone()
        h2[0, positions] = (h[0, positions].float() - delta).to(h.dtype)
        return _with_hidden(args, kwargs, h2)

    return hook


def kl_rows(torch: Any, base_logp: Any, ablated_logits: Any) -> Any:
    """Per-row ``max(0, KL(p ‖ q))`` in nats, ``p = exp(base_logp)``,
    ``q = softmax(ablated_logits)`` (float32, log-sum-exp normalised).  Tokens
    with ``p = 0`` contribute 0 (0.0.1 let ``0 · (−inf)`` make the row NaN)."""
    log_q = torch.log_softmax(ablated_logits, dim=-1)
    prob = base_logp.exp()
    terms = torch.where(prob > 0, prob * (base_logp - log_q), torch.zeros_like(prob))
    return terms.sum(dim=-1).clamp_min(0.0)


def _sweep(
    torch: Any,
    model: Any,
    block: Any,
    prompts: list[_Prompt],
    k: int,
    w_row: Any,
    kl: np.ndarray,
) -> int:
    """Ablate feature ``k`` in every prompt where it fires; write its KL into
    ``kl[:, k]``.  Returns the number of forwards run."""
    n_fwd = 0
    for p in prompts:
        f = p.acts[:, k]
        positions = torch.nonzero(f > 0).flatten()
        if positions.numel() == 0:
            continue  # never fires here: no forward
        delta = f[positions, None] * w_row[None, :]
        handle = block.register_forward_pre_hook(_ablation_hook(positions, delta), with_kwargs=True)
        try:
            logits = _forward(model, p.inputs)
        finally:
            handle.remove()
        n_fwd += 1
        values = kl_rows(torch, p.base_logp[p.row_of[positions]], logits[positions])
        kl[p.offset + positions.cpu().numpy(), k] = values.cpu().numpy()
    return n_fwd
