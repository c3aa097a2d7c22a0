"""``polygram evaluate SAE --prompts FILE --output EVAL.json`` (spec 16 §5.6):
SAELens-standard metrics of one SAE spliced into its model.

Everything that can be refused — flags, missing files, the SAE, settings
conflicts, the hook, the model, a width mismatch — is refused before the
first forward: one ``polygram evaluate: …`` line, exit 2.  A failure during
the run exits 1 (``polygram evaluate: failed: …``).  Warnings become one
``polygram evaluate: warning: …`` line each.  On success one summary line
goes to stderr; nothing is written to stdout.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from polygram.cli.io import CommandError, error_text, prompts_file

__all__ = ["add_parsers", "cmd_evaluate", "summary_line"]

_EXIT_FAILED = 1
_EXIT_USAGE = 2


def _say(text: str) -> None:
    print(f"polygram evaluate: {text}", file=sys.stderr, flush=True)


def add_parsers(sub: Any) -> None:
    from polygram.cli.runtime_args import add_runtime_args, positive_int
    from polygram.runtime import HOOK_KINDS, PACKINGS

    p = sub.add_parser(
        "evaluate",
        help="CE loss recovered, KL, explained variance, L0 of an SAE in its model",
        description=(
            "Splice the SAE into its language model over the prompts and write the "
            "SAELens-standard metrics (CE loss recovered, KL and its score, explained variance, "
            "MSE, L0/L1, dead and dense features) as EvalResult JSON. Model and hook come from "
            "the SAE's cfg unless given."
        ),
    )
    p.add_argument("sae", metavar="SAE", help="SAELens folder or .safetensors file")
    p.add_argument("--prompts", required=True, metavar="FILE", help="one prompt per line")
    p.add_argument("--output", required=True, metavar="EVAL.json", help="EvalResult JSON")
    p.add_argument("--model", default=None, help="HF model name or folder (default: cfg)")
    p.add_argument("--layer", type=int, default=None, metavar="L", help="hooked block")
    p.add_argument("--hook", choices=HOOK_KINDS, default=None, help="hook kind at --layer")
    p.add_argument("--hook-name", default=None, metavar="NAME", help="blocks.<L>.hook_<kind>")
    p.add_argument("--architecture", default=None, help="standard, jumprelu, topk or gated")
    p.add_argument("--k", type=int, default=None, help="TopK k")
    p.add_argument("--norm-scaling-factor", type=float, default=None, metavar="S")
    add_runtime_args(p)
    p.add_argument("--context-size", type=positive_int, default=None, metavar="C")
    bos = p.add_mutually_exclusive_group()
    bos.add_argument("--prepend-bos", dest="prepend_bos", action="store_true", default=None)
    bos.add_argument("--no-prepend-bos", dest="prepend_bos", action="store_false")
    p.add_argument("--packing", choices=PACKINGS, default="none")
    p.add_argument("--mean-ablation", action="store_true", help="also the mean-ablated CE")
    p.add_argument("--dense-threshold", type=float, default=0.1, metavar="F")
    p.add_argument("--splice-special", action="store_true", help="splice at BOS/special too")
    p.add_argument("--max-tokens", type=positive_int, default=None, metavar="N")
    p.add_argument("--frequencies", default=None, metavar="FREQ.npy", help="feature frequencies")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_evaluate)


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "n/a" if v is None else format(v, spec)


def summary_line(result: Any, d_sae: int) -> str:
    """``<hook> of <model>, N tokens: CE recovered …, KL … (score …), EV …, L0 …, dead …``."""
    r = result
    return (
        f"{r.hook_name} of {r.model_name}, {r.n_tokens} tokens: "
        f"CE recovered {_fmt(r.ce_loss_score)}, KL {_fmt(r.kl_div_with_sae)} "
        f"(score {_fmt(r.kl_div_score)}), EV {_fmt(r.explained_variance)}, "
        f"L0 {_fmt(r.l0, '.1f')}, dead {r.n_dead}/{d_sae}"
    )


def _prepare(args: argparse.Namespace) -> tuple[Any, Any]:
    """Everything before the first forward; ``CommandError`` / ``ValueError`` /
    ``OSError`` / ``ImportError`` mean exit 2."""
    from polygram.evals import EvalOptions, open_session
    from polygram.sae import load_sae

    prompts = prompts_file("--prompts", args.prompts)
    sae = load_sae(
        args.sae,
        architecture=args.architecture,
        k=args.k,
        norm_scaling_factor=args.norm_scaling_factor,
        layer=args.layer,
        hook=args.hook,
        hook_name=args.hook_name,
    )
    options = EvalOptions(
        batch_size=args.batch_size,
        context_size=args.context_size,
        **({} if args.prepend_bos is None else {"prepend_bos": args.prepend_bos}),
        packing=args.packing,
        device=args.device,
        dtype=args.dtype,
        mean_ablation=args.mean_ablation,
        dense_threshold=args.dense_threshold,
        splice_special=args.splice_special,
        max_tokens=args.max_tokens,
    )
    session, saes = open_session(
        [sae], prompts, model=args.model, options=options, progress=False if args.quiet else None
    )
    return session, saes[0]


def _run(args: argparse.Namespace) -> int:
    try:
        session, sae = _prepare(args)
    except (CommandError, ValueError, OSError, ImportError) as e:
        _say(error_text(e))
        return _EXIT_USAGE
    try:
        result = session.run([sae])[0]
        result.to_json(args.output)
        if args.frequencies:
            result.save_frequencies(args.frequencies)
    except Exception as e:  # any failure of the run itself: one line, exit 1
        _say(f"failed: {error_text(e)}")
        return _EXIT_FAILED
    _say(summary_line(result, sae.d_sae))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    seen: set[str] = set()

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        text = str(message)
        if text not in seen:
            seen.add(text)
            _say(f"warning: {text}")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        return _run(args)
