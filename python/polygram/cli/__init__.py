"""The ``polygram`` console script.

``polygram run TARGET --output-dir DIR`` runs a module exposing
``main(output_dir=...)``; further subcommands register themselves through
``add_parsers(subparsers)`` hooks.  Failures of ``run`` print one
``polygram: <message>`` line and exit 1; argparse errors exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from polygram.cli.run import CliError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from polygram import __version__

    parser = argparse.ArgumentParser(
        prog="polygram",
        description="Quantum-interference laboratory for polysemantic SAE feature dictionaries.",
    )
    parser.add_argument("--version", action="version", version=f"polygram {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for hook in _subcommand_hooks():
        hook(sub)
    return parser


def _subcommand_hooks() -> list[Callable[[Any], None]]:
    hooks = []
    for name in (
        "polygram.cli.run",
        "polygram.cli.sae",
        "polygram.cli.batch",
        "polygram.cli.compress",
        "polygram.cli.validate",
        "polygram.cli.regrow",
        "polygram.cli.epoch",
        "polygram.cli.evaluate",
    ):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real bug inside the hook module: surface it
                raise
            continue
        hooks.append(module.add_parsers)
    return hooks


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CliError as e:
        print(f"polygram: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:
        print(f"polygram: {e}", file=sys.stderr)
        return 1
