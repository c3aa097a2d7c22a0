"""Refill the slots a compression zeroed (spec 12).

The step after ``examples/compress_validated.py``: it reads
``compression_report.json`` and ``sae.compressed.safetensors`` from the
output directory, captures the residual stream entering block ``layer`` of
``model_name`` on ``examples/prompts.txt``, k-means-clusters what the SAE
fails to reconstruct and writes one unit centroid into each zeroed slot
(``sae.regrown.safetensors``, ``regrow_report.json``).  Needs the
``[behavioural]`` and ``[regrow]`` extras and the ``gpt2`` weights::

    polygram run examples/regrow_validated.py --output-dir results/

Without the compression outputs the walk says so and exits cleanly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polygram import CompressionReport, Regrower, RegrowReport
from polygram.behavioural import read_prompts

PROMPTS_FILE = Path(__file__).with_name("prompts.txt")


def main(
    output_dir: str | Path = "examples/output",
    *,
    model_name: str = "gpt2",
    layer: int = 10,
    prompts: list[str] | None = None,
    cached_residuals: np.ndarray | None = None,
    seed: int = 0,
    device: str | None = None,
) -> RegrowReport | None:
    out = Path(output_dir)
    report_path = out / "compression_report.json"
    compressed = out / "sae.compressed.safetensors"
    if not (report_path.is_file() and compressed.is_file()):
        print(f"skip: no {report_path} / {compressed} (run examples/compress_validated.py first)")
        return None
    report = CompressionReport.from_json(report_path)
    if cached_residuals is not None:  # e.g. activations saved from an earlier run
        regrower = Regrower.from_compression_report(
            report,
            compressed,
            strategy="residual_kmeans",
            cached_residuals=cached_residuals,
            seed=seed,
        )
    else:
        regrower = Regrower.from_compression_report(
            report,
            compressed,
            strategy="residual_kmeans",
            prompts=read_prompts(PROMPTS_FILE) if prompts is None else prompts,
            model_name=model_name,
            layer=layer,
            device=device,
            seed=seed,
        )
    result = regrower.run(out / "sae.regrown.safetensors")
    result.report.to_json(out / "regrow_report.json")
    r = result.report
    print(
        f"{r.plan.n_residual_tokens} residual tokens → {r.n_slots_repopulated} slots regrown, "
        f"{r.n_slots_left_zero} left zero"
    )
    for s in r.plan.slots:
        print(f"  slot {s.feature_id}: {s.cluster_size} tokens in its k-means cluster")
    return r


if __name__ == "__main__":
    main()
