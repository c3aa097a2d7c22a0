"""``polygram analyze`` and ``polygram sae-import`` (spec 06 §6.2, §6.4).

``add_parsers(subparsers)`` registers both on the main parser; each handler
takes the parsed namespace and returns the exit code.  Failures print one
``polygram: <message>`` line on stderr and return 1; argparse problems
(missing flag, bad ``--n-clusters``) stay argparse's (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polygram._io import atomic_write_text
from polygram.cli.io import positive_int, profile_name
from polygram.errors import PolygramError

__all__ = [
    "add_parsers",
    "cmd_analyze",
    "cmd_sae_import",
    "parse_id_list",
    "parse_names",
]


class _UsageError(Exception):
    """A bad flag value found after argparse (exit 1, not 2)."""


def parse_id_list(text: str, flag: str = "--features") -> list[int]:
    """``"0, 2,,5"`` → ``[0, 2, 5]``: blank items skipped, anything else must be an int."""
    ids = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            ids.append(int(item))
        except ValueError:
            raise _UsageError(
                f"{flag} expects comma-separated ints; {item!r} in {text!r} is not one"
            ) from None
    if not ids:
        raise _UsageError(f"{flag} expects comma-separated ints; {text!r} holds none")
    return ids


def parse_names(text: str) -> dict[int, str] | None:
    """``--names``: a JSON object (inline, or a path to a file holding it).

    String values → ``{id: name}`` (keys must be ints); integer values →
    ``{name: id}``, inverted.  ``{}`` → no names.
    """
    p = Path(text)
    source = f"--names file {text!r}" if p.is_file() else "--names"
    try:
        raw = p.read_text(encoding="utf-8") if p.is_file() else text
        obj = json.loads(raw)
    except (OSError, UnicodeDecodeError) as e:
        raise _UsageError(f"{source}: cannot be read ({e})") from None
    except json.JSONDecodeError as e:
        raise _UsageError(f"{source}: not valid JSON and not an existing file ({e})") from None
    if not isinstance(obj, dict):
        raise _UsageError(
            f"{source}: got a JSON {type(obj).__name__}; expected an object "
            '{"<id>": "<name>"} or {"<name>": <id>}'
        )
    if not obj:
        return None
    values = list(obj.values())
    if all(isinstance(v, str) for v in values):
        out: dict[int, str] = {}
        for k, v in obj.items():
            try:
                out[int(k)] = v
            except ValueError:
                raise _UsageError(
                    f"{source}: key {k!r} is not an integer id (string values map id → name)"
                ) from None
        return out
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        inverted: dict[int, str] = {}
        for k, v in obj.items():
            if v in inverted:
                raise _UsageError(f"{source}: id {v} is given two names, {inverted[v]!r} and {k!r}")
            inverted[v] = k
        return inverted
    raise _UsageError(
        f"{source}: values must be all strings ({{id: name}}) or all integers ({{name: id}}); "
        f"got {sorted({type(v).__name__ for v in values})}"
    )


def _fail(what: str, err: BaseException) -> int:
    print(f"polygram: {what}: {err}" if what else f"polygram: {err}", file=sys.stderr)
    return 1


def _load_for_analyze(source: str, ids: list[int]) -> Any:
    from polygram.sae import load_sae_safetensors, load_toy_sae

    p = Path(source)
    if p.is_dir() or p.suffix == ".safetensors":
        # sliced path: only the selected decoder rows are read
        return load_sae_safetensors(p, feature_ids=ids)
    return load_toy_sae(p)


def cmd_analyze(args: argparse.Namespace) -> int:
    """Triage the selected features and write the markdown report (+ graphs)."""
    from polygram.analysis import (
        build_separation_graph,
        build_sharing_graph,
        predict_cancellation_depth,
        render_report,
    )

    try:
        ids = parse_id_list(args.features)
    except _UsageError as e:
        return _fail("", e)
    try:
        records = _load_for_analyze(args.sae_json, ids)
        pred = predict_cancellation_depth(
            records,
            ids,
            assign_gamma=args.assign_gamma,
            n_clusters=args.n_clusters,
            assign_phase_knobs=args.assign_phase_knobs,
            profile=args.profile,
        )
        report = render_report(pred, sae_source=args.sae_json, feature_ids=ids)
        graphs = []
        if args.sharing_graph:
            g = build_sharing_graph(pred, threshold=args.sharing_threshold)
            graphs.append(("sharing", args.sharing_graph, g, args.sharing_threshold))
        if args.separation_graph:
            g = build_separation_graph(pred, threshold=args.separation_threshold)
            graphs.append(("separation", args.separation_graph, g, args.separation_threshold))
        out = atomic_write_text(args.output, report).resolve()
    except (PolygramError, ValueError, OSError, ImportError) as e:
        return _fail("analyze failed", e)
    print(
        f"polygram: analyzed {len(pred.dictionary.features)} features → {out} "
        f"(score={pred.encoding_suitability_score:.4f})"
    )
    for kind, path, graph, threshold in graphs:
        try:
            written = atomic_write_text(path, graph.to_json()).resolve()
        except (PolygramError, OSError) as e:
            return _fail("analyze failed", e)
        print(f"polygram: wrote {kind} graph → {written} (threshold={threshold})")
    return 0


def cmd_sae_import(args: argparse.Namespace) -> int:
    """Decoder rows of a checkpoint → toy-schema JSON (stdout or ``--output``)."""
    from polygram.sae import dumps_toy_sae, load_sae_safetensors

    try:
        ids = parse_id_list(args.features) if args.features is not None else None
        names = parse_names(args.names) if args.names is not None else None
    except _UsageError as e:
        return _fail("", e)
    src = Path(args.path)
    try:
        records = load_sae_safetensors(src, names=names, feature_ids=ids)
        text = dumps_toy_sae(
            records.values(),
            description=f"Polygram sae-import — {src.name}, {len(records)} features",
        )
        if args.output is None:
            sys.stdout.write(text + "\n")
            return 0
        out = atomic_write_text(args.output, text).resolve()
    except (PolygramError, ValueError, OSError, ImportError) as e:
        return _fail("sae-import failed", e)
    print(f"polygram: wrote {len(records)} features → {out}", file=sys.stderr)
    return 0


def _register(
    sub: Any, name: str, handler: Callable[[argparse.Namespace], int], **kw: Any
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, **kw)
    # both spellings, so any dispatch convention of the main CLI finds the handler
    p.set_defaults(func=handler, handler=handler)
    return p


def add_parsers(subparsers: Any) -> None:
    """Register ``analyze`` and ``sae-import`` on an argparse subparsers object."""
    a = _register(
        subparsers,
        "analyze",
        cmd_analyze,
        help="triage selected SAE features: per-pair floors, gaps, suitability report",
        description=(
            "Import the selected features, predict what phase tuning can do for every "
            "pair, and write a markdown report (optionally sharing/separation graphs)."
        ),
    )
    a.add_argument(
        "sae_json",
        metavar="SAE_JSON",
        help="toy-schema JSON, a .safetensors checkpoint or a SAELens folder",
    )
    a.add_argument(
        "--features", required=True, help="comma-separated feature ids (at most 8 for MPSRung1)"
    )
    a.add_argument("--output", default="analysis_report.md", help="markdown report path")
    a.add_argument("--sharing-graph", metavar="PATH", help="write the sharing graph JSON here")
    a.add_argument("--sharing-threshold", type=float, default=0.5, metavar="T")
    a.add_argument(
        "--separation-graph", metavar="PATH", help="write the separation graph JSON here"
    )
    a.add_argument("--separation-threshold", type=float, default=0.2, metavar="T")
    a.add_argument("--assign-gamma", action="store_true", help="derive γ from per-cluster PCA")
    a.add_argument(
        "--n-clusters",
        type=positive_int,
        default=None,
        metavar="N",
        help="k-means cluster count when labels are missing (default: the profile's, 2)",
    )
    a.add_argument(
        "--assign-phase-knobs",
        action="store_true",
        help="α and φ from the 2nd and 3rd principal axes of the decoder rows",
    )
    a.add_argument(
        "--profile",
        type=profile_name,
        default=None,
        metavar="NAME",
        help="geometric profile for the knob assignment (clustered, uniform-sphere, ...)",
    )

    s = _register(
        subparsers,
        "sae-import",
        cmd_sae_import,
        help="export decoder rows of a safetensors SAE as toy-schema JSON",
        description=(
            "Read decoder rows from a .safetensors checkpoint (or SAELens folder) and "
            "write them in the toy SAE JSON schema that `polygram analyze` reads."
        ),
    )
    s.add_argument("path", metavar="PATH", help=".safetensors checkpoint or SAELens folder")
    s.add_argument("--features", help="comma-separated ids to read (default: every feature)")
    s.add_argument(
        "--names",
        metavar="JSON",
        help='names as a JSON object or file: {"<id>": "<name>"} or {"<name>": <id>}',
    )
    s.add_argument("--output", metavar="PATH", help="write here instead of stdout")
