"""Tokenisation, truncation, packing and right-padded batches (spec 16 §4).

:func:`tokenize_prompts` turns prompts into token rows once (the BOS rule,
truncation to ``context_size``, optional SAELens packing); :func:`iter_batches`
pads consecutive rows to the batch's longest with an attention mask.  Right
padding keeps every real token at its batch-1 position in every supported
family (positions come from the sequence index or from the mask), and causal
attention never lets a real token see a later pad, so real positions match a
batch-1 forward.  Padding is removed from every statistic by the mask
(:attr:`Batch.mask`, :meth:`Batch.real`), never by token id.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

__all__ = [
    "PACKINGS",
    "Batch",
    "TokenizedPrompts",
    "default_context_size",
    "iter_batches",
    "make_batch",
    "pad_token_id",
    "special_ids",
    "tokenize_prompts",
]

PACKINGS: tuple[str, ...] = ("none", "saelens")


def pad_token_id(tokenizer: Any) -> int:
    """The id padding uses: the tokenizer's pad, else its EOS, else 0 (pads
    are masked out, so any id in the vocabulary serves)."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0


def special_ids(tokenizer: Any) -> frozenset[int]:
    """The tokenizer's special ids: the non-None ``bos, eos, pad, unk, sep,
    cls, mask`` ids plus ``all_special_ids`` (SAELens' set)."""
    ids: set[int] = set()
    for name in ("bos", "eos", "pad", "unk", "sep", "cls", "mask"):
        value = getattr(tokenizer, f"{name}_token_id", None)
        if isinstance(value, int):
            ids.add(value)
    ids.update(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or ()))
    return frozenset(ids)


