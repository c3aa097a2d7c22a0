"""Before/after timing of the core kernels in ONE run (issue 15's kernel floors).

Loads two builds of the compiled module side by side — this tree's
``polygram._core`` and an older ``_core*.so`` given with ``--baseline`` — and
times the same calls through their (unchanged) Python API, interleaving the
two builds round by round so both see the same machine load:

* ``grid 4096² preserve_tiers``: ``Scan.grid`` over the seed quickstart's
  ``dog_poodle.phi × bird_hawk.phi`` (4096 steps per axis, 16.8 M points) and
  over the 8-feature table of ``benches/cancellation.py`` (7 pairs per point);
* ``sweep 200² / 1000×100``: ``Scan.sweep`` (Grams, ranks and statistics of
  every point);
* ``gram 8 features``: ``Encoder.gram`` per call (what the Python layer pays
  for the GIL/pool hand-off of a tiny call).

Wall times (best / median) and process CPU time (all threads, best) are
reported: on a shared machine the CPU time is the steadier of the two.

Build a baseline from any commit, e.g. the one before the kernel changes::

    git worktree add /tmp/pg-base <commit> && (cd /tmp/pg-base && maturin build --release -o /tmp/w)
    unzip -j /tmp/w/polygram-*.whl 'polygram/_core*.so' -d /tmp/pg-base-so

    python benches/kernel_floors.py --baseline /tmp/pg-base-so/_core.abi3.so
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


def load(path: Path) -> ModuleType:
    """A compiled ``_core`` from ``path``, as a module of its own."""
    spec = importlib.util.spec_from_file_location("_core", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


QUICK = np.array([[0.0, -0.5, 0.0, 0.0]] * 2 + [[0.0, 0.5, 0.0, 0.0]] * 2)
#: two clusters of four, every knob non-zero (benches/cancellation.py's table)
EIGHT = np.array(
    [[0.15 * f, -0.6 + 0.16 * f, 0.05 * f - 0.2, 0.3 * f] for f in range(8)], dtype=float
)


def grid_call(core: ModuleType, table: np.ndarray, n: int) -> Callable[[], Any]:
    k = len(table) // 2
    axes = [np.linspace(0, 2 * np.pi, n)] * 2
    scan = core.Scan(core.Encoder("mps"), table, [[3], [k * 4 + 3]], axes, [0] * k + [1] * k, 2)
    return lambda: scan.grid((0, k), True, with_knobs=False)


def sweep_call(core: ModuleType, n0: int, n1: int) -> Callable[[], Any]:
    axes = [np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n1)]
    scan = core.Scan(core.Encoder("mps"), QUICK, [[3], [11]], axes, [0, 0, 1, 1], 2)
    return lambda: scan.sweep((0, 2))


def gram_call(core: ModuleType) -> Callable[[], Any]:
    enc = core.Encoder("mps")

    def many() -> None:
        for _ in range(1000):
            enc.gram(EIGHT)

    return many


WORKLOADS: dict[str, tuple[str, Callable[[ModuleType], Callable[[], Any]], float]] = {
    # id: (label, factory, divisor for the reported time)
    "grid_q": ("grid 4096² preserve_tiers, quickstart", lambda c: grid_call(c, QUICK, 4096), 1),
    "grid_8": ("grid 4096² preserve_tiers, 8 features", lambda c: grid_call(c, EIGHT, 4096), 1),
    "sweep_200": ("sweep 200×200", lambda c: sweep_call(c, 200, 200), 1),
    "sweep_1000": ("sweep 1000×100", lambda c: sweep_call(c, 1000, 100), 1),
    "gram_8": ("Encoder.gram, 8 features (per call)", gram_call, 1000),
}


def fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", type=Path, required=True, help="an older _core*.so")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", nargs="*", choices=list(WORKLOADS), help="workload ids to run")
    args = ap.parse_args()
    for w in set(WORKLOADS) - set(args.only or WORKLOADS):
        del WORKLOADS[w]
    from polygram import _core as ours

    builds = {"before": load(args.baseline), "after": ours}
    times: dict[str, dict[str, list[float]]] = {w: {b: [] for b in builds} for w in WORKLOADS}
    cpu: dict[str, dict[str, list[float]]] = {w: {b: [] for b in builds} for w in WORKLOADS}
    calls = {w: {b: f(m) for b, m in builds.items()} for w, (_, f, _) in WORKLOADS.items()}
    for w in WORKLOADS:  # warm-up, and the builds must agree
        got = {b: c() for b, c in calls[w].items()}
        if w.startswith("grid"):
            assert got["before"][3] == got["after"][3], w
            assert np.array_equal(got["before"][0], got["after"][0]), w
        if w.startswith("sweep"):
            assert np.array_equal(got["before"][2], got["after"][2], equal_nan=True), w
    for _ in range(args.rounds):
        for w in WORKLOADS:
            for b, c in calls[w].items():
                t, p = time.perf_counter(), time.process_time()
                c()
                times[w][b].append((time.perf_counter() - t) / WORKLOADS[w][2])
                cpu[w][b].append((time.process_time() - p) / WORKLOADS[w][2])
    print(
        f"{args.rounds} rounds, builds interleaved; threads: {ours.num_threads()}; "
        f"numpy {np.__version__}\n"
    )
    print(
        "| workload | before best / median | after best / median | before ÷ after "
        "| CPU before → after (best) | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for w, (label, _, _) in WORKLOADS.items():
        b, a = times[w]["before"], times[w]["after"]
        cb, ca = min(cpu[w]["before"]), min(cpu[w]["after"])
        print(
            f"| {label} | {fmt(min(b))} / {fmt(statistics.median(b))} | "
            f"{fmt(min(a))} / {fmt(statistics.median(a))} | {min(b) / min(a):.2f}× "
            f"| {fmt(cb)} → {fmt(ca)} | {cb / ca:.2f}× |"
        )


if __name__ == "__main__":
    main()
