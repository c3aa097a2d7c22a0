"""``polygram compress`` (spec 11 §8): a validation report + an SAE checkpoint
→ a compressed checkpoint and a CompressionReport JSON.

Every failure (a missing file, output = source, a bad ``--representatives``,
an unreadable report, a refused option, an error while compressing) prints
one ``polygram compress: <message>`` line on stderr and exits 2, like
argparse's own usage errors.  Beyond 0.0.1 the command also exposes
``--strategy merge``, ``--rep-selection`` and ``--merge-mode``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from polygram.cli.io import (
    CommandError,
    error_text,
    existing_file,
    report_errors,
    source_checkpoint,
)

__all__ = ["add_parsers", "cmd_compress", "parse_representatives"]


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


def add_parsers(sub: Any) -> None:
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
        required=True,
        metavar="PATH",
        help="compressed .safetensors to write (must differ from the source)",
    )
    p.add_argument(
        "--output", required=True, metavar="PATH", help="CompressionReport JSON to write"
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
        choices=("n_fires", "scale_aware"),
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
        help="override the representative of the named clusters",
    )
    p.set_defaults(handler=cmd_compress)


def cmd_compress(args: argparse.Namespace) -> int:
    return report_errors("compress", _run, args)


def _run(args: argparse.Namespace) -> int:
    from polygram.behavioural import ValidationReport
    from polygram.compression import Compressor
    from polygram.errors import MissingDependencyError

    report_path = existing_file("--validation-report", args.validation_report)
    sae = source_checkpoint(args)
    reps = None if args.representatives is None else parse_representatives(args.representatives)
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
        )
        result = compressor.run(args.output_checkpoint)
        result.report.to_json(args.output)
    except MissingDependencyError as e:  # e.g. no safetensors: the message names the extra
        raise _CompressError(str(e)) from None
    except (ValueError, KeyError, IndexError, OSError) as e:
        raise _CompressError(error_text(e)) from None
    r = result.report
    print(
        f"polygram compress: {r.strategy}: {r.n_clusters} clusters, "
        f"{r.n_features_zeroed} features zeroed, {r.n_features_kept} kept; "
        f"source sha256 {r.source_checkpoint_sha256[:12]} → output sha256 "
        f"{r.output_checkpoint_sha256[:12]} ({r.output_checkpoint}); report {args.output}",
        file=sys.stderr,
    )
    return 0
