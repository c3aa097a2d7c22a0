"""``polygram validate`` (spec 10 §7): a toy-schema feature JSON, an SAE
checkpoint, a prompts file and a model → a ValidationReport JSON (and CSV).

Input problems — a missing file (``polygram: …``), an empty prompts file, a
malformed ``--feature-ids``, a count or id mismatch, an unreadable JSON, a
refused Dictionary or validator setting, a missing torch/transformers, a
device that is not there, a model outside the hook table
(``polygram validate: …``) — print one line on stderr and exit 2, like
argparse's own usage errors.  Failures during the run itself (an
out-of-range layer, an SAE that does not fit the model, a report that
cannot be written) exit 1 with one line.  Progress goes to stderr;
nothing is written to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from polygram.behavioural.prompts import read_prompts
from polygram.cli.io import CommandError, add_knob_flags, encoding_of, error_text

__all__ = ["add_parsers", "cmd_validate"]

_EXIT_USAGE = 2
_EXIT_FAILED = 1


class _ValidateError(Exception):
    """A ``polygram validate: …`` usage failure (exit 2)."""


def _say(text: str) -> None:
    print(f"polygram validate: {text}", file=sys.stderr, flush=True)


def add_parsers(sub: Any) -> None:
    from polygram.cli.runtime_args import add_runtime_args, positive_int
    from polygram.runtime.hookpoints import HOOK_KINDS

    p = sub.add_parser(
        "validate",
        help="check Polygram's pair overlaps against SAE co-firing and ablation in a real model",
        description=(
            "Predict every pair's polygram overlap, run the model over the prompts (one "
            "baseline pass, one ablation sweep per feature, --batch-size prompts per forward) "
            "and write a ValidationReport: Jaccard co-firing, ablation KL, the three-term gate "
            "and its confirmed pairs."
        ),
    )
    p.add_argument(
        "--dictionary",
        required=True,
        metavar="PATH",
        help="toy-schema feature JSON holding exactly the selected features",
    )
    p.add_argument(
        "--sae-checkpoint",
        required=True,
        metavar="PATH",
        help=".safetensors SAE with W_enc, b_enc, W_dec, b_dec",
    )
    p.add_argument(
        "--feature-ids",
        required=True,
        metavar="CSV",
        help="comma-separated SAE feature ids, in dictionary order (at most the encoding's "
        "max_features: 8 for mps, 16 for rung3)",
    )
    p.add_argument(
        "--prompts",
        required=True,
        metavar="PATH",
        help="text file, one prompt per line (blank and #-lines skipped)",
    )
    p.add_argument(
        "--layer", required=True, type=int, help="block the SAE reads at (>= 1 for resid_pre)"
    )
    p.add_argument(
        "--hook",
        choices=HOOK_KINDS,
        default="resid_pre",
        help="where in the block: its input (resid_pre, default), output (resid_post), or "
        "what attention / the MLP adds (attn_out, mlp_out)",
    )
    p.add_argument(
        "--model", default="gpt2", help="Hugging Face model name or local directory (gpt2)"
    )
    p.add_argument("--polygram-threshold", type=float, default=0.7, metavar="F")
    p.add_argument("--jaccard-threshold", type=float, default=0.30, metavar="F")
    p.add_argument("--min-firing-rate", type=float, default=0.01, metavar="F")
    p.add_argument("--min-both-fire", type=int, default=5, metavar="N")
    p.add_argument(
        "--allow-layer-zero",
        action="store_true",
        help="run at layer 0 anyway (ablation-KL is uninformative there)",
    )
    add_runtime_args(p)
    p.add_argument(
        "--context-size",
        type=positive_int,
        metavar="N",
        help="cut prompts to their first N tokens (default: the model's limit)",
    )
    p.add_argument(
        "--prepend-bos",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="put BOS before every prompt, or never (default: the tokenizer's own choice)",
    )
    p.add_argument(
        "--block-path",
        metavar="PATH",
        help="dotted path of the block list of a model outside the hook table "
        "(resid_pre / resid_post only), e.g. model.layers",
    )
    add_knob_flags(p)
    p.add_argument("--output", required=True, metavar="PATH", help="ValidationReport JSON")
    p.add_argument("--csv", metavar="PATH", help="also write the pairs as CSV")
    p.set_defaults(handler=cmd_validate)


def _build(args: argparse.Namespace) -> Any:
    """The validator for ``args``, or ``_ValidateError``."""
    from polygram.behavioural import BehaviouralValidator
    from polygram.sae import from_sae_lens, load_toy_sae

    try:
        prompts = read_prompts(Path(args.prompts))
    except (OSError, UnicodeDecodeError) as e:
        raise _ValidateError(f"--prompts {args.prompts!r} cannot be read: {e}") from None
    if not prompts:
        raise _ValidateError(
            f"--prompts {args.prompts!r} holds no prompts (every line is blank or a # comment)"
        )
    ids = _parse_ids(args.feature_ids)
    try:
        encoding = encoding_of(args)
    except CommandError as e:
        raise _ValidateError(str(e)) from None
    try:
        records = load_toy_sae(args.dictionary)
    except (ValueError, OSError) as e:
        raise _ValidateError(f"--dictionary: {e}") from None
    if len(ids) != len(records):
        raise _ValidateError(
            f"--feature-ids gives {len(ids)} ids but --dictionary {args.dictionary!r} holds "
            f"{len(records)} features; they must match one to one"
        )
    absent = [i for i in ids if i not in records]
    if absent:
        raise _ValidateError(
            f"--feature-ids: {absent} not in --dictionary {args.dictionary!r} "
            f"(it holds {sorted(records)})"
        )
    try:
        dictionary, _ = from_sae_lens(
            records,
            ids,
            assign_gamma=True,
            encoding=encoding,
            assign_phase_knobs=args.assign_phase_knobs,
            assign_amp_knobs=args.assign_amp_knobs,
            profile=args.profile,
            n_clusters=args.n_clusters,
            clustered=False,
        )
    except ValueError as e:
        raise _ValidateError(f"cannot build the dictionary: {e}") from None
    try:
        return BehaviouralValidator(
            dictionary=dictionary,
            sae_checkpoint=args.sae_checkpoint,
            feature_ids=ids,
            prompts=prompts,
            layer=args.layer,
            model_name=args.model,
            polygram_overlap_threshold=args.polygram_threshold,
            jaccard_threshold=args.jaccard_threshold,
            min_firing_rate=args.min_firing_rate,
            min_both_fire=args.min_both_fire,
            allow_layer_zero=args.allow_layer_zero,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            context_size=args.context_size,
            prepend_bos=args.prepend_bos,
            hook=args.hook,
            block_path=args.block_path,
        )
    except ValueError as e:
        raise _ValidateError(str(e)) from None


def _check_model(validator: Any) -> None:
    """What can be refused before any forward: the device (resolved once, so
    ``auto`` warns once) and the model's family (loading it into the cache
    the run then reuses)."""
    from polygram.runtime import get_model, n_layers, require_torch, resolve_device

    require_torch("polygram validate")
    validator.device = resolve_device(validator.device)
    n_layers(
        get_model(validator.model_name, validator.device, validator.dtype), validator.block_path
    )


def _parse_ids(text: str) -> list[int]:
    from polygram.cli.sae import _UsageError, parse_id_list

    try:
        return parse_id_list(text, flag="--feature-ids")
    except _UsageError as e:
        raise _ValidateError(str(e)) from None


def cmd_validate(args: argparse.Namespace) -> int:
    for flag, path in (
        ("--dictionary", args.dictionary),
        ("--sae-checkpoint", args.sae_checkpoint),
        ("--prompts", args.prompts),
    ):
        if not Path(path).is_file():
            print(f"polygram: {flag} file not found: {path}", file=sys.stderr)
            return _EXIT_USAGE
    output = Path(args.output).resolve()
    try:
        validator = _build(args)
    except _ValidateError as e:
        print(f"polygram validate: {e}", file=sys.stderr)
        return _EXIT_USAGE
    try:
        _check_model(validator)
    except ImportError as e:
        print(f"polygram validate: {e}", file=sys.stderr)
        return _EXIT_USAGE
    except (ValueError, OSError) as e:  # no such device or model, a family outside the table
        print(f"polygram validate: {error_text(e)}", file=sys.stderr)
        return _EXIT_USAGE
    _say(
        f"{len(validator.feature_ids)} features, {len(validator.prompts)} prompts, "
        f"model {validator.model_name!r}, blocks.{validator.layer}.hook_{validator.hook}, "
        f"device {validator.device}, batch size {validator.batch_size}"
    )
    _say(f"report → {output}" + (f", csv → {Path(args.csv).resolve()}" if args.csv else ""))
    try:
        report = validator.run()
        report.to_json(output)
        if args.csv:
            report.to_csv(Path(args.csv).resolve())
    except ImportError as e:
        print(f"polygram validate: {e}", file=sys.stderr)
        return _EXIT_USAGE
    except (ValueError, IndexError, RuntimeError, OSError) as e:
        print(f"polygram validate: failed: {e}", file=sys.stderr)
        return _EXIT_FAILED
    _say(
        f"{len(report.pairs)} pairs, {len(report.confirmed)} confirmed, "
        f"outcome {report.summary.outcome}; wrote {output}"
    )
    return 0
