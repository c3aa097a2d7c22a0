"""Tokenisation rules, truncation, SAELens packing, right padding, masks and
the batch-1 vs batch-8 equivalence (spec 16 §4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polygram.runtime import (
    HOOK_KINDS,
    HookPoint,
    TokenizedPrompts,
    capture,
    capture_activations,
    forward,
    get_model,
    iter_batches,
    pad_token_id,
    special_ids,
    tokenize_prompts,
)


class WordTokenizer:
    """A stand-in tokenizer: one id per word (ids from 10 on); ``<s>`` = 1 is
    added in front when ``add_special_tokens`` (like Llama's)."""

    def __init__(self, bos: int | None = 1, eos: int | None = 2, pad: int | None = None):
        self.bos_token_id, self.eos_token_id, self.pad_token_id = bos, eos, pad
        self.vocab: dict[str, int] = {}

    @property
    def all_special_ids(self) -> list[int]:
        return [
            i for i in (self.bos_token_id, self.eos_token_id, self.pad_token_id) if i is not None
        ]

    def word(self, w: str) -> int:
        return self.vocab.setdefault(w, 10 + len(self.vocab))

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> dict[str, Any]:
        rows = []
        for t in texts:
            ids = [self.word(w) for w in t.split()]
            if add_special_tokens and self.bos_token_id is not None:
                ids = [self.bos_token_id, *ids]
            rows.append(ids)
        return {"input_ids": rows}


# --- torch-free: the rules -----------------------------------------------------------


def test_prepend_bos_rules() -> None:
    tok = WordTokenizer()
    a, b, c = (tok.word(w) for w in ["a", "b", "c"])
    assert tokenize_prompts(tok, ["a b", "c"], prepend_bos=True).rows == ((1, a, b), (1, c))
    assert tokenize_prompts(tok, ["a b", "c"], prepend_bos=False).rows == ((a, b), (c,))
    assert tokenize_prompts(tok, ["a b", "c"]).rows == ((1, a, b), (1, c))  # the tokenizer's own
    no_auto = WordTokenizer(bos=None)
    with pytest.raises(
        ValueError, match=r"prepend_bos=True but the tokenizer \(WordTokenizer\) has no BOS"
    ):
        tokenize_prompts(no_auto, ["a"], prepend_bos=True)


def test_empty_prompts_are_refused_by_index() -> None:
    tok = WordTokenizer()
    for bos in (True, False, None):
        with pytest.raises(ValueError, match=r"prompts\[1\]: '  ' tokenizes to no text token"):
            tokenize_prompts(tok, ["a", "  "], prepend_bos=bos)
    with pytest.raises(ValueError, match="prompts: empty"):
        tokenize_prompts(tok, [])
    with pytest.raises(ValueError, match="single string"):
        tokenize_prompts(tok, "a b")
    with pytest.raises(ValueError, match=r"entries \[0\] are not strings"):
        tokenize_prompts(tok, [3])  # type: ignore[list-item]


def test_truncation_warns_once_and_counts() -> None:
    tok = WordTokenizer()
    prompts = ["a b c d e", "a", "a b c"]
    with pytest.warns(RuntimeWarning, match=r"^2 of 3 prompts truncated to context_size 3$") as rec:
        t = tokenize_prompts(tok, prompts, prepend_bos=True, context_size=3)
    assert len(rec) == 1
    assert [len(r) for r in t.rows] == [3, 2, 3] and t.rows[0][0] == 1  # BOS kept, tail cut
    assert t.n_truncated_prompts == 2 and t.n_prompts == 3 and t.n_tokens == 8
    assert tokenize_prompts(tok, prompts, context_size=6).n_truncated_prompts == 0  # no warning
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="context_size: got"):
            tokenize_prompts(tok, prompts, context_size=bad)  # type: ignore[arg-type]


def test_packing_saelens_with_bos() -> None:
    tok = WordTokenizer()
    a, b, c, d, e, f, g, h = (tok.word(w) for w in ["a", "b", "c", "d", "e", "f", "g", "h"])
    t = tokenize_prompts(
        tok, ["a b c", "d e", "f g h i j"], prepend_bos=True, context_size=4, packing="saelens"
    )
    # BOS separates prompts; a row that would start mid-text gets a BOS; the partial row drops
    assert t.rows == ((1, a, b, c), (1, d, e, 1), (1, f, g, h))
    assert t.prompt_of_row == (-1, -1, -1) and t.n_truncated_prompts == 0 and t.packing == "saelens"


