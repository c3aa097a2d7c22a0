"""A tiny random GPT-2 built offline: n_embd 32, 4 layers, 4 heads, and a
~300-token byte-level BPE trained on a few lines, saved with its tokenizer so
``from_pretrained(out)`` (and so any ``model_name=`` of Polygram) loads it with
no download.  The stand-in model of the behavioural tests and the
planted-redundancy research walk; needs torch, transformers and tokenizers."""

from __future__ import annotations

from pathlib import Path

D_MODEL = 32
CORPUS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman.",
    "Quantum states interfere when their phases differ.",
    "Sparse autoencoders find features that fire together.",
    "the quick brown fox jumps over the lazy dog",
]


def build_tiny_gpt2(out: Path, seed: int = 0) -> Path:
    """Write the model and its tokenizer to ``out``; weights seeded by ``seed``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    torch.manual_seed(seed)
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
