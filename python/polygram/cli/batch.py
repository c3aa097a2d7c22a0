"""``polygram batch`` (spec 06 §6.3): one cancellation per top feature-graph edge.

``add_parsers(subparsers)`` registers the subcommand.  Failures print one
``polygram: <message>`` line on stderr and return 1; argparse problems
(missing flag, ``--top-k`` outside [1, 16], bad ``--knobs``) stay argparse's
(exit 2).  Progress lines go to stdout, flat-search warnings to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from polygram.errors import PolygramError

__all__ = ["add_parsers", "cmd_batch", "load_dictionary"]

TOP_K_RANGE = (1, 16)


class _BatchError(Exception):
    """A user-facing failure found before the batch runs (exit 1)."""


def _top_k(text: str) -> int:
    lo, hi = TOP_K_RANGE
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [{lo}, {hi}], got {text!r}"
        ) from None
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {v}")
    return v


def load_dictionary(spec: str) -> Any:
    """``module:callable`` → the Dictionary the callable returns (no arguments)."""
    from polygram.dictionary import Dictionary

    if spec.lower().endswith(".q.orca.md"):
        raise _BatchError(
            f"--dictionary {spec!r}: a .q.orca.md machine does not record the clusters a "
            "batch needs; give module:callable returning a polygram.Dictionary"
        )
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise _BatchError(
            f"--dictionary {spec!r}: expected module:callable returning a polygram.Dictionary"
        )
    # The console script does not put the working directory on sys.path (python -m does);
    # appended, not prepended, so a local file never shadows an installed module.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(mod_name)
    except Exception as e:
        raise _BatchError(
            f"--dictionary {spec!r}: cannot import {mod_name!r}: {type(e).__name__}: {e}"
        ) from e
    fn = getattr(module, attr, None)
    if fn is None:
        raise _BatchError(f"--dictionary {spec!r}: {mod_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise _BatchError(f"--dictionary {spec!r}: {attr!r} is not callable")
    try:
        d = fn()
    except Exception as e:
        raise _BatchError(f"--dictionary {spec!r} failed: {type(e).__name__}: {e}") from e
    if not isinstance(d, Dictionary):
        raise _BatchError(
            f"--dictionary {spec!r}: returned {type(d).__name__}; expected a polygram.Dictionary"
        )
    return d


def _load_graph(path: str) -> Any:
    from polygram.analysis import FeatureGraph

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise _BatchError(f"--feature-graph {path!r}: cannot be read ({reason})") from None
    try:
        return FeatureGraph.from_json(text)
    except ValueError as e:
        raise _BatchError(f"--feature-graph {path!r}: {e}") from None


def cmd_batch(args: argparse.Namespace) -> int:
    """Run the batch and write ``<out>/batch_results.json``."""
    from polygram.batch import BatchExperiment, BatchRun

    try:
        graph = _load_graph(args.feature_graph)
        dictionary = load_dictionary(args.dictionary)
    except _BatchError as e:
        print(f"polygram: {e}", file=sys.stderr)
        return 1

    def progress(i: int, k: int, run: BatchRun) -> None:
        if run.warning:
            print(f"polygram batch: warning: {run.warning}", file=sys.stderr)
        print(
            f"polygram batch: {i}/{k}: {run.source} x {run.target} — done in {run.seconds:.2f}s",
            flush=True,
        )

    fresh = args.output_dir is None
    try:
        out = (
            Path(tempfile.mkdtemp(prefix="polygram-batch-"))
            if fresh
            else Path(args.output_dir).resolve()
        )
        try:
            batch = BatchExperiment(
                dictionary, graph, top_k=args.top_k, knobs=args.knobs, output_dir=out
            )
        except BaseException:
            if fresh:  # every edge is checked before anything is written: leave no empty dir
                out.rmdir()
            raise
        if not batch.edges:
            print(f"polygram batch: the {graph.kind} graph has no edges; nothing to run")
        written = batch.run(progress).to_json(out / "batch_results.json")
    except (PolygramError, ValueError, OSError) as e:
        print(f"polygram: batch failed: {e}", file=sys.stderr)
        return 1
    print(f"polygram: wrote batch results → {written}")
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``batch`` on an argparse subparsers object."""
    from polygram.batch import KNOB_MODES

    p: argparse.ArgumentParser = subparsers.add_parser(
        "batch",
        help="cancel the overlap of the top edges of a feature graph, one run per edge",
        description=(
            "For each of the first --top-k edges of a sharing/separation graph (from "
            "`polygram analyze`), run a 50-step phase-grid cancellation on the dictionary "
            "and materialise the optimum into <output-dir>/<source>_x_<target>/; "
            "summary in <output-dir>/batch_results.json."
        ),
    )
    p.set_defaults(func=cmd_batch, handler=cmd_batch)
    p.add_argument("--feature-graph", required=True, metavar="JSON", help="FeatureGraph JSON")
    p.add_argument(
        "--dictionary",
        required=True,
        metavar="MOD:CALLABLE",
        help="module:callable returning the polygram.Dictionary the graph was built from",
    )
    p.add_argument(
        "--top-k",
        type=_top_k,
        default=8,
        metavar="K",
        help="edges to run, in graph order (1-16, default 8)",
    )
    p.add_argument(
        "--knobs",
        choices=KNOB_MODES,
        default="cluster_shared",
        help="one shared knob per touched cluster (default) or one per endpoint",
    )
    p.add_argument(
        "--output-dir", metavar="DIR", default=None, help="default: a fresh temporary directory"
    )
