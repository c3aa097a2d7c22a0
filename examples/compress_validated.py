"""Compress the confirmed pairs of a validation report (spec 11).

The step after ``examples/behavioural_validate.py``: it reads the
``validation_report.json`` that walk wrote into the output directory, clusters
the confirmed pairs, keeps one representative per cluster and writes
``sae.compressed.safetensors`` and ``compression_report.json`` next to it.
Torch-free::

    polygram run examples/behavioural_validate.py --output-dir results/
    polygram run examples/compress_validated.py --output-dir results/

The SAE is looked up at ``$POLYGRAM_SAE`` or
``scratch/real-sae/blocks.10.hook_resid_pre/sae_weights.safetensors``; without
it, or without the validation report, the walk says so and exits cleanly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from polygram import CompressionReport, Compressor, ValidationReport

DEFAULT_SAE = Path("scratch/real-sae/blocks.10.hook_resid_pre/sae_weights.safetensors")


def main(
    output_dir: str | Path = "examples/output",
    *,
    sae_checkpoint: str | Path | None = None,
    strategy: Literal["zero", "merge"] = "zero",
) -> CompressionReport | None:
    out = Path(output_dir)
    ckpt = Path(sae_checkpoint or os.environ.get("POLYGRAM_SAE") or DEFAULT_SAE)
    report_path = out / "validation_report.json"
    if not ckpt.is_file():
        print(f"skip: no SAE checkpoint at {ckpt} (set $POLYGRAM_SAE or pass sae_checkpoint)")
        return None
    if not report_path.is_file():
        print(f"skip: no {report_path} (run examples/behavioural_validate.py first)")
        return None
    report = ValidationReport.from_json(report_path)
    compressor = Compressor(validation_report=report, sae_checkpoint=ckpt, strategy=strategy)
    result = compressor.run(out / "sae.compressed.safetensors")
    result.report.to_json(out / "compression_report.json")
    r = result.report
    print(
        f"{len(report.confirmed)} confirmed pairs → {r.n_clusters} clusters; "
        f"{r.n_features_zeroed} features zeroed, scale kept {r.scale_compression_ratio:.3f}"
    )
    for c in r.plan.clusters:
        print(f"  cluster {c.cluster_id}: keep {c.representative}, zero {list(c.zeroed)}")
    return r


if __name__ == "__main__":
    main()
