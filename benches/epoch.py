"""Benchmark of the epoch compressor's decoder geometry (spec 13 §8).

Workloads on random float32 decoder rows (standard normal, seed 0):

* **pair graph** over 24,576 × 768 rows (the GPT-2-small jbloom SAE shape) at
  ``cos >= 0.30`` (≈ no edges for isotropic rows, as real SAEs mostly are at
  that threshold) and ``cos >= 0.10`` (≈ 0.8 M edges, to show the cost of
  emitting edges):
  - *ours*: ``polygram.compression.panels.cosine_pair_graph`` (Rust, tiled
    float32 GEMM + threshold per tile, rayon over row blocks);
  - *numpy chunked*: unit rows, 1024-row ``U[c] @ U.T`` blocks,
    ``np.nonzero`` on the upper triangle — the best plain-numpy version;
  - *0.0.1 loop* (estimate): upstream's pure-Python threshold loop over all
    ``n(n−1)/2`` pairs, timed on a 2,000-row sample and scaled by pair count.
* **panel selection** over 5,000 eligible rows (the design doc's expected
  eligible set at ``min_firing_rate = 0.01``), 1,000 panels max, visit cap 3;
* **end to end**: ``EpochCompressor.run`` (2 iterations, 1,000 panels each)
  on a synthetic clustered SAE of the same shape with 654 cached tokens.

Usage::

    python benches/epoch.py              # all workloads (a few minutes on 2 cores)
    python benches/epoch.py --n 8192     # smaller pair-graph matrix
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from polygram import _core
from polygram.compression.panels import cosine_pair_graph, select_panels


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def numpy_chunked(rows: np.ndarray, thr: float, chunk: int = 1024) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1)
    norms[norms < 1e-12] = 1.0
    u = rows / norms[:, None]
    parts = []
    for s in range(0, len(u), chunk):
        sims = u[s : s + chunk] @ u[s:].T  # only columns >= s: the upper triangle
        i, j = np.nonzero(sims >= thr)
        keep = j > i
        parts.append(np.stack([i[keep] + s, j[keep] + s], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)


def python_loop_per_pair(rows: np.ndarray, thr: float) -> float:
    """Seconds per pair of a 0.0.1-style pure-Python double loop over a
    precomputed similarity matrix (the loop is what upstream pays for)."""
    u = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    sims = u @ u.T
    n = len(u)
    t0 = time.perf_counter()
    edges = set()
    for a in range(n):
        row = sims[a]
        for b in range(a + 1, n):
            if row[b] >= thr:
                edges.add((a, b))
    return (time.perf_counter() - t0) / (n * (n - 1) / 2)


def fmt(s: float) -> str:
    if s >= 60:
        return f"{s / 60:.1f} min"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24576, help="rows of the pair-graph matrix")
    ap.add_argument("--d", type=int, default=768, help="row width")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((args.n, args.d)).astype(np.float32)
    pairs = args.n * (args.n - 1) / 2
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{_core.num_threads()} polygram threads; rows {args.n}x{args.d} float32, "
        f"{pairs:.3g} pairs"
    )
    per_pair = python_loop_per_pair(rows[:2000], 0.3)
    print("| workload | edges | ours | numpy chunked | 0.0.1 loop (est.) | numpy ÷ ours |")
    print("|---|---:|---:|---:|---:|---:|")
    for thr in (0.3, 0.1):
        t_ours, ours = best_of(lambda t=thr: cosine_pair_graph(rows, t), args.repeat)
        t_np, ref = best_of(lambda t=thr: numpy_chunked(rows, t), args.repeat)
        assert isinstance(ours, np.ndarray) and isinstance(ref, np.ndarray)
        # float32 rounding may move pairs within ~1e-7 of the threshold
        assert abs(len(ours) - len(ref)) <= max(10, len(ref) // 10**4), (len(ours), len(ref))
        print(
            f"| pair graph {args.n}x{args.d}, cos >= {thr} | {len(ours):,} | {fmt(t_ours)} "
            f"| {fmt(t_np)} | {fmt(per_pair * pairs)} | {t_np / t_ours:.2f}x |"
        )

    n_e = min(5000, args.n)
    sub = rows[:n_e]
    prio = rng.random(n_e)
    edges = cosine_pair_graph(sub, 0.1)
    t_sel, sel = best_of(
        lambda: select_panels(
            sub, prio, edges, n_visits_per_feature=3, n_panels_max=1000, coverage_target=0.95
        ),
        args.repeat,
    )
    assert sel is not None
    print(
        f"| panel selection, {n_e} eligible x {args.d}, {len(edges):,} edges, "
        f"{len(sel.panels)} panels | — | {fmt(t_sel)} | — | — | — |"  # type: ignore[attr-defined]
    )

    if args.n >= 8192:
        end_to_end(rng, args.n, args.d)


def end_to_end(rng: np.random.Generator, n: int, d: int, t: int = 654) -> None:
    """``EpochCompressor.run`` on a synthetic clustered SAE (3,000 directions
    with two noisy copies each, tied encoders) and cached residuals."""
    import tempfile
    from pathlib import Path

    from safetensors.numpy import save_file

    from polygram.compression.epoch import EpochCompressor

    w = rng.standard_normal((n, d)).astype(np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    groups = min(3000, n // 3)
    for g in range(groups):
        noise = rng.standard_normal((2, d)).astype(np.float32) * (0.3 / np.sqrt(d))
        w[groups + 2 * g : groups + 2 * g + 2] = w[g] + noise
    x = rng.standard_normal((t, d)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sae.safetensors"
        save_file(
            {
                "W_enc": np.ascontiguousarray(w.T),
                "b_enc": np.full(n, -1.6, np.float32),
                "W_dec": w,
                "b_dec": np.zeros(d, np.float32),
            },
            str(src),
        )
        epoch = EpochCompressor(
            src,
            [],
            10,
            cached_residuals=x,
            max_iterations=2,
            polygram_overlap_threshold=0.0,
            progress=False,
        )
        t0 = time.perf_counter()
        report = epoch.run(Path(tmp) / "out.safetensors").report
        wall = time.perf_counter() - t0
    its = report.iterations
    print(
        f"| EpochCompressor.run, {n}x{d} clustered SAE, {t} cached tokens, "
        f"{len(its)} iterations, {report.n_panels_total} panels, "
        f"{report.n_features_zeroed_total} zeroed | — | {fmt(wall)} | — | — | — |"
    )


if __name__ == "__main__":
    main()
