"""Epoch compression of a whole GPT-2-small SAE (spec 13).

Needs the ``[behavioural]`` extra, a local SAE checkpoint for the residual
stream entering block 10 of GPT-2 small (e.g. jbloom's
``GPT2-Small-SAEs-Reformatted`` ``blocks.10.hook_resid_pre``) and the ``gpt2``
weights (from the Hugging Face cache or a local directory)::

    polygram run examples/compress_epoch_validated.py --output-dir results/

The SAE is looked up at ``$POLYGRAM_SAE`` or
``scratch/real-sae/blocks.10.hook_resid_pre/sae_weights.safetensors``; without
one the walk says so and exits cleanly (nothing is downloaded).  It writes
``sae.epoch.safetensors`` and ``epoch_report.json`` into the output directory
and prints one line per iteration.
"""

from __future__ import annotations

import os
from pathlib import Path

from polygram import EpochCompressor, EpochReport
from polygram.behavioural import read_prompts

DEFAULT_SAE = Path("scratch/real-sae/blocks.10.hook_resid_pre/sae_weights.safetensors")
PROMPTS_FILE = Path(__file__).with_name("prompts.txt")


def main(
    output_dir: str | Path = "examples/output",
    *,
    sae_checkpoint: str | Path | None = None,
    model_name: str = "gpt2",
    layer: int = 10,
    prompts: list[str] | None = None,
    max_iterations: int = 5,
    min_both_fire: int = 5,
    device: str | None = None,
) -> EpochReport | None:
    ckpt = Path(sae_checkpoint or os.environ.get("POLYGRAM_SAE") or DEFAULT_SAE)
    if not ckpt.is_file():
        print(f"skip: no SAE checkpoint at {ckpt} (set $POLYGRAM_SAE or pass sae_checkpoint)")
        return None
    out = Path(output_dir)
    epoch = EpochCompressor(
        sae_checkpoint=ckpt,
        prompts=read_prompts(PROMPTS_FILE) if prompts is None else prompts,
        layer=layer,
        model_name=model_name,
        max_iterations=max_iterations,
        min_both_fire=min_both_fire,
        device=device,
    )
    result = epoch.run(out / "sae.epoch.safetensors")
    report = result.report
    report.to_json(out / "epoch_report.json")
    for it in report.iterations:
        print(
            f"iteration {it.iteration}: {len(it.panels)} panels, {it.confirmed_pair_count} "
            f"confirmed pairs, {len(it.features_zeroed_this_iteration)} zeroed, "
            f"delta {it.cross_entropy_delta:.3g} ({it.convergence_state})"
        )
    print(
        f"{report.convergence_reason}: {report.n_features_zeroed_total} features zeroed, "
        f"coverage {report.coverage_achieved:g}, {report.wall_seconds:.1f} s"
    )
    return report


if __name__ == "__main__":
    main()