def test_packing_saelens_without_bos() -> None:
    tok = WordTokenizer()
    ids = [tok.word(w) for w in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]]
    t = tokenize_prompts(
        tok, ["a b c", "d e", "f g h i j"], prepend_bos=False, context_size=4, packing="saelens"
    )
    assert t.rows == (tuple(ids[:4]), tuple(ids[4:8]))


def test_packing_refusals() -> None:
    tok = WordTokenizer()
    with pytest.raises(ValueError, match="needs a context_size"):
        tokenize_prompts(tok, ["a"], packing="saelens")
    with pytest.raises(ValueError, match="fewer than one row of context_size 8"):
        tokenize_prompts(tok, ["a b"], prepend_bos=True, context_size=8, packing="saelens")
    with pytest.raises(ValueError, match="packing: got 'tight'; expected one of none, saelens"):
        tokenize_prompts(tok, ["a"], packing="tight")
    with pytest.raises(ValueError, match="prepend_bos: got 1"):
        tokenize_prompts(tok, ["a"], prepend_bos=1)  # type: ignore[arg-type]


def test_pad_id_fallback_chain_and_special_ids() -> None:
    assert pad_token_id(WordTokenizer(pad=7)) == 7
    assert pad_token_id(WordTokenizer(pad=None, eos=2)) == 2
    assert pad_token_id(WordTokenizer(bos=None, pad=None, eos=None)) == 0
    assert special_ids(WordTokenizer(pad=7)) == {1, 2, 7}
    assert tokenize_prompts(WordTokenizer(pad=None), ["a"]).pad_id == 2


# --- with torch: batches and masks ----------------------------------------------------

torch_only = pytest.mark.torch


