"""``polygram regrow`` (spec 12 §6): a (compressed) SAE checkpoint whose
zeroed slots are refilled from the residual stream → a new checkpoint and a
RegrowReport JSON.

The zeroed slots come from ``--zeroed-list`` or a ``--compression-report``
(provenance recorded); the activations from ``--cached-residuals`` (a 2-D
float ``.npy``) or ``--prompts`` run through ``--model`` at ``--layer``.
Every failure prints one ``polygram regrow: <message>`` line on stderr and
exits 2, like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from polygram.cli.io import (
    CommandError,
    error_text,
    existing_file,
    prompts_file,
    report_errors,
    residuals_npy,
    source_checkpoint,
)

__all__ = ["add_parsers", "cmd_regrow"]


class _RegrowError(CommandError):
    """Anything the command reports as ``polygram regrow: …`` (exit 2)."""


def _zeroed_list(text: str) -> list[int]:
    """``--zeroed-list``: comma-separated ints (an empty list regrows nothing)."""
    from polygram.cli.sae import _UsageError, parse_id_list

    if not text.replace(",", "").strip():
        return []
    try:
        return parse_id_list(text, flag="--zeroed-list")
    except _UsageError as e:
        raise _RegrowError(str(e)) from None


def add_parsers(sub: Any) -> None:
    from polygram.cli.eval_args import add_eval_args
    from polygram.cli.runtime_args import add_device_arg
    from polygram.compression.regrow import RegrowStrategy

    p = sub.add_parser(
        "regrow",
        help="refill zeroed SAE slots with residual-stream k-means directions",
        description=(
            "Cluster what the SAE fails to reconstruct (residual = X − SAE(X)) into one "
            "k-means cluster per zeroed slot and write each unit centroid into a slot "
            "(tied encoder column, zero encoder bias); every other tensor is kept."
        ),
    )
    p.add_argument("--sae-checkpoint", required=True, metavar="PATH", help="source .safetensors")
    p.add_argument(
        "--output-checkpoint", required=True, metavar="PATH", help="regrown .safetensors to write"
    )
    p.add_argument("--output", required=True, metavar="PATH", help="RegrowReport JSON to write")
    p.add_argument("--strategy", required=True, choices=[s.value for s in RegrowStrategy])
    slots = p.add_mutually_exclusive_group(required=True)
    slots.add_argument("--zeroed-list", metavar="IDS", help="comma-separated slot ids")
    slots.add_argument(
        "--compression-report", metavar="PATH", help="CompressionReport JSON: its zeroed slots"
    )
    acts = p.add_mutually_exclusive_group(required=True)
    acts.add_argument(
        "--cached-residuals", metavar="PATH.npy", help="(tokens, d_model) float array"
    )
    acts.add_argument("--prompts", metavar="PATH", help="one prompt per line (# comments)")
    p.add_argument("--layer", type=int, default=10, help="block whose input is captured")
    p.add_argument("--model", default="gpt2", help="model name or local directory")
    add_device_arg(p)
    p.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    p.add_argument("--n-init", type=int, default=4, help="k-means restarts (default 4)")
    add_eval_args(p)
    p.set_defaults(handler=cmd_regrow)


def cmd_regrow(args: argparse.Namespace) -> int:
    return report_errors("regrow", _run, args)


def _run(args: argparse.Namespace) -> int:
    from polygram.cli.eval_args import change_line, eval_request
    from polygram.compression import CompressionReport
    from polygram.compression.regrow import Regrower
    from polygram.errors import MissingDependencyError

    sae = source_checkpoint(args)
    acts: dict[str, Any] = {"evaluation": eval_request(args)}
    if args.cached_residuals is not None:
        acts["cached_residuals"] = residuals_npy("--cached-residuals", args.cached_residuals)
    else:
        acts.update(
            prompts=prompts_file("--prompts", args.prompts),
            model_name=args.model,
            layer=args.layer,
            device=None if args.device == "auto" else args.device,
        )
    try:
        if args.compression_report is not None:
            path = existing_file("--compression-report", args.compression_report)
            try:
                report = CompressionReport.from_json(path)
            except (ValueError, KeyError, TypeError) as e:
                raise _RegrowError(f"--compression-report {str(path)!r}: {e}") from None
            regrower = Regrower.from_compression_report(
                report, sae, strategy=args.strategy, seed=args.seed, n_init=args.n_init, **acts
            )
        else:
            regrower = Regrower(
                sae,
                args.strategy,
                _zeroed_list(args.zeroed_list),
                seed=args.seed,
                n_init=args.n_init,
                **acts,
            )
        result = regrower.run(args.output_checkpoint)
        result.report.to_json(args.output)
    except MissingDependencyError as e:  # 0.0.1: a traceback
        raise _RegrowError(str(e)) from None
    except (ValueError, KeyError, IndexError, RuntimeError, NotImplementedError, OSError) as e:
        raise _RegrowError(error_text(e)) from None
    r = result.report
    print(
        f"polygram regrow: {r.strategy}: {r.n_slots_repopulated} slots repopulated, "
        f"{r.n_slots_left_zero} left zero; source sha256 {r.source_checkpoint_sha256[:12]} → "
        f"output sha256 {r.output_checkpoint_sha256[:12]} ({r.output_checkpoint}); "
        f"report {args.output}",
        file=sys.stderr,
    )
    if r.eval_change is not None:
        print(f"polygram regrow: {change_line(r.eval_before, r.eval_after)}", file=sys.stderr)
    return 0
