"""``--eval-prompts`` and the evaluation's model flags (spec 16 §5.6, §6.1),
shared by ``compress``, ``regrow`` and ``compress-epoch``: the flags a
command does not already have for its own model pass are added here, and
:func:`eval_request` turns them into an :class:`~polygram.evals.EvalRequest`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_eval_args", "change_line", "eval_options", "eval_request"]


def _has(p: argparse.ArgumentParser, flag: str) -> bool:
    return any(flag in a.option_strings for a in p._actions)


def add_eval_args(p: argparse.ArgumentParser, *, prompts_flag: bool = True) -> None:
    """``--eval-prompts FILE`` plus whichever of ``--model``, ``--device``,
    ``--dtype``, ``--batch-size``, ``--context-size``,
    ``--prepend-bos/--no-prepend-bos`` and ``--max-tokens`` the parser lacks."""
    from polygram.cli.runtime_args import add_device_arg, positive_int
    from polygram.runtime import DTYPES

    g = p.add_argument_group("evaluation (spec 16 §5: CE loss recovered, KL, EV, L0)")
    if prompts_flag:
        g.add_argument(
            "--eval-prompts",
            default=None,
            metavar="FILE",
            help="evaluate source and output on these prompts (one per line): eval_before, "
            "eval_after and eval_change in the report",
        )
    if not _has(p, "--model"):
        g.add_argument("--model", default=None, help="model name or folder (default: the cfg)")
    if not _has(p, "--device"):
        add_device_arg(g)
    if not _has(p, "--dtype"):
        g.add_argument("--dtype", choices=DTYPES, default="auto", help="model dtype")
    if not _has(p, "--batch-size"):
        g.add_argument("--batch-size", type=positive_int, default=8, metavar="N")
    if not _has(p, "--context-size"):
        g.add_argument("--context-size", type=positive_int, default=None, metavar="C")
    if not _has(p, "--prepend-bos"):
        bos = g.add_mutually_exclusive_group()
        bos.add_argument("--prepend-bos", dest="prepend_bos", action="store_true", default=None)
        bos.add_argument("--no-prepend-bos", dest="prepend_bos", action="store_false")
    if not _has(p, "--max-tokens"):
        g.add_argument("--max-tokens", type=positive_int, default=None, metavar="N")


def eval_options(args: argparse.Namespace) -> Any:
    """The :class:`~polygram.evals.EvalOptions` of the flags."""
    from polygram.evals import EvalOptions

    bos = getattr(args, "prepend_bos", None)
    return EvalOptions(
        batch_size=getattr(args, "batch_size", 8),
        context_size=getattr(args, "context_size", None),
        **({} if bos is None else {"prepend_bos": bos}),
        device=getattr(args, "device", None),
        dtype=getattr(args, "dtype", "auto"),
        max_tokens=getattr(args, "max_tokens", None),
    )


def eval_request(args: argparse.Namespace) -> Any:
    """An EvalRequest when ``--eval-prompts`` was given, else None
    (``CommandError`` for an unreadable or empty prompts file)."""
    from polygram.cli.io import prompts_file
    from polygram.evals import EvalRequest

    if getattr(args, "eval_prompts", None) is None:
        return None
    prompts = prompts_file("--eval-prompts", args.eval_prompts)
    return EvalRequest(prompts, model=getattr(args, "model", None), options=eval_options(args))


def change_line(before: Any, after: Any) -> str:
    """``evaluation on N tokens: CE recovered a → b, KL a → b, EV a → b, L0 a → b``."""

    def pair(key: str, spec: str = ".4f") -> str:
        a, b = before.get(key), after.get(key)
        fa = "n/a" if a is None else format(a, spec)
        fb = "n/a" if b is None else format(b, spec)
        return f"{fa} → {fb}"

    return (
        f"evaluation on {after.get('n_tokens')} tokens: CE recovered {pair('ce_loss_score')}, "
        f"KL {pair('kl_div_with_sae')}, EV {pair('explained_variance')}, "
        f"L0 {pair('l0', '.1f')}"
    )
