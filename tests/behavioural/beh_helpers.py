"""Helpers for the behavioural tests: a synthetic SAE checkpoint, a tiny
offline GPT-2 (random weights + a byte-level BPE trained on a few lines),
and the prompts used with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from polygram import BehaviouralValidator, Dictionary, from_sae_lens, load_sae_safetensors
from polygram.sae import write_toy_sae

D_MODEL = 32
N_SAE = 16
#: not ascending on purpose: pairs like (11, 2) have i > j
PANEL = [11, 2, 7, 5]

PROMPTS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman all night.",
    "Quantum states interfere",
    "sparse features fire together",
]

_CORPUS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman.",
    "Quantum states interfere when their phases differ.",
    "Sparse autoencoders find features that fire together.",
    "the quick brown fox jumps over the lazy dog",
]


def write_sae(
    path: Path, *, n_sae: int = N_SAE, d_model: int = D_MODEL, seed: int = 0, enc_bias: float = 0.0
) -> dict[str, np.ndarray]:
    """A standard-normal SAE (SAELens names and layout) written with
    safetensors.numpy; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "W_enc": rng.standard_normal((d_model, n_sae)).astype(np.float32),
        "b_enc": np.full(n_sae, enc_bias, dtype=np.float32),
        "W_dec": rng.standard_normal((n_sae, d_model)).astype(np.float32),
        "b_dec": (0.1 * rng.standard_normal(d_model)).astype(np.float32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(path))
    return arrays


def panel_dictionary(ckpt: Path, panel: list[int] = PANEL) -> Dictionary:
    records = load_sae_safetensors(ckpt, feature_ids=panel)
    dictionary, _ = from_sae_lens(records, panel, assign_gamma=True)
    return dictionary


def make_validator(ckpt: Path, **kw: Any) -> BehaviouralValidator:
    """A validator for ``PANEL`` of ``ckpt`` at layer 2 over ``PROMPTS``; ``kw`` overrides."""
    base: dict[str, Any] = dict(
        dictionary=panel_dictionary(ckpt),
        sae_checkpoint=ckpt,
        feature_ids=PANEL,
        prompts=PROMPTS,
        layer=2,
    )
    base.update(kw)
    return BehaviouralValidator(**base)


def write_cli_inputs(tmp_path: Path) -> dict[str, Path]:
    """The three ``polygram validate`` input files for ``PANEL`` (the prompts
    file with a comment, a blank line and padded lines) under ``tmp_path``."""
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    toy = tmp_path / "panel.json"
    records = load_sae_safetensors(ckpt, feature_ids=PANEL)
    write_toy_sae(toy, [records[f] for f in PANEL], description="test panel")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\n\n" + "\n".join(f"  {p}  " for p in PROMPTS) + "\n")
    return {"dictionary": toy, "ckpt": ckpt, "prompts": prompts, "dir": tmp_path}


def validate_args(inputs: dict[str, Path], **over: str) -> list[str]:
    """``polygram validate`` arguments for ``inputs`` at layer 2, output under
    ``dir/out``; ``over`` sets flags (``min_both_fire="2"`` → ``--min-both-fire 2``)."""
    flags = {
        "--dictionary": str(inputs["dictionary"]),
        "--sae-checkpoint": str(inputs["ckpt"]),
        "--feature-ids": ",".join(map(str, PANEL)),
        "--prompts": str(inputs["prompts"]),
        "--layer": "2",
        "--output": str(inputs["dir"] / "out" / "report.json"),
    }
    flags.update({f"--{k.replace('_', '-')}": v for k, v in over.items()})
    out = ["validate"]
    for k, v in flags.items():
        out += [k, v]
    return out


def build_tiny_gpt2(out: Path) -> Path:
    """GPT-2 with n_embd=32, 4 layers, 4 heads, a ~300-token BPE; saved with
    its tokenizer so ``from_pretrained(out)`` works offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    torch.manual_seed(0)
    cfg = GPT2Config(
        n_embd=D_MODEL,
        n_layer=4,
        n_head=4,
        vocab_size=tok.get_vocab_size(),
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    GPT2LMHeadModel(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out
