"""Clustered dictionaries side by side with polygram 0.15.0 from PyPI (spec 17 §17.14).

Workloads (d = 768, cosine threshold 0.3, the recipes of spec 17 §17.14):

* **import** — ``from_sae_lens(records, ids, clustered=True, assign_gamma=…)``, then
  ``gram()`` and ``cross_block_redundant_pairs()`` for ours; 0.15's ``from_sae_lens``
  alone (it already builds the N×N Gram), on the *planted* recipe;
* **build** — ``build_clustered_dictionary`` (cosine strategy) on the *iso* and
  *planted* recipes, next to ``T_pass``: the port's ``cosine_pair_graph`` on the same
  rows (target: build ≤ 1.3·T_pass + 0.05 s);
* **scale** (``--scale``) — N = 65536, d = 2304 float32 loader-style records: wall
  time, peak RSS and the memory bound of spec 17 §17.13.

Every measurement runs in a fresh subprocess (so peak RSS is the run's own); 0.15 runs
in its own venv (default ``benches/.peer-venv-015``, override ``POLYGRAM_PEER015_VENV``;
created with ``python -m venv benches/.peer-venv-015 &&
benches/.peer-venv-015/bin/pip install polygram==0.15.0``), never imported here.
One run per cell (``--repeat`` for best-of).

    python benches/clustered.py                       # sizes 1024 4096 8192, both sides
    python benches/clustered.py --sizes 1024 --no-peer
    python benches/clustered.py --scale               # N = 65536 × 2304, ours only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PEER = HERE / ".peer-venv-015"

# Run by either interpreter: builds the inputs with numpy, times one workload and
# prints one JSON line.  ``side`` picks the import paths (ours or 0.15).
WORKER = r"""
import json, resource, sys, time
import numpy as np
spec = json.loads(sys.argv[1])
side, work, n, d, repeat = spec["side"], spec["work"], spec["n"], spec["d"], spec["repeat"]

