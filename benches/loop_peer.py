"""The compression loop side by side with the PyPI original (polygram 0.0.1).

Same files, same inputs, one run each, best of ``--repeat``:

* **Compressor.run (zero)** — a synthetic GPT-2-small-sized SAE (24576 × 768
  float32) and a report of 1000 confirmed pairs in clusters of a few members
  (the report is written as JSON by this package and read back by each side's
  ``ValidationReport.from_json``);
* **epoch pair graph** — the decoder-cosine pair graph (signed cosine ≥ 0.3)
  of ``n`` random 768-wide decoder rows: ours is the Rust kernel
  (``polygram.compression.panels.cosine_pair_graph``), 0.0.1's is its
  ``_compute_cosine_graph`` (numpy tiles + a Python double loop over pairs);
* **Regrower.plan** — residual k-means of 2000 cached residual tokens into 64
  zeroed slots of a 4096 × 768 SAE (both sides call scikit-learn's k-means;
  the SAE forward differs).

The original runs in its own venv (default ``/opt/polygram-peer``, override
``POLYGRAM_PEER_VENV``; ``python benches/compare.py`` creates it) as a
subprocess; results are checked to agree before timing is reported.

    python benches/loop_peer.py               # print the table
    python benches/loop_peer.py --markdown    # the table as Markdown
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from polygram.compression import Compressor, Regrower
from polygram.compression.panels import cosine_pair_graph

sys.path.insert(0, str(Path(__file__).parent))
from compression import report, synth  # the same synthetic inputs as compression.py
from epoch import best_of

DEFAULT_PEER_VENV = "/opt/polygram-peer"

# Executed by the peer's interpreter: times the same workloads with 0.0.1.
PEER = r"""
import json, sys, time
import numpy as np
spec = json.loads(sys.argv[1])

def best(fn, repeat):
    out, ts = None, []
    for _ in range(repeat):
        t0 = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t0)
    return min(ts), out

res = {}
if "compress" in spec:
    from polygram import Compressor, ValidationReport
    c = spec["compress"]
    rep = ValidationReport.from_json(c["report"])
    t, r = best(lambda: Compressor(rep, c["sae"], strategy="zero").run(c["out"]), c["repeat"])
    res["compress"] = {"s": t, "zeroed": r.report.n_features_zeroed}
for g in spec.get("graphs", []):
    from polygram.compression.epoch import _compute_cosine_graph
    rows = np.load(g["rows"])
    eligible = np.arange(rows.shape[0])
    t, edges = best(lambda: _compute_cosine_graph(rows, eligible, threshold=g["thr"]), 1)
    res[f"graph_{rows.shape[0]}"] = {"s": t, "edges": len(edges)}
if "regrow" in spec:
    from polygram.compression.regrow import Regrower
    g = spec["regrow"]
    x = np.load(g["x"])
    def plan():
        return Regrower(g["sae"], strategy="residual_kmeans", zeroed=g["zeroed"],
                        cached_residuals=x).plan()
    t, p = best(plan, g["repeat"])
    res["regrow"] = {"s": t, "slots": len(p.slots)}
print(json.dumps(res))
"""


def fmt(t: float) -> str:
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def peer_python() -> Path | None:
    py = Path(os.environ.get("POLYGRAM_PEER_VENV", DEFAULT_PEER_VENV)) / "bin" / "python"
    return py if py.exists() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    py = peer_python()
    if py is None:
        print("peer unavailable: run `python benches/compare.py` once to create its venv")
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        # -- inputs
        sae = tmp / "sae.safetensors"
        synth(sae, 24576, 768)
        rep = report(24576, 1000)
        rep.to_json(tmp / "report.json")
        rng = np.random.default_rng(5)
        graphs = []
        for n in (4096, 8192):
            np.save(tmp / f"rows{n}.npy", rng.standard_normal((n, 768), dtype=np.float32))
            graphs.append({"rows": str(tmp / f"rows{n}.npy"), "thr": 0.3})
        small = tmp / "small.safetensors"
        synth(small, 4096, 768)
        zeroed = sorted(int(z) for z in rng.choice(4096, 64, replace=False))
        np.save(tmp / "x.npy", rng.standard_normal((2000, 768), dtype=np.float32))
        spec = {
            "compress": {
                "report": str(tmp / "report.json"),
                "sae": str(sae),
                "out": str(tmp / "peer_out.safetensors"),
                "repeat": args.repeat,
            },
            "graphs": graphs,
            "regrow": {"sae": str(small), "zeroed": zeroed, "x": str(tmp / "x.npy"), "repeat": 1},
        }
        # -- ours
        t, res = best_of(lambda: Compressor(rep, sae).run(tmp / "ours.safetensors"), args.repeat)
        ours_comp = (t, res.report.n_features_zeroed)  # type: ignore[attr-defined]
        ours_graphs = {}
        for g in graphs:
            rows_arr = np.load(g["rows"])
            t, edges = best_of(lambda r=rows_arr: cosine_pair_graph(r, 0.3), args.repeat)
            ours_graphs[rows_arr.shape[0]] = (t, len(edges))  # type: ignore[arg-type]
        x = np.load(tmp / "x.npy")
        t, plan = best_of(
            lambda: Regrower(small, "residual_kmeans", zeroed, cached_residuals=x).plan(), 1
        )
        ours_regrow = (t, len(plan.slots))  # type: ignore[attr-defined]
        # -- peer
        print("timing polygram 0.0.1 (the pair graphs take minutes) ...", file=sys.stderr)
        proc = subprocess.run(
            [str(py), "-I", "-c", PEER, json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            return 1
        peer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert peer["compress"]["zeroed"] == ours_comp[1], (peer["compress"], ours_comp)
    rows.append(
        ("Compressor.run zero, 24576×768 f32, 1000 pairs", ours_comp[0], peer["compress"]["s"])
    )
    for n, (t, e) in ours_graphs.items():
        assert peer[f"graph_{n}"]["edges"] == e, (n, peer[f"graph_{n}"], e)
        rows.append((f"epoch pair graph, {n}×768 rows (cos ≥ 0.3)", t, peer[f"graph_{n}"]["s"]))
    assert peer["regrow"]["slots"] == ours_regrow[1]
    rows.append(
        ("Regrower.plan, 4096×768, 64 slots, 2000 tokens", ours_regrow[0], peer["regrow"]["s"])
    )
    head = ("workload", "ours", "polygram 0.0.1", "0.0.1 ÷ ours")
    lines = [(w, fmt(a), fmt(b), f"{b / a:,.1f}×") for w, a, b in rows]
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|---|---:|---:|---:|")
        for r in lines:
            print("| " + " | ".join(r) + " |")
    else:
        for r in (head, *lines):
            print(f"{r[0]:<52} {r[1]:>10} {r[2]:>16} {r[3]:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
