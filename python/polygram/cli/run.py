"""``polygram run TARGET --output-dir DIR``: run a module exposing ``main(output_dir=...)``.

Failures print one ``polygram: <message>`` line and exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def _load_target(target: str) -> Callable[..., Any]:
    p = Path(target)
    if ":" in target and not p.exists():
        mod_name, _, attr = target.partition(":")
        # The console script does not put the working directory on sys.path
        # (``python -m`` does); appended, so a local file never shadows an
        # installed module.
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())
        try:
            module: ModuleType = importlib.import_module(mod_name)
        except Exception as e:
            raise CliError(f"cannot import {mod_name!r}: {e}") from e
        fn = getattr(module, attr, None)
        if fn is None:
            raise CliError(f"{mod_name!r} has no attribute {attr!r}")
    else:
        if not p.is_file():
            raise CliError(f"no such file: {target}")
        if p.suffix != ".py":
            raise CliError(f"{target}: expected a .py file or module:callable")
        spec = importlib.util.spec_from_file_location(f"_polygram_run_{p.stem}", p)
        if spec is None or spec.loader is None:
            raise CliError(f"cannot load {target}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise CliError(f"importing {target} failed: {type(e).__name__}: {e}") from e
        fn = getattr(module, "main", None)
        if fn is None:
            raise CliError(f"{target} defines no main(output_dir=...)")
    if not callable(fn):
        raise CliError(f"{target}: {fn!r} is not callable")
    return fn  # type: ignore[no-any-return]


def _cmd_run(args: argparse.Namespace) -> int:
    from polygram._io import ensure_dir

    fn = _load_target(args.target)
    out = ensure_dir(Path(args.output_dir).resolve())
    kwargs: dict[str, Any] = {"output_dir": out}
    if args.n_points is not None:
        kwargs["n_points"] = args.n_points
    try:
        try:
            fn(**kwargs)
        except TypeError:
            if "n_points" not in kwargs:
                raise
            del kwargs["n_points"]
            fn(**kwargs)
    except TypeError:
        # spec 06 §6.1: a TypeError other than the n_points retry propagates
        # as a traceback (the console script still exits 1)
        raise
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        raise CliError(f"{args.target} failed: {type(e).__name__}: {e}") from e
    print(f"polygram: ran {args.target} → {out}")
    return 0


def add_parsers(sub: Any) -> None:
    run = sub.add_parser("run", help="run a module that exposes main(output_dir=...)")
    run.add_argument("target", help="path/to/script.py or module:callable")
    run.add_argument("--output-dir", default="examples/output", help="where outputs go")
    run.add_argument("--n-points", type=int, default=None, help="passed to main() if accepted")
    run.set_defaults(handler=_cmd_run)
