"""``polygram compress`` (spec 11 §8): a validation report + an SAE checkpoint
→ a compressed checkpoint and a CompressionReport JSON.

Three modes: threshold (the report's confirmed pairs, 0.0.1's), target-K
(``--target-features N``) and the Pareto curve (``--pareto K1,K2,…``, into a
directory, optionally with every point materialised).  Every failure (a
missing file, output = source, a bad ``--representatives``, a flag that would
do nothing in the chosen mode, an unreadable report, a refused option, an
error while compressing) prints one ``polygram compress: <message>`` line on
stderr and exits 2, like argparse's own usage errors.  Beyond 0.0.1 the
command also exposes ``--strategy merge``, ``--rep-selection`` and
``--merge-mode``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from polygram.cli.io import (
    CommandError,
    error_text,
    existing_file,
    report_errors,
    source_checkpoint,
)
from polygram.compression.choices import REP_SELECTIONS, SCORE_FIELDS

__all__ = ["add_parsers", "cmd_compress", "parse_representatives", "parse_targets"]


class _CompressError(CommandError):
    """Anything the command reports as ``polygram compress: …`` (exit 2)."""


def parse_representatives(text: str) -> dict[int, int]:
    """``"0=12,3=40"`` → ``{0: 12, 3: 40}`` (cluster id → representative fid)."""
    out: dict[int, int] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        cid_text, sep, fid_text = item.partition("=")
        if not sep:
            raise _CompressError(
                f"--representatives: entry {item!r} is not of the form cluster_id=feature_id"
            )
        try:
            cid, fid = int(cid_text.strip()), int(fid_text.strip())
        except ValueError:
            raise _CompressError(
                f"--representatives: entry {item!r} needs two integers (cluster_id=feature_id)"
            ) from None
        if cid in out:
            raise _CompressError(f"--representatives: cluster_id {cid} is given twice")
        out[cid] = fid
    if not out:
        raise _CompressError(f"--representatives: {text!r} holds no cluster_id=feature_id entry")
    return out


def parse_targets(text: str) -> list[int]:
    """``--pareto 256,128,64`` → ``[256, 128, 64]`` (ints ≥ 1)."""
    out = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            k = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers >= 1, got {item!r} in {text!r}"
            ) from None
        if k < 1:
            raise argparse.ArgumentTypeError(f"targets must be integers >= 1, got {k}")
        out.append(k)
    if not out:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return out


def _target(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {k}")
    return k


def add_parsers(sub: Any) -> None:
    from polygram.cli.eval_args import add_eval_args

    p = sub.add_parser(
        "compress",
        help="silence redundant SAE features confirmed by a validation report",
        description=(
            "Cluster the report's confirmed pairs (union-find), keep one representative per "
            "cluster and write a new checkpoint in which the others are silenced."
        ),
    )
    p.add_argument(
        "--validation-report",
        required=True,
        metavar="PATH",
        help="ValidationReport JSON (polygram validate --output)",
    )
    p.add_argument(
        "--sae-checkpoint",
        required=True,
        metavar="PATH",
        help="source .safetensors SAE (never modified)",
    )
    p.add_argument(
        "--output-checkpoint",
        default=None,
        metavar="PATH",
        help="compressed .safetensors to write (must differ from the source; threshold and "
        "--target-features modes)",
    )
    p.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="CompressionReport JSON to write (with --pareto: a directory)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--target-features",
        type=_target,
        default=None,
        metavar="N",
        help="compress to N clusters: rank every report pair by --score-field and join them "
        "greedily",
    )
    mode.add_argument(
        "--pareto",
        type=parse_targets,
        default=None,
        metavar="K1,K2,...",
        help="the compression-vs-K curve: one plan per K into <output>/pareto.json",
    )
    p.add_argument(
        "--pareto-materialize",
        action="store_true",
        help="with --pareto: also write each K's SAE and CompressionReport under <output>/pareto/",
    )
    p.add_argument(
        "--score-field",
        choices=SCORE_FIELDS,
        default=None,
        help="pair ranking of --target-features / --pareto (default polygram_overlap)",
    )
    p.add_argument(
        "--strategy",
        choices=("zero", "merge"),
        default="zero",
        help="zero: silence non-representatives; merge: also rescale the "
        "representative's decoder row to the cluster's merged norm (default zero)",
    )
    p.add_argument(
        "--rep-selection",
        choices=REP_SELECTIONS,
        default="n_fires",
        help="representative rule (default n_fires)",
    )
    p.add_argument(
        "--merge-mode",
        choices=("freq_weighted", "simple_mean"),
        default="freq_weighted",
        help="merged norm for --strategy merge",
    )
    p.add_argument(
        "--representatives",
        default=None,
        metavar="CID=FID,...",
        help="override the representative of the named clusters (threshold mode only)",
    )
    add_eval_args(p)
    p.set_defaults(handler=cmd_compress)


def cmd_compress(args: argparse.Namespace) -> int:
    return report_errors("compress", _run, args)


def _check_mode(args: argparse.Namespace) -> None:
    """Refuse flags that would do nothing in the chosen mode (exit 2)."""
    target_mode = args.target_features is not None
    pareto_mode = args.pareto is not None
    if args.pareto_materialize and not pareto_mode:
        raise _CompressError("--pareto-materialize needs --pareto")
    if args.score_field is not None and not (target_mode or pareto_mode):
        raise _CompressError(
            "--score-field ranks pairs for --target-features / --pareto only; threshold mode "
            "uses the report's confirmed pairs"
        )
    if args.representatives is not None and (target_mode or pareto_mode):
        raise _CompressError(
            "--representatives applies to threshold mode only: target-K and Pareto cluster ids "
            "are not the threshold plan's"
        )
    if pareto_mode:
        if args.output_checkpoint is not None:
            raise _CompressError(
                "--output-checkpoint does nothing with --pareto (use --pareto-materialize to "
                "write each K's SAE under <output>/pareto/)"
            )
        if Path(args.output).exists() and not Path(args.output).is_dir():
            raise _CompressError(
                f"--output {args.output!r} is an existing file; with --pareto it is a directory"
            )
    elif args.output_checkpoint is None:
        raise _CompressError("--output-checkpoint is required (threshold and --target-features)")


def _run(args: argparse.Namespace) -> int:
    from polygram.behavioural import ValidationReport
    from polygram.cli.eval_args import change_line, eval_request
    from polygram.compression import Compressor
    from polygram.errors import MissingDependencyError

    _check_mode(args)
    report_path = existing_file("--validation-report", args.validation_report)
    sae = source_checkpoint(args)
    reps = None if args.representatives is None else parse_representatives(args.representatives)
    evaluation = eval_request(args)
    try:
        report = ValidationReport.from_json(report_path)
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise _CompressError(f"--validation-report {str(report_path)!r}: {e}") from None
    try:
        compressor = Compressor(
            report,
            sae,
            strategy=args.strategy,
            rep_selection=args.rep_selection,
            merge_mode=args.merge_mode,
            representatives=reps,
            target_n_features_kept=args.target_features,
            score_field=args.score_field,
            evaluation=evaluation,
        )
        if args.pareto is not None:
            return _pareto(args, compressor)
        result = compressor.run(args.output_checkpoint)
        result.report.to_json(args.output)
        reached = ""
        if args.target_features is not None:
            met = compressor.plan_pareto([args.target_features]).outcomes[0].reached_target
            reached = f"; target_k={args.target_features} reached={'yes' if met else 'no'}"
    except MissingDependencyError as e:  # e.g. no safetensors: the message names the extra
        raise _CompressError(str(e)) from None
    except (ValueError, KeyError, IndexError, OSError) as e:
        raise _CompressError(error_text(e)) from None
    r = result.report
    print(
        f"polygram compress: {r.strategy}: {r.n_clusters} clusters, "
        f"{r.n_features_zeroed} features zeroed, {r.n_features_kept} kept; "
        f"source sha256 {r.source_checkpoint_sha256[:12]} → output sha256 "
        f"{r.output_checkpoint_sha256[:12]} ({r.output_checkpoint}); report {args.output}"
        f"{reached}",
        file=sys.stderr,
    )
    if r.eval_change is not None:
        print(f"polygram compress: {change_line(r.eval_before, r.eval_after)}", file=sys.stderr)
    return 0


def _pareto(args: argparse.Namespace, compressor: Any) -> int:
    """``--pareto``: the curve into ``<output>/pareto.json`` (and, with
    ``--pareto-materialize``, each K's SAE and report under ``<output>/pareto/``)."""
    out = Path(args.output)
    curve = compressor.plan_pareto(args.pareto)
    folder = compressor.sae.source.kind == "folder"
    if args.pareto_materialize:
        for o in curve.outcomes:  # descending K
            stem = out / "pareto" / f"k_{o.target_k}"
            target = stem if folder else stem.with_suffix(".safetensors")
            result = compressor.apply(o.plan, target)
            result.report.to_json(stem.with_suffix(".json"))
    written = out / "pareto.json"
    curve.to_json(written)
    for o in curve.outcomes:
        print(
            f"K={o.target_k} kept={o.plan.n_features_kept} zeroed={o.plan.n_features_zeroed} "
            f"reached={'yes' if o.reached_target else 'no'}",
            file=sys.stderr,
        )
    print(f"polygram compress: wrote {written}", file=sys.stderr)
    return 0
