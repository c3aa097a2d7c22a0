"""``Compressor.plan_pareto`` side by side with polygram 0.15.0 from PyPI.

Workload (spec 15 §3, issue #13): a validation report of 100 000 scored pairs
over a 24 576-feature SAE (``i < j``, scores and fire counts drawn from
``default_rng(0)``; the SAE is 24 576 × 64 float32, which neither side reads
for ``rep_selection="n_fires"``), and 20 targets K spread geometrically over
[10, 10 000] — below, around and above the peak cluster count (~3 750).  The
report is written once as JSON; each side reads it with its own
``ValidationReport.from_json`` and times ``Compressor(report,
sae).plan_pareto(targets)`` alone, one run (ours: also the best of 3).

polygram 0.15.0 runs in its own venv (default ``benches/.peer-venv-015``,
git-ignored; override with ``POLYGRAM_PEER_015``), created on first use with
``python -m venv`` + ``pip install polygram==0.15.0 safetensors``, in a
subprocess (``python -I``): it is never imported by this package.  Before
timing is reported the two results are compared outcome by outcome: the
partitions, representatives and ``reached_target`` must agree for every K
except K == peak, where this port deliberately differs (spec 15 §3.2).

    python benches/pareto.py                 # the full workload (0.15 takes minutes)
    python benches/pareto.py --quick         # 4096 features, 10 000 pairs
    python benches/pareto.py --update-docs   # also rewrite the block in docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from polygram.behavioural import CandidatePair, ValidationReport, ValidationSummary
from polygram.compression import Compressor

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- pareto.py:begin -->", "<!-- pareto.py:end -->"
PEER_VENV = Path(os.environ.get("POLYGRAM_PEER_015", ROOT / "benches" / ".peer-venv-015"))

# Executed by 0.15's interpreter: the same call, timed, and its outcomes as JSON.
PEER = r"""
import json, sys, time
from polygram import Compressor, ValidationReport
spec = json.loads(sys.argv[1])
report = ValidationReport.from_json(spec["report"])
c = Compressor(report, spec["sae"])
t0 = time.perf_counter()
pr = c.plan_pareto(spec["targets"])
dt = time.perf_counter() - t0
out = [
    {"k": o.target_k, "reached": bool(o.reached_target),
     "clusters": [[list(cl.members), cl.representative] for cl in o.plan.clusters]}
    for o in pr.outcomes
]
print(json.dumps({"seconds": dt, "outcomes": out}))
"""


def inputs(workdir: Path, n: int, n_pairs: int, d: int = 64) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, d)).astype(np.float32)
    sae = workdir / "sae.safetensors"
    save_file(
        {
            "W_dec": w,
            "W_enc": np.ascontiguousarray(w.T),
            "b_enc": np.zeros(n, np.float32),
            "b_dec": np.zeros(d, np.float32),
        },
        str(sae),
    )
    i = rng.integers(0, n, n_pairs)
    j = rng.integers(0, n, n_pairs)
    j = np.where(i == j, (j + 1) % n, j)
    lo, hi = np.minimum(i, j), np.maximum(i, j)  # i < j: 0.15's min/max attribution agrees
    score = rng.uniform(0, 1, n_pairs)
    fi, fj = rng.integers(1, 100, n_pairs), rng.integers(1, 100, n_pairs)
    nan = math.nan
    pairs = tuple(
        CandidatePair(a, b, s, 0.5, 0.5, 0.0, nan, nan, nan, nan, x, y, 5, 15, False)
        for a, b, s, x, y in zip(
            lo.tolist(), hi.tolist(), score.tolist(), fi.tolist(), fj.tolist(), strict=True
        )
    )
    report = ValidationReport(
        schema_version=1,
        dictionary_name="ParetoBench",
        model_name="gpt2",
        layer=10,
        n_prompts=4,
        n_tokens=100,
        polygram_overlap_threshold=0.7,
        jaccard_threshold=0.3,
        min_firing_rate=0.01,
        min_both_fire=5,
        feature_ids=tuple(range(n)),
        pairs=pairs,
        summary=ValidationSummary.unmeasured("bench"),
        confirmed=(),
    )
    path = workdir / "report.json"
    report.to_json(path)
    return path, sae


def ensure_peer() -> Path | None:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
            subprocess.run(
                [str(py), "-m", "pip", "install", "-q", "polygram==0.15.0", "safetensors"],
                check=True,
            )
        except (subprocess.CalledProcessError, OSError) as e:
            print(f"peer unavailable: {e}", file=sys.stderr)
            return None
    return py


def ours(report_path: Path, sae: Path, targets: list[int], repeat: int) -> tuple[float, Any]:
    report = ValidationReport.from_json(report_path)
    times, result = [], None
    for _ in range(repeat):
        c = Compressor(report, sae)  # a fresh instance: nothing memoised between runs
        t0 = time.perf_counter()
        result = c.plan_pareto(targets)
        times.append(time.perf_counter() - t0)
    return min(times), result


def compare(result: Any, peer: list[dict[str, Any]], peak: int) -> int:
    """Outcomes that agree (K == peak is skipped: the port's boundary fix)."""
    theirs = {o["k"]: o for o in peer}
    checked = 0
    for o in result.outcomes:
        if o.target_k == peak:
            continue
        t = theirs[o.target_k]
        mine = [[list(c.members), c.representative] for c in o.plan.clusters]
        if mine != t["clusters"] or o.reached_target != t["reached"]:
            raise SystemExit(f"K={o.target_k}: results differ from polygram 0.15.0")
        checked += 1
    return checked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4096 features, 10 000 pairs")
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args()
    n, n_pairs = (4096, 10_000) if args.quick else (24576, 100_000)
    targets = sorted({round(x) for x in np.geomspace(10, 10_000, 20)}, reverse=True)
    assert len(targets) == 20
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        report_path, sae = inputs(Path(tmp), n, n_pairs)
        t_ours, result = ours(report_path, sae, targets, repeat=3)
        from polygram.compression.pareto import walk_targets

        peak = walk_targets(
            ValidationReport.from_json(report_path).pairs, "polygram_overlap", [1]
        ).peak
        py = ensure_peer()
        t_peer = None
        checked = 0
        if py is not None:
            spec = {"report": str(report_path), "sae": str(sae), "targets": targets}
            out = subprocess.run(
                [str(py), "-I", "-c", PEER, json.dumps(spec)],
                capture_output=True,
                text=True,
                check=True,
            )
            peer = json.loads(out.stdout)
            t_peer = float(peer["seconds"])
            checked = compare(result, peer["outcomes"], peak)
    load1 = os.getloadavg()[0]
    ratio = "" if t_peer is None else f"{t_peer / t_ours:.0f}×"
    lines = [
        f"Measured {date.today().isoformat()} with `python benches/pareto.py"
        f"{' --quick' if args.quick else ''}` on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}; Python {platform.python_version()}, "
        f"numpy {np.__version__}; 1-min load average {load0:.2f} before and {load1:.2f} after):",
        "",
        "| workload | ours (best of 3) | polygram 0.15.0 (one run) | 0.15 ÷ ours |",
        "|---|---:|---:|---:|",
        f"| `plan_pareto`, {len(targets)} targets, {n} features, {n_pairs} pairs (peak {peak}) | "
        f"{t_ours:.3f} s | {'n/a' if t_peer is None else f'{t_peer:.1f} s'} | {ratio or 'n/a'} |",
        "",
        f"The two agree on the partition, representatives and `reached_target` of all "
        f"{checked} targets other than K = peak (the port's boundary fix).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.update_docs:
        doc = DOC.read_text(encoding="utf-8")
        block = f"{BEGIN}\n{text}\n{END}"
        if BEGIN in doc:
            doc = doc[: doc.index(BEGIN)] + block + doc[doc.index(END) + len(END) :]
        else:
            doc = doc.rstrip("\n") + "\n\n" + block + "\n"
        DOC.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    main()
