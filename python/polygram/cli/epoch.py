"""``polygram compress-epoch`` (spec 13 §6): a whole SAE through the
validate→compress loop of ``EpochCompressor`` → a new checkpoint and an
EpochReport JSON.

Defaults are polygram 0.0.1's CLI defaults (coverage 0.95, 3 visits, 5
iterations).  The residuals come from ``--prompts`` run through ``--model``
at ``--layer``, or from ``--cached-residuals`` (a 2-D float ``.npy``; no
model needed).  Every failure prints one ``polygram compress-epoch: <message>``
line on stderr and exits 2, like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from polygram.cli.io import (
    CommandError,
    error_text,
    prompts_file,
    report_errors,
    residuals_npy,
    source_checkpoint,
)

__all__ = ["add_parsers", "cmd_compress_epoch"]

_NAME = "compress-epoch"


class _EpochCliError(CommandError):
    """Anything the command reports as ``polygram compress-epoch: …`` (exit 2)."""


def _float(text: str) -> float:
    # argparse's float() accepts "inf", which turns the quality guard off
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_parsers(sub: Any) -> None:
    from polygram.cli.eval_args import add_eval_args
    from polygram.cli.runtime_args import add_device_arg
    from polygram.compression.quality import QUALITY_METRICS

    p = sub.add_parser(
        _NAME,
        help="compress a whole SAE: greedy 8-feature panels, inline gate, zero, iterate",
        description=(
            "Cover the SAE's decoder-cosine pair graph with overlapping 8-feature panels, gate "
            "every panel pair (polygram overlap, Jaccard, both-fire count) on cached residuals, "
            "zero the redundant members of each confirmed cluster and repeat until nothing "
            "new is confirmed, --max-iterations is hit or the quality bound is breached (CE "
            "loss recovered against the source on held-out prompts, by default)."
        ),
    )
    p.add_argument("--sae-checkpoint", required=True, metavar="PATH", help="source .safetensors")
    acts = p.add_mutually_exclusive_group(required=True)
    acts.add_argument("--prompts", metavar="PATH", help="one prompt per line (# comments)")
    acts.add_argument(
        "--cached-residuals",
        metavar="PATH.npy",
        help="(tokens, d_model) float array used instead of a model pass",
    )
    p.add_argument(
        "--output-checkpoint", required=True, metavar="PATH", help="compressed .safetensors"
    )
    p.add_argument("--output", required=True, metavar="PATH", help="EpochReport JSON to write")
    p.add_argument("--layer", type=int, default=10, help="block whose input the SAE reads")
    p.add_argument("--model", default="gpt2", help="model name or local directory")
    p.add_argument("--strategy", choices=("zero",), default="zero")
    add_device_arg(p)
    p.add_argument("--coverage-target", type=_float, default=0.95, metavar="F")
    p.add_argument("--cosine-threshold", type=_float, default=0.30, metavar="F")
    p.add_argument("--n-visits-per-feature", type=int, default=3, metavar="INT")
    p.add_argument("--n-panels-max", type=int, default=1000, metavar="INT")
    p.add_argument("--min-firing-rate", type=_float, default=0.01, metavar="F")
    p.add_argument("--max-iterations", type=int, default=5, metavar="INT")
    p.add_argument(
        "--quality-delta-multiplier",
        type=_float,
        default=2.0,
        metavar="F",
        help="upstream_proxy only: stop when an iteration's delta exceeds F × the first "
        "one's (inf: never)",
    )
    p.add_argument(
        "--quality-metric",
        choices=QUALITY_METRICS,
        default=None,
        help="the bound (default: ce_loss_score with --prompts, kl_div_with_sae for a masked "
        "LM, upstream_proxy with --cached-residuals only)",
    )
    p.add_argument(
        "--quality-tolerance",
        type=_float,
        default=None,
        metavar="F",
        help="how far the metric may move from the source's (default 0.01 CE score, 0.05 nats KL)",
    )
    p.add_argument("--polygram-threshold", type=_float, default=0.7, metavar="F")
    p.add_argument("--jaccard-threshold", type=_float, default=0.30, metavar="F")
    p.add_argument("--min-both-fire", type=int, default=5, metavar="INT")
    p.add_argument(
        "--save-intermediate-reports",
        action="store_true",
        help="write each panel's ValidationReport under <output dir>/epoch_intermediate/",
    )
    p.add_argument("--allow-layer-zero", action="store_true")
    add_eval_args(p)
    p.set_defaults(handler=cmd_compress_epoch)


def cmd_compress_epoch(args: argparse.Namespace) -> int:
    return report_errors(_NAME, _run, args)


def _run(args: argparse.Namespace) -> int:
    from polygram.cli.eval_args import eval_options
    from polygram.compression.epoch import EpochCompressor
    from polygram.errors import MissingDependencyError

    sae = source_checkpoint(args)
    for flag, value in (("--output-checkpoint", args.output_checkpoint), ("--output", args.output)):
        if Path(value).is_dir():
            raise _EpochCliError(f"{flag} {value!r} is a directory; expected a file path")
    # the report must not land on an input or on the checkpoint just written
    report_path = Path(args.output).resolve()
    for flag, value in (
        ("--sae-checkpoint", args.sae_checkpoint),
        ("--output-checkpoint", args.output_checkpoint),
        ("--prompts", args.prompts),
        ("--cached-residuals", args.cached_residuals),
    ):
        if value is not None and Path(value).resolve() == report_path:
            raise _EpochCliError(f"--output {args.output!r} must differ from {flag}")
    acts: dict[str, Any] = {"prompts": []}
    if args.cached_residuals is not None:
        acts["cached_residuals"] = residuals_npy("--cached-residuals", args.cached_residuals)
    else:
        acts["prompts"] = prompts_file("--prompts", args.prompts)
    if args.eval_prompts is not None:
        acts["eval_prompts"] = prompts_file("--eval-prompts", args.eval_prompts)
    try:
        epoch = EpochCompressor(
            sae,
            layer=args.layer,
            model_name=args.model,
            strategy=args.strategy,
            device=None if args.device == "auto" else args.device,
            coverage_target=args.coverage_target,
            cosine_threshold=args.cosine_threshold,
            n_visits_per_feature=args.n_visits_per_feature,
            n_panels_max=args.n_panels_max,
            min_firing_rate=args.min_firing_rate,
            max_iterations=args.max_iterations,
            quality_delta_multiplier=args.quality_delta_multiplier,
            polygram_overlap_threshold=args.polygram_threshold,
            jaccard_threshold=args.jaccard_threshold,
            min_both_fire=args.min_both_fire,
            save_intermediate_reports=args.save_intermediate_reports,
            allow_layer_zero=args.allow_layer_zero,
            quality_metric=args.quality_metric,
            quality_tolerance=args.quality_tolerance,
            eval_options=eval_options(args),
            **acts,
        )
        result = epoch.run(args.output_checkpoint)
        result.report.to_json(args.output)
    except MissingDependencyError as e:
        raise _EpochCliError(str(e)) from None
    except (ValueError, KeyError, IndexError, RuntimeError, OSError) as e:
        raise _EpochCliError(error_text(e)) from None
    r = result.report
    print(
        f"polygram {_NAME}: {r.convergence_reason} after {len(r.iterations)} iteration(s): "
        f"{r.n_features_zeroed_total} features zeroed, {r.n_panels_total} panels, coverage "
        f"{r.coverage_achieved:g} ({_quality(r, args.quality_delta_multiplier)}); source sha256 "
        f"{r.source_checkpoint_sha256[:12]} → output sha256 {r.output_checkpoint_sha256[:12]} "
        f"({r.output_checkpoint}); report {args.output}",
        file=sys.stderr,
    )
    return 0


def _quality(r: Any, multiplier: float) -> str:
    """``quality ce_loss_score 0.8412 → 0.8390 (tolerance 0.01)``, or the proxy's guard."""
    metric = r.quality_metric
    if metric in (None, "upstream_proxy"):
        return f"quality upstream_proxy, guard {'off' if math.isinf(multiplier) else 'on'}"

    def value(block: Any) -> str:
        v = None if block is None else block.get(metric)
        return "n/a" if v is None else f"{v:.4f}"

    return (
        f"quality {metric} {value(r.eval_before)} → {value(r.eval_after)} "
        f"(tolerance {r.quality_tolerance:g})"
    )