@torch_only
def test_right_padding_and_masks() -> None:
    """spec 16 lm_metrics_tiny's position sets; the pad id equals a real token's
    id on purpose: masks come from attention_mask, never from ids."""
    torch = pytest.importorskip("torch")
    t = TokenizedPrompts(((2, 0, 1, 0), (2, 1)), (0, 1), 2, 0, None, True, "none", pad_id=0)
    (batch,) = iter_batches(t, batch_size=8)
    assert batch.input_ids.tolist() == [[2, 0, 1, 0], [2, 1, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch.lengths == (4, 2) and batch.rows == (0, 1)
    p_tok = {tuple(p) for p in torch.nonzero(batch.token_mask({2})).tolist()}
    p_ce = {tuple(p) for p in torch.nonzero(batch.ce_mask({2})).tolist()}
    assert p_tok == {(0, 1), (0, 2), (0, 3), (1, 1)}
    assert p_ce == {(0, 1), (0, 2)}
    x = torch.arange(8).view(2, 4, 1)
    assert batch.real(x).flatten().tolist() == [0, 1, 2, 3, 4, 5]
    # batches are consecutive rows; a subset keeps its order
    sizes = [b.rows for b in iter_batches(t, batch_size=1)]
    assert sizes == [(0,), (1,)]
    assert [b.rows for b in iter_batches(t, batch_size=1, rows=[1, 0])] == [(1,), (0,)]
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="batch_size: got"):
            next(iter_batches(t, batch_size=bad))  # type: ignore[arg-type]


@torch_only
def test_real_tokenizers(tiny_model: Callable[..., Path]) -> None:
    pytest.importorskip("torch")
    gpt2 = get_model(tiny_model("gpt2"), device="cpu").tokenizer
    llama = get_model(tiny_model("llama"), device="cpu").tokenizer
    esm = get_model(tiny_model("esm"), device="cpu").tokenizer
    text = "The cat sat"
    plain = gpt2(text, add_special_tokens=False)["input_ids"]
    assert tokenize_prompts(gpt2, [text]).rows == (tuple(plain),)  # GPT-2 adds nothing
    assert tokenize_prompts(gpt2, [text], prepend_bos=True).rows == ((gpt2.bos_token_id, *plain),)
    lplain = llama(text, add_special_tokens=False)["input_ids"]
    assert tokenize_prompts(llama, [text]).rows == ((llama.bos_token_id, *lplain),)
    assert tokenize_prompts(llama, [text], prepend_bos=False).rows == (tuple(lplain),)
    assert special_ids(gpt2) == {0} and special_ids(llama) == {0, 1, 2}
    rows = tokenize_prompts(esm, ["MKT"]).rows  # <cls> M K T <eos>
    assert rows == ((0, 20, 15, 11, 2),)
    assert {0, 1, 2, 3, 32} <= special_ids(esm)
    with pytest.raises(ValueError, match=r"tokenizer \(EsmTokenizer\) has no BOS"):
        tokenize_prompts(esm, ["MKT"], prepend_bos=True)


# --- batch invariance -----------------------------------------------------------------

PROMPTS = [
    "The cat sat on the mat.",
    "A dog",
    "Quantum states interfere when their phases differ, and the dog barked.",
    "Sparse",
    "the quick brown fox jumps over the lazy dog",
    "Sparse autoencoders find features that fire together.",
    "The mailman",
    "cat cat cat cat dog dog",
]


@torch_only
@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_batch_1_and_8_agree(tiny_model: Callable[..., Path], model_type: str) -> None:
    torch = pytest.importorskip("torch")
    lm = get_model(tiny_model(model_type, initializer_range=0.4), device="cpu")
    tokens = tokenize_prompts(lm.tokenizer, PROMPTS)
    hooks = [HookPoint(layer, kind) for layer in (0, 1) for kind in HOOK_KINDS]

    def collect(batch_size: int) -> tuple[Any, list[Any]]:
        logits, acts = [], [[] for _ in hooks]
        caps = [capture(lm, h) for h in hooks]
        for c in caps:
            c.__enter__()
        try:
            for batch in iter_batches(tokens, batch_size=batch_size):
                logits.append(batch.real(forward(lm, batch)))
                for store, c in zip(acts, caps, strict=True):
                    store.append(batch.real(c.take()))
        finally:
            for c in caps:
                c.__exit__(None, None, None)
        return torch.cat(logits), [torch.cat(a) for a in acts]

    l1, a1 = collect(1)
    l8, a8 = collect(8)
    assert l1.shape[0] == tokens.n_tokens
    assert min(map(len, tokens.rows)) < max(map(len, tokens.rows))  # real padding
    assert l1.abs().max() > 1.0  # non-trivial activations (bigger init)
    torch.testing.assert_close(l8, l1, atol=1e-4, rtol=0)
    for x1, x8 in zip(a1, a8, strict=True):
        torch.testing.assert_close(x8, x1, atol=1e-4, rtol=0)


@torch_only
def test_capture_activations_matches_hidden_states(tiny_model: Callable[..., Path]) -> None:
    """Against transformers' own ``output_hidden_states`` (the input of block 1),
    one unpadded prompt at a time."""
    torch = pytest.importorskip("torch")
    lm = get_model(tiny_model("llama", initializer_range=0.4), device="cpu")
    x = capture_activations(lm, "blocks.1.hook_resid_pre", PROMPTS, batch_size=3)
    want = []
    with torch.no_grad():
        for p in PROMPTS:
            ids = lm.tokenizer(p, return_tensors="pt")["input_ids"]
            want.append(lm.model(ids, output_hidden_states=True).hidden_states[1][0].numpy())
    expected = np.concatenate(want)
    assert x.dtype == np.float32 and x.shape == expected.shape
    np.testing.assert_allclose(x, expected, atol=1e-5, rtol=0)


@torch_only
def test_capture_activations_truncates_to_the_model_limit(tiny_model: Callable[..., Path]) -> None:
    pytest.importorskip("torch")
    lm = get_model(tiny_model("gpt2"), device="cpu")  # n_positions 64
    long = " ".join(["cat"] * 100)
    with pytest.warns(RuntimeWarning, match="1 of 2 prompts truncated to context_size 64"):
        x = capture_activations(lm, HookPoint(1, "mlp_out"), [long, "A dog"])
    assert x.shape[0] == 64 + len(lm.tokenizer("A dog")["input_ids"])
