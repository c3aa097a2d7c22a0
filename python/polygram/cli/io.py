"""Input checks shared by the compression-loop subcommands (validate,
compress, regrow, compress-epoch): each failure is a :class:`CommandError`,
which the subcommand prints as one ``polygram <cmd>: …`` line (exit 2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "ENCODINGS",
    "CommandError",
    "add_knob_flags",
    "encoding_of",
    "error_text",
    "existing_file",
    "positive_int",
    "profile_name",
    "prompts_file",
    "report_errors",
    "residuals_npy",
    "source_checkpoint",
]

_EXIT_USAGE = 2


class CommandError(Exception):
    """A usage failure a subcommand reports in one line and exit status 2."""


def report_errors(
    name: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """``run(args)``, or — on a :class:`CommandError` — one
    ``polygram <name>: …`` line on stderr and exit status 2."""
    try:
        return run(args)
    except CommandError as e:
        print(f"polygram {name}: {e}", file=sys.stderr)
        return _EXIT_USAGE


def error_text(e: BaseException) -> str:
    """The one-line message of an error a subcommand reports (a ``KeyError``'s
    argument unquoted, not its ``repr``)."""
    return str(e.args[0]) if isinstance(e, KeyError) else str(e)


def existing_file(flag: str, value: str) -> Path:
    p = Path(value)
    if not p.is_file():
        raise CommandError(f"{flag}: file not found: {p}")
    return p


def source_checkpoint(args: argparse.Namespace) -> Path:
    """``--sae-checkpoint``, an existing file that ``--output-checkpoint`` (when
    given) does not resolve to (a source checkpoint is never rewritten in place)."""
    sae = existing_file("--sae-checkpoint", args.sae_checkpoint)
    out = getattr(args, "output_checkpoint", None)
    if out is not None and Path(out).resolve() == sae.resolve():
        raise CommandError(
            f"--output-checkpoint {args.output_checkpoint!r} must differ from --sae-checkpoint"
        )
    return sae


def prompts_file(flag: str, value: str) -> list[str]:
    """The prompts of an existing, readable, non-empty prompts file."""
    from polygram.behavioural.prompts import read_prompts

    path = existing_file(flag, value)
    try:
        prompts = read_prompts(path)
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"{flag} {value!r} cannot be read: {e}") from None
    if not prompts:
        raise CommandError(f"{flag} {value!r}: holds no prompt")
    return prompts


def residuals_npy(flag: str, value: str) -> Any:
    """A 2-D float ``.npy`` of residual-stream activations ``(tokens, d_model)``."""
    import numpy as np

    path = existing_file(flag, value)
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CommandError(f"{flag} {str(path)!r}: not a readable .npy ({e})") from None
    if x.ndim != 2 or x.dtype.kind != "f":
        raise CommandError(
            f"{flag} {str(path)!r}: a {x.dtype} array of shape {x.shape}; "
            "expected a 2-D float array (tokens, d_model)"
        )
    return x


# --- import options (spec 15 §1.7) ------------------------------------------
def profile_name(text: str) -> str:
    """``--profile``: a registered geometric profile (argparse exit 2 otherwise)."""
    from polygram.geometry import get_profile

    try:
        get_profile(text)
    except KeyError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


ENCODINGS = ("mps", "rung3")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def add_knob_flags(p: argparse.ArgumentParser, *, profile: bool = True) -> None:
    """``--encoding``, ``--assign-phase-knobs``, ``--assign-amp-knobs``,
    ``--n-clusters`` (and ``--profile``): the options of the gate's dictionary."""
    p.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default="mps",
        help="encoding of the gate's dictionary: MPSRung1 (8 features) or Rung3 (16)",
    )
    p.add_argument(
        "--assign-phase-knobs",
        action="store_true",
        help="α, φ from the 2nd/3rd principal axes of the decoder rows (gate not re-calibrated)",
    )
    p.add_argument(
        "--assign-amp-knobs",
        action="store_true",
        help="θ_amp, ψ_aux from the 4th/5th principal axes (needs --encoding rung3)",
    )
    p.add_argument(
        "--n-clusters",
        type=positive_int,
        default=None,
        metavar="N",
        help="k-means clusters of the gate's dictionary (default: the profile's, 2)",
    )
    if profile:
        p.add_argument(
            "--profile",
            type=profile_name,
            default=None,
            metavar="NAME",
            help="geometric profile for the knob assignment (default clustered)",
        )


def encoding_of(args: argparse.Namespace) -> Any:
    """The encoding ``--encoding`` names; ``--assign-amp-knobs`` needs Rung3
    (a :class:`CommandError` naming both flags otherwise)."""
    from polygram.encoding import MPSRung1, Rung3

    if args.assign_amp_knobs and args.encoding != "rung3":
        raise CommandError(
            f"--assign-amp-knobs needs --encoding rung3 (got --encoding {args.encoding}): "
            "MPSRung1 has no amp branch"
        )
    return Rung3() if args.encoding == "rung3" else MPSRung1()