def recipe(kind, n, d):
    rng = np.random.default_rng(0)
    if kind == "iso":
        x = rng.standard_normal((n, d))
    else:  # planted: n/8 unit centres, each 8 times, plus noise; rows unit-normalised
        c = rng.standard_normal((n // 8, d))
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        x = np.repeat(c, 8, axis=0) + 0.5 * rng.standard_normal((n, d)) / np.sqrt(d)
    return x / np.linalg.norm(x, axis=1, keepdims=True)

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def best(fn, warm=None):
    if warm is not None:
        warm()  # first-call costs (thread pool start, imports) are not the workload
    ts, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t0)
    return min(ts), out

res = {}
if work.startswith("import"):
    gamma = work.endswith("gamma")
    if side == "ours":
        from polygram.sae import SAEFeatureRecord, from_sae_lens
    else:
        from polygram.sae_import import SAEFeatureRecord, from_sae_lens
    x = recipe("planted", n, d)
    recs = {i: SAEFeatureRecord(feature_id=i, name=f"f{i}", projection=x[i]) for i in range(n)}
    ids = list(range(n))
    base = rss_mb()
    if side == "ours":
        def run():
            cd, rep = from_sae_lens(recs, ids, clustered=True, assign_gamma=gamma)
            g = cd.gram()
            red = cd.cross_block_redundant_pairs()
            return cd, rep, len(red.pairs)
    else:
        def run():
            cd, rep = from_sae_lens(recs, ids, clustered=True, assign_gamma=gamma)
            return cd, rep, None
    small = {i: recs[i] for i in range(64)}
    t, (cd, rep, n_red) = best(run, lambda: from_sae_lens(small, list(range(64)), clustered=True))
    res.update(seconds=t, n_blocks=cd.n_blocks, n_cross=len(cd.cross_block_pairs),
               tier=rep.tier_preservation, rss_mb=rss_mb(), rss_base_mb=base, n_red=n_red)
elif work.startswith("build"):
    kind = work.split("_")[1]
    if side == "ours":
        from polygram import BlockFormation, Feature, MPSRung1, build_clustered_dictionary
    else:
        from polygram import Feature, MPSRung1
        from polygram.clustered_dictionary import BlockFormation, build_clustered_dictionary
    x = recipe(kind, n, d)
    feats = [Feature(name=f"f{i}", cluster="all", beta=0.0) for i in range(n)]
    import warnings
    warnings.simplefilter("ignore")  # the iso recipe is a degenerate partition (it warns)
    bf = BlockFormation(strategy="cosine", cosine_threshold=0.3)
    t, cd = best(
        lambda: build_clustered_dictionary("B", feats, x, MPSRung1(), bf),
        lambda: build_clustered_dictionary("W", feats[:64], x[:64], MPSRung1(), bf),
    )
    res.update(seconds=t, n_blocks=cd.n_blocks, n_cross=len(cd.cross_block_pairs),
               rss_mb=rss_mb())
    if side == "ours":
        from polygram.compression.panels import cosine_pair_graph
        res["t_pass"], _ = best(lambda: cosine_pair_graph(x, 0.3))
elif work == "scale":
    from polygram import _core
    from polygram.sae import SAEFeatureRecord, from_sae_lens
    rng = np.random.default_rng(0)
    c = rng.standard_normal((n // 8, d), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    w = np.repeat(c, 8, axis=0)
    w += (0.5 / np.sqrt(d)) * rng.standard_normal((n, d), dtype=np.float32)
    del c
    w.flags.writeable = False
    recs = {i: SAEFeatureRecord._trusted(i, f"f{i}", w[i]) for i in range(n)}  # loader views
    base = rss_mb()
    t0 = time.perf_counter()
    cd, rep = from_sae_lens(recs, list(range(n)), clustered=True)
    t_import = time.perf_counter() - t0
    g = cd.gram(); red = cd.cross_block_redundant_pairs()
    peak = rss_mb()
    t0 = time.perf_counter(); e, _, _ = _core.pair_graph(w, 0.3); t_pass = time.perf_counter() - t0
    res.update(seconds=t_import, t_pass=t_pass, rss_mb=peak, rss_base_mb=base,
               n_blocks=cd.n_blocks, n_cross=cd.n_cross_block_edges, n_edges=int(len(e)),
               tier=rep.tier_preservation, threads=_core.num_threads())
print(json.dumps(res))
"""


def run(python: str, spec: dict[str, object], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [python, "-c", WORKER, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=HERE.parent,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{spec}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def peer_python() -> str:
    venv = Path(os.environ.get("POLYGRAM_PEER015_VENV", DEFAULT_PEER))
    py = venv / "bin" / "python"
    if not py.exists():
        sys.exit(f"no 0.15 venv at {venv}; see this file's docstring (or pass --no-peer)")
    return str(py)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--scale", action="store_true", help="N = 65536, d = 2304 (ours only)")
    args = ap.parse_args()
    if args.scale:
        n, d = 65536, 2304
        r = run(sys.executable, {"side": "ours", "work": "scale", "n": n, "d": d, "repeat": 1})
        s, e = 4, r["n_edges"]
        bound = (n * d * (s + 4) + 48 * e + 512 * n + n * 8 * 16) / 2**20 + 512
        print(json.dumps(r))
        print(
            f"N={n} d={d}: import {r['seconds']:.1f} s, T_pass {r['t_pass']:.1f} s "
            f"(limit 1.3·T_pass + 30 = {1.3 * r['t_pass'] + 30:.1f} s); peak RSS "
            f"{r['rss_mb']:.0f} MB, of which records {r['rss_base_mb']:.0f} MB; extra "
            f"{r['rss_mb'] - r['rss_base_mb']:.0f} MB vs the bound {bound:.0f} MB "
            f"(E = {e}); {r['n_blocks']} blocks, {r['n_cross']} cross edges"
        )
        return
    peer = None if args.no_peer else peer_python()
    rows = []
    for n in args.sizes:
        for work in ("import", "import_gamma", "build_iso", "build_planted"):
            spec = {"work": work, "n": n, "d": 768, "repeat": args.repeat}
            ours = run(sys.executable, {**spec, "side": "ours"})
            theirs = None if peer is None else run(peer, {**spec, "side": "peer"})
            rows.append((n, work, ours, theirs))
            print(json.dumps({"n": n, "work": work, "ours": ours, "peer": theirs}), flush=True)
    print()
    print(
        "| N | workload | 0.15 (s) | ours (s) | speed-up | ours: T_pass (s), limit | blocks / cross edges (ours; 0.15) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, work, ours, theirs in rows:
        t15 = theirs["seconds"] if theirs else float("nan")
        extra = ""
        if "t_pass" in ours:
            extra = f"{ours['t_pass']:.3f}, ≤ {1.3 * ours['t_pass'] + 0.05:.3f}"
        peer_shape = f"; {theirs['n_blocks']} / {theirs['n_cross']}" if theirs else ""
        print(
            f"| {n} | {work} | {t15:.3f} | {ours['seconds']:.3f} | {t15 / ours['seconds']:.1f}× "
            f"| {extra} | {ours['n_blocks']} / {ours['n_cross']}{peer_shape} |"
        )


if __name__ == "__main__":
    main()