def default_context_size(config: Any) -> int | None:
    """The longest input the model takes (``max_position_embeddings``, or
    GPT-2's ``n_positions``; the text config of a multimodal model), else None."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(text, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@dataclass(frozen=True)
class TokenizedPrompts:
    """Token rows ready for batching.

    ``rows[r]`` is row ``r``'s token ids; ``prompt_of_row[r]`` the prompt it
    holds (``packing="none"``: row ``r`` is prompt ``r``; ``"saelens"``: -1,
    rows span prompts).  ``n_truncated_prompts`` counts prompts cut to
    ``context_size``; ``pad_id`` is :func:`pad_token_id` of the tokenizer."""

    rows: tuple[tuple[int, ...], ...]
    prompt_of_row: tuple[int, ...]
    n_prompts: int
    n_truncated_prompts: int
    context_size: int | None
    prepend_bos: bool | None
    packing: str
    pad_id: int

    @property
    def n_tokens(self) -> int:
        """Real tokens in all rows (no padding)."""
        return sum(len(r) for r in self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _check_context_size(context_size: object) -> int | None:
    if context_size is None:
        return None
    if isinstance(context_size, bool) or not isinstance(context_size, Integral) or context_size < 1:
        raise ValueError(f"context_size: got {context_size!r}; must be an integer >= 1 or None")
    return int(context_size)


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str | bytes):
        raise ValueError("prompts: got a single string; expected a sequence of prompts")
    out = list(prompts)
    if not out:
        raise ValueError("prompts: empty; give at least one prompt")
    bad = [i for i, p in enumerate(out) if not isinstance(p, str)]
    if bad:
        raise ValueError(f"prompts: entries {bad[:10]} are not strings")
    return out


def _encode(tokenizer: Any, prompts: list[str], prepend_bos: bool | None) -> list[list[int]]:
    """Each prompt's ids by the BOS rule: True → ``[BOS] + text tokens``;
    False → text tokens only; None → whatever ``tokenizer(text)`` adds."""
    if prepend_bos is True and not isinstance(getattr(tokenizer, "bos_token_id", None), int):
        raise ValueError(
            f"prepend_bos=True but the tokenizer ({type(tokenizer).__name__}) has no BOS token; "
            "pass prepend_bos=False or None (the tokenizer's own default)"
        )
    add = prepend_bos is None
    ids = tokenizer(prompts, add_special_tokens=add)["input_ids"]
    rows = [list(map(int, r)) for r in ids]
    special = special_ids(tokenizer)
    for i, row in enumerate(rows):
        if not any(t not in special for t in row):
            raise ValueError(
                f"prompts[{i}]: {prompts[i]!r} tokenizes to no text token "
                f"(ids {row}); give non-empty text"
            )
    if prepend_bos is True:
        rows = [[int(tokenizer.bos_token_id), *r] for r in rows]
    return rows


def _pack_saelens(streams: list[list[int]], context_size: int, bos: int | None) -> list[list[int]]:
    """Rows of exactly ``context_size`` tokens from the concatenated token
    streams, in order, text running on across rows; the final partial row is
    dropped.  With ``bos`` (``prepend_bos``: each stream already starts with
    it, so a BOS separates consecutive prompts) a row that would start with
    another token gets a BOS first (SAELens' ``concat_and_batch_sequences``
    with begin-batch and separator tokens = BOS)."""
    rows: list[list[int]] = []
    row: list[int] = []
    for stream in streams:
        for t in stream:
            if not row and bos is not None and t != bos:
                row.append(bos)
            row.append(t)
            if len(row) == context_size:
                rows.append(row)
                row = []
    return rows


def tokenize_prompts(
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    prepend_bos: bool | None = None,
    context_size: int | None = None,
    packing: str = "none",
) -> TokenizedPrompts:
    """Tokenise ``prompts`` into rows (see :class:`TokenizedPrompts`).

    ``packing="none"``: one row per prompt, cut to its first ``context_size``
    tokens (BOS included); when any is cut, one RuntimeWarning "k of P prompts
    truncated to context_size C".  ``packing="saelens"``: rows of exactly
    ``context_size`` tokens (:func:`_pack_saelens`; ``context_size`` required)."""
    items = _check_prompts(prompts)
    size = _check_context_size(context_size)
    if prepend_bos is not None and not isinstance(prepend_bos, bool):
        raise ValueError(f"prepend_bos: got {prepend_bos!r}; expected True, False or None")
    if packing not in PACKINGS:
        raise ValueError(f"packing: got {packing!r}; expected one of {', '.join(PACKINGS)}")
    streams = _encode(tokenizer, items, prepend_bos)
    pad = pad_token_id(tokenizer)
    if packing == "saelens":
        if size is None:
            raise ValueError(
                "packing='saelens' needs a context_size (rows have exactly that length)"
            )
        bos = int(tokenizer.bos_token_id) if prepend_bos else None
        if bos is not None and size < 2:
            raise ValueError("packing='saelens' with prepend_bos needs context_size >= 2")
        rows = _pack_saelens(streams, size, bos)
        if not rows:
            raise ValueError(
                f"packing='saelens': the {len(items)} prompts hold {sum(map(len, streams))} "
                f"tokens, fewer than one row of context_size {size}"
            )
        return TokenizedPrompts(
            tuple(map(tuple, rows)),
            (-1,) * len(rows),
            len(items),
            0,
            size,
            prepend_bos,
            packing,
            pad,
        )
    cut = 0
    if size is not None:
        cut = sum(len(s) > size for s in streams)
        streams = [s[:size] for s in streams]
        if cut:
            warnings.warn(
                f"{cut} of {len(items)} prompts truncated to context_size {size}",
                RuntimeWarning,
                stacklevel=2,
            )
    return TokenizedPrompts(
        tuple(map(tuple, streams)),
        tuple(range(len(items))),
        len(items),
        cut,
        size,
        prepend_bos,
        packing,
        pad,
    )


@dataclass(frozen=True, eq=False)
class Batch:
    """Rows ``rows`` of a :class:`TokenizedPrompts`, right-padded to the longest:
    ``input_ids`` and ``attention_mask`` ``[B, T]`` (int64, on the device);
    ``lengths[b]`` real tokens in row ``b``."""

    input_ids: Any
    attention_mask: Any
    rows: tuple[int, ...]
    lengths: tuple[int, ...]

    @property
    def inputs(self) -> dict[str, Any]:
        """The model's keyword inputs (no ``position_ids``: see the module docstring)."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}

    @property
    def mask(self) -> Any:
        """Real (non-pad) positions, bool ``[B, T]``."""
        return self.attention_mask.bool()

    def real(self, x: Any) -> Any:
        """``x[b, t, …]`` at real positions, row by row: ``[Σ lengths, …]``."""
        return x[self.mask]

    def token_mask(self, special: frozenset[int] | set[int]) -> Any:
        """``P_tok``: real positions whose input token is not special."""
        import torch

        ids = torch.tensor(
            sorted(special), dtype=self.input_ids.dtype, device=self.input_ids.device
        )
        return self.mask & ~torch.isin(self.input_ids, ids)

    def ce_mask(self, special: frozenset[int] | set[int]) -> Any:
        """``P_ce``: ``P_tok`` positions ``t`` with a next real token (``t + 1 < n_b``)."""
        import torch

        t = torch.arange(self.input_ids.shape[1], device=self.input_ids.device)
        n = torch.tensor(self.lengths, device=self.input_ids.device)
        return self.token_mask(special) & (t[None, :] + 1 < n[:, None])


def make_batch(tokenized: TokenizedPrompts, rows: Sequence[int], device: str = "cpu") -> Batch:
    """One right-padded batch of ``tokenized.rows[r]`` for ``r`` in ``rows``."""
    import torch

    picked = [tokenized.rows[r] for r in rows]
    if not picked:
        raise ValueError("make_batch: no rows")
    lengths = tuple(len(p) for p in picked)
    width = max(lengths)
    ids = torch.full((len(picked), width), tokenized.pad_id, dtype=torch.long)
    mask = torch.zeros((len(picked), width), dtype=torch.long)
    for b, p in enumerate(picked):
        ids[b, : len(p)] = torch.tensor(p, dtype=torch.long)
        mask[b, : len(p)] = 1
    return Batch(ids.to(device), mask.to(device), tuple(int(r) for r in rows), lengths)


def iter_batches(
    tokenized: TokenizedPrompts,
    *,
    batch_size: int = 8,
    device: str = "cpu",
    rows: Sequence[int] | None = None,
) -> Iterator[Batch]:
    """Batches of ``batch_size`` consecutive rows (of ``rows``, default all),
    in order; the last may be smaller."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size: got {batch_size!r}; must be an integer >= 1")
    order = list(range(len(tokenized.rows))) if rows is None else list(rows)
    for start in range(0, len(order), int(batch_size)):
        yield make_batch(tokenized, order[start : start + int(batch_size)], device)
