"""Behavioural validation of an 8-feature panel on GPT-2 small.

Needs the ``[behavioural]`` extra, a local SAE checkpoint for the residual
stream entering block 10 of GPT-2 small (e.g. jbloom's
``GPT2-Small-SAEs-Reformatted`` ``blocks.10.hook_resid_pre``) and the ``gpt2``
weights (from the Hugging Face cache or a local directory)::

    polygram run examples/behavioural_validate.py --output-dir results/

The SAE is looked up at ``$POLYGRAM_SAE`` or
``scratch/real-sae/blocks.10.hook_resid_pre/sae_weights.safetensors``; without
one the walk says so and exits cleanly (nothing is downloaded).  The panel is
the calibration panel the validator's defaults were set on.
"""

from __future__ import annotations

import os
from pathlib import Path

from polygram import BehaviouralValidator, ValidationReport, from_sae_lens, load_sae_safetensors
from polygram.behavioural import read_prompts

DEFAULT_SAE = Path("scratch/real-sae/blocks.10.hook_resid_pre/sae_weights.safetensors")
PANEL = [12999, 19398, 4192, 23625, 8371, 2287, 68, 13737]
PROMPTS_FILE = Path(__file__).with_name("prompts.txt")


def main(
    output_dir: str | Path = "examples/output",
    *,
    sae_checkpoint: str | Path | None = None,
    model_name: str = "gpt2",
    layer: int = 10,
    feature_ids: list[int] | None = None,
    prompts: list[str] | None = None,
    min_both_fire: int = 5,
    device: str | None = None,
) -> ValidationReport | None:
    ckpt = Path(sae_checkpoint or os.environ.get("POLYGRAM_SAE") or DEFAULT_SAE)
    if not ckpt.is_file():
        print(f"skip: no SAE checkpoint at {ckpt} (set $POLYGRAM_SAE or pass sae_checkpoint)")
        return None
    ids = list(PANEL if feature_ids is None else feature_ids)
    records = load_sae_safetensors(ckpt, feature_ids=ids)
    dictionary, _ = from_sae_lens(records, ids, assign_gamma=True)
    validator = BehaviouralValidator(
        dictionary=dictionary,
        sae_checkpoint=ckpt,
        feature_ids=ids,
        prompts=read_prompts(PROMPTS_FILE) if prompts is None else prompts,
        layer=layer,
        model_name=model_name,
        min_both_fire=min_both_fire,
        device=device,
    )
    report = validator.run()
    out = Path(output_dir)
    report.to_json(out / "validation_report.json")
    report.to_csv(out / "validation_pairs.csv")
    s = report.summary
    print(
        f"{len(report.pairs)} pairs over {report.n_tokens} tokens: "
        f"Spearman(polygram, Jaccard) = {s.spearman_polygram_jaccard:.3f}, "
        f"Spearman(decoder cos², Jaccard) = {s.spearman_decoder_jaccard:.3f} → {s.outcome}"
    )
    for name, b in s.buckets.items():
        mean = b.jaccard_mean
        print(f"  {name:13s} {b.polygram_range:11s} n={b.n_pairs:2d} mean Jaccard {mean:.3f}")
    print("confirmed:", report.confirmed)
    return report


if __name__ == "__main__":
    main()
