"""Tiny random models of every family ``polygram.runtime`` hooks, built offline.

``build_tiny_model(model_type, out)`` writes a 2-layer, width-16 model of that
``model_type`` (random weights, seeded) and a matching tokenizer to ``out``, so
``polygram.runtime.get_model(str(out))`` loads it with no download.  The causal
families share a byte-level BPE trained on a few lines; ``esm`` gets a protein
vocabulary (ESM-2's 33 tokens).  Config fields can be overridden (e.g.
``do_layer_norm_before=False`` for OPT) to reach the documented exceptions.

Used by the runtime and evaluation tests (and the batching benchmark with
``n_layers=4`` and a wider ``width``); needs torch, transformers and tokenizers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: every ``model_type`` of the hook table (docs/runtime.md), in table order
TINY_MODEL_TYPES: tuple[str, ...] = (
    "gpt2",
    "gptj",
    "gpt_neox",
    "opt",
    "bloom",
    "llama",
    "mistral",
    "qwen2",
    "gemma",
    "gemma2",
    "gemma3_text",
    "gemma3",
    "esm",
)

CORPUS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman.",
    "Quantum states interfere when their phases differ.",
    "Sparse autoencoders find features that fire together.",
    "the quick brown fox jumps over the lazy dog",
]

#: ESM-2's vocabulary, in its order (ids 0..32)
ESM_VOCAB = (
    "<cls>",
    "<pad>",
    "<eos>",
    "<unk>",
    *"LAGVSERTIDPKQNFYMHWCXBUZO.-",
    "<null_1>",
    "<mask>",
)

_MAX_POSITIONS = 64


def _bpe_tokenizer(kind: str) -> Any:
    """A byte-level BPE (~300 tokens).  ``kind="gpt2"``: one ``<|endoftext|>``
    serving as BOS/EOS/UNK, no pad, nothing added by ``tokenizer(text)`` (like
    GPT-2); ``kind="llama"``: ``<s>``/``</s>``/``<unk>``, ``tokenizer(text)``
    prepends ``<s>`` (like Llama/Gemma), no pad."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>"] if kind == "gpt2" else ["<unk>", "<s>", "</s>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    if kind == "gpt2":
        eot = "<|endoftext|>"
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token=eot, eos_token=eot, unk_token=eot
        )
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _esm_tokenizer(out: Path) -> Any:
    from transformers import EsmTokenizer

    out.mkdir(parents=True, exist_ok=True)
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(ESM_VOCAB) + "\n", encoding="utf-8")
    return EsmTokenizer(str(vocab))


def _config(model_type: str, vocab: int, tok: Any, width: int, n_layers: int) -> Any:
    import transformers as tf

    ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    heads = 2
    head_dim = width // heads
    llama_like: dict[str, Any] = dict(
        vocab_size=vocab,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=n_layers,
        num_attention_heads=heads,
        num_key_value_heads=1,
        head_dim=head_dim,
        max_position_embeddings=_MAX_POSITIONS,
        **ids,
    )
    if model_type == "gpt2":
        return tf.GPT2Config(
            vocab_size=vocab, n_embd=width, n_layer=n_layers, n_head=heads,
            n_positions=_MAX_POSITIONS, **ids,
        )  # fmt: skip
    if model_type == "gptj":
        return tf.GPTJConfig(
            vocab_size=vocab, n_embd=width, n_layer=n_layers, n_head=heads,
            rotary_dim=head_dim // 2, n_positions=_MAX_POSITIONS, **ids,
        )  # fmt: skip
    if model_type == "gpt_neox":
        return tf.GPTNeoXConfig(
            vocab_size=vocab, hidden_size=width, num_hidden_layers=n_layers,
            num_attention_heads=heads, intermediate_size=2 * width,
            max_position_embeddings=_MAX_POSITIONS, **ids,
        )  # fmt: skip
    if model_type == "opt":
        return tf.OPTConfig(
            vocab_size=vocab, hidden_size=width, num_hidden_layers=n_layers, ffn_dim=2 * width,
            num_attention_heads=heads, max_position_embeddings=_MAX_POSITIONS,
            word_embed_proj_dim=width, **ids,
        )  # fmt: skip
    if model_type == "bloom":
        return tf.BloomConfig(
            vocab_size=vocab, hidden_size=width, n_layer=n_layers, n_head=heads, **ids
        )
    if model_type in ("llama", "mistral", "qwen2", "gemma"):
        cls = {
            "llama": tf.LlamaConfig,
            "mistral": tf.MistralConfig,
            "qwen2": tf.Qwen2Config,
            "gemma": tf.GemmaConfig,
        }[model_type]
        return cls(**llama_like)
    if model_type == "gemma2":
        return tf.Gemma2Config(**llama_like, sliding_window=8)
    if model_type == "gemma3_text":
        return tf.Gemma3TextConfig(**llama_like, sliding_window=8)
    if model_type == "gemma3":
        vision = tf.SiglipVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            image_size=16, patch_size=8,
        )  # fmt: skip
        text = tf.Gemma3TextConfig(**llama_like, sliding_window=8)
        return tf.Gemma3Config(
            text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4,
            image_token_index=vocab - 1, boi_token_index=vocab - 1, eoi_token_index=vocab - 1,
        )  # fmt: skip
    if model_type == "esm":
        return tf.EsmConfig(
            vocab_size=len(ESM_VOCAB), hidden_size=width, num_hidden_layers=n_layers,
            num_attention_heads=heads, intermediate_size=2 * width,
            max_position_embeddings=_MAX_POSITIONS + 2, position_embedding_type="rotary",
            pad_token_id=1, mask_token_id=ESM_VOCAB.index("<mask>"), token_dropout=True,
        )  # fmt: skip
    raise ValueError(f"model_type: {model_type!r}; expected one of {', '.join(TINY_MODEL_TYPES)}")


def build_tiny_model(
    model_type: str,
    out: Path,
    *,
    seed: int = 0,
    width: int = 16,
    n_layers: int = 2,
    **overrides: Any,
) -> Path:
    """Write a random ``model_type`` model (``n_layers`` blocks of width ``width``)
    and its tokenizer to ``out``; ``overrides`` set config fields.  Returns ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out = Path(out)
    if model_type == "esm":
        tok = _esm_tokenizer(out)
    else:
        tok = _bpe_tokenizer("gpt2" if model_type in ("gpt2", "gptj", "opt", "bloom") else "llama")
        if model_type == "qwen2":
            # Qwen2's tokenizer class would add an out-of-vocabulary pad otherwise;
            # a real pad id distinct from EOS also exercises that branch of padding
            tok.pad_token = "<unk>"
    cfg = _config(model_type, len(tok), tok, width, n_layers)
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"{model_type} config has no field {key!r}")
        setattr(cfg, key, value)
    torch.manual_seed(seed)
    auto = AutoModelForMaskedLM if model_type == "esm" else AutoModelForCausalLM
    model = auto.from_config(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
