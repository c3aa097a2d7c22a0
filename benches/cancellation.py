"""Benchmark of ``Cancellation`` grid scans, with the physical floors of the work.

Workloads (``preserve_tiers=True``, knobs ``[A.phi, B.phi]``, grid backend):

* ``quickstart 50×50`` / ``200×200``: the seed README quickstart (4 features,
  2 clusters), target ``(dog_poodle, bird_hawk)``;
* ``8 features 1000×1000``: two clusters of four features with every knob
  (α, β, γ, φ) non-zero, target = first feature of each cluster, so every
  point checks 7 pair overlaps (target + 3 siblings of each end);
* ``8 features 4096×4096``, full (trajectory ``(P, 3)`` + mask) and lean
  (overlap grid + mask).

Floors printed next to the measurements:

* **direct compute floor**: points × pairs checked × state dimension complex
  multiply-adds ÷ the machine's measured complex-FMA throughput (a complex128
  matrix product on every core) — what evaluating each pair as an inner
  product of states costs at best.  The kernel's closed form for φ axes
  (docs/cancellation.md) does less work than this, so it can go below it.
* **write floor**: bytes of the returned arrays ÷ measured write bandwidth
  into freshly allocated memory (first touch included, as for a real result).

The original ``polygram==0.0.1`` runs in its own venv (``benches/compare.py``
creates it; default ``/opt/polygram-peer``, override ``POLYGRAM_PEER_VENV``)
as a subprocess using only the seed README's public API; ``--peer`` times it
(50×50 ≈ seconds, 200×200 ≈ a minute), otherwise the times recorded in
``docs/performance.md`` are quoted.

Usage::

    python benches/cancellation.py                 # ours + floors, recorded peer times
    python benches/cancellation.py --peer          # also time the original
    python benches/cancellation.py --update-docs   # rewrite the Cancellation section
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
BEGIN = "<!-- cancellation.py:begin -->"
END = "<!-- cancellation.py:end -->"
RECORDED_RE = re.compile(r"<!-- cancellation-peer-timings: (\{.*?\}) -->", re.S)
DEFAULT_PEER_VENV = "/opt/polygram-peer"

#: (name, cluster, alpha, beta, gamma, phi)
QUICKSTART = [
    ("dog_poodle", "dogs", 0.0, -0.5, 0.0, 0.0),
    ("dog_beagle", "dogs", 0.0, -0.5, 0.0, 0.0),
    ("bird_hawk", "birds", 0.0, 0.5, 0.0, 0.0),
    ("bird_sparrow", "birds", 0.0, 0.5, 0.0, 0.0),
]
EIGHT = [
    (
        f"{c}{i}",
        c,
        0.12 * i + (0.3 if c == "kb" else 0.0),
        (-0.5 if c == "ka" else 0.5) + 0.04 * i,
        0.05 * i - 0.1,
        0.2 * i,
    )
    for c in ("ka", "kb")
    for i in range(4)
]

#: id → (label, rows, target pair, max_steps, lean, target seconds or None)
WORKLOADS: dict[str, tuple[str, list[Any], tuple[str, str], int, bool, float | None]] = {
    "q50": ("quickstart 50×50", QUICKSTART, ("dog_poodle", "bird_hawk"), 50, False, None),
    "q200": ("quickstart 200×200", QUICKSTART, ("dog_poodle", "bird_hawk"), 200, False, None),
    "e1000": ("8 features 1000×1000", EIGHT, ("ka0", "kb0"), 1000, False, 0.050),
    "e4096": ("8 features 4096×4096", EIGHT, ("ka0", "kb0"), 4096, False, 1.0),
    "e4096_lean": ("8 features 4096×4096, lean", EIGHT, ("ka0", "kb0"), 4096, True, 1.0),
}
PEER = ["q50", "q200"]

# The peer runs this with its own interpreter: only the seed README's API.
PEER_SCRIPT = """
import json, sys, time
from polygram import Cancellation, Dictionary, Feature, MPSRung1
rows = json.loads(sys.argv[1])
hier = {}
for r in rows:
    hier.setdefault(r[1], []).append(r[0])
d = Dictionary(name="Bench", features=[Feature(name=n, cluster=c, alpha=a, beta=b, gamma=g, phi=p)
               for n, c, a, b, g, p in rows], hierarchy=hier, encoding=MPSRung1())
for n in json.loads(sys.argv[3]):
    c = Cancellation(dictionary=d, target_pair=tuple(json.loads(sys.argv[2])), tolerance=0.05,
                     preserve_tiers=True, optimize={"method": "grid", "max_steps": n})
    t = time.perf_counter(); r = c.run(); s = time.perf_counter() - t
    print(json.dumps({"n": n, "s": s, "after": r.after_overlap, "feasible": r.feasible_count}),
          flush=True)
"""


def dictionary(rows: list[Any]) -> Any:
    from polygram import Dictionary, Feature

    hier: dict[str, list[str]] = {}
    for r in rows:
        hier.setdefault(r[1], []).append(r[0])
    feats = [Feature(n, c, alpha=a, beta=b, gamma=g, phi=p) for n, c, a, b, g, p in rows]
    return Dictionary("Bench", feats, hier)


def timeit(fn: Callable[[], Any], budget_s: float, max_n: int = 50) -> tuple[float, float, int]:
    """Best and median of repeated calls within ``budget_s`` (at least 3)."""
    fn()  # warm-up: page cache, thread pool
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < max_n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), len(times)


def cfma_throughput() -> float:
    """Complex multiply-adds per second of a complex128 matrix product on every core."""
    n = 768
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    b = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    best, _, _ = timeit(lambda: a @ b, 2.0, 20)
    return n**3 / best


def write_bandwidth() -> float:
    """Bytes per second written into freshly allocated memory (first touch included)."""
    nbytes = 256 << 20

    def fill() -> None:
        x = np.empty(nbytes // 8)
        x.fill(1.0)

    best, _, _ = timeit(fill, 2.0, 20)
    return nbytes / best


def pairs_checked(rows: list[Any], target: tuple[str, str]) -> int:
    cluster = {r[0]: r[1] for r in rows}
    sib = sum(1 for t in target for r in rows if r[1] == cluster[t] and r[0] != t)
    return 1 + sib


def run_ours(budget_s: float) -> dict[str, dict[str, Any]]:
    from polygram import Cancellation, _core

    out: dict[str, dict[str, Any]] = {}
    for wid, (label, rows, target, n, lean, _) in WORKLOADS.items():
        d = dictionary(rows)
        c = Cancellation(d, target, optimize={"method": "grid", "max_steps": n}, lean=lean)
        r = c.run()
        best, med, count = timeit(c.run, budget_s)
        points = n * n
        out[wid] = {
            "best": best,
            "median": med,
            "n": count,
            "points": points,
            "pairs": pairs_checked(rows, target),
            "dim": 8,
            "bytes": c.grid_result_bytes(),
            "after": r.after_overlap,
            "feasible": r.feasible_count,
            "threads": _core.num_threads(),
        }
        print(f"  ours {label}: {fmt_s(best)} best, {fmt_s(med)} median (N={count})", flush=True)
    return out


def peer_python() -> Path | None:
    p = Path(os.environ.get("POLYGRAM_PEER_VENV", DEFAULT_PEER_VENV)) / "bin" / "python"
    return p if p.exists() else None


def run_peer(timeout_s: float = 900.0) -> dict[str, dict[str, Any]]:
    py = peer_python()
    if py is None:
        print("  peer unavailable (run benches/compare.py once to create its venv)")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for wid in PEER:
        _, rows, target, n, _, _ = WORKLOADS[wid]
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [
                    str(py),
                    "-I",
                    "-c",
                    PEER_SCRIPT,
                    json.dumps(rows),
                    json.dumps(target),
                    json.dumps([n]),
                ],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                cwd=tmp,
                check=False,
            )
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(f"  peer {wid} failed: {proc.stderr.strip()[-300:]}")
            continue
        rec = lines[-1]
        out[wid] = {
            "best": rec["s"],
            "median": rec["s"],
            "n": 1,
            "after": rec["after"],
            "feasible": rec["feasible"],
            "date": dt.date.today().isoformat(),
        }
        print(f"  original {WORKLOADS[wid][0]}: {fmt_s(rec['s'])}", flush=True)
    return out


def fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def recorded_peer() -> dict[str, dict[str, Any]]:
    if DOCS.exists():
        m = RECORDED_RE.search(DOCS.read_text(encoding="utf-8"))
        if m:
            return json.loads(m.group(1))  # type: ignore[no-any-return]
    return {}


def table(
    ours: dict[str, dict[str, Any]], peer: dict[str, dict[str, Any]], fma: float, bw: float
) -> list[str]:
    lines = [
        "| Workload | points | pairs/point | ours best / median (N) | original 0.0.1 | original ÷ ours "
        "| direct compute floor | write floor | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for wid, (label, _, _, _, _, target) in WORKLOADS.items():
        o = ours[wid]
        p = peer.get(wid)
        compute = o["points"] * o["pairs"] * o["dim"] / fma
        write = o["bytes"] / bw
        goal = (
            "—"
            if target is None
            else (f"< {fmt_s(target)}: {'MET' if o['best'] < target else 'NOT MET'}")
        )
        orig = fmt_s(p["best"]) if p else "—"
        ratio = f"{p['best'] / o['best']:,.0f}×" if p else "—"
        lines.append(
            f"| {label} | {o['points']:,} | {o['pairs']} | {fmt_s(o['best'])} / "
            f"{fmt_s(o['median'])} (N={o['n']}) | {orig} | {ratio} | {fmt_s(compute)} | "
            f"{fmt_s(write)} | {goal} |"
        )
    return lines


def render(
    ours: dict[str, dict[str, Any]],
    peer: dict[str, dict[str, Any]],
    fma: float,
    bw: float,
    measured_peer: bool,
) -> str:
    threads = next(iter(ours.values()))["threads"]
    cpu = platform.processor() or platform.machine()
    head = (
        f"Measured {dt.date.today().isoformat()} with `python benches/cancellation.py"
        f"{' --peer' if measured_peer else ''}` on {os.cpu_count()} cores ({cpu}; "
        f"{threads} kernel threads), Python {platform.python_version()}, numpy {np.__version__}. "
        f"Measured complex-FMA throughput {fma / 1e9:.2f} G/s (complex128 matmul), write "
        f"bandwidth {bw / 1e9:.2f} GB/s (fresh 256 MiB array)."
    )
    notes = [
        "",
        "- Times are `Cancellation(...).run()` end to end (axes, one kernel call, trajectory "
        "assembly, optimum dictionary, before/after Grams, floor); best / median over N runs "
        "after a warm-up.",
        "- original: `polygram==0.0.1` in its own venv, same dictionary and arguments, one run "
        + ("(measured in this run)." if measured_peer else f"(recorded {peer_date(peer)})."),
        "- pairs/point: overlaps evaluated per grid point — the target plus, with "
        "`preserve_tiers`, each target's siblings (hierarchical-ordering test).",
        "- direct compute floor: points × pairs × 8 complex multiply-adds (one inner product of "
        "8-amplitude states per pair) ÷ measured complex-FMA throughput. The kernel's φ-axis "
        "closed form needs ~2 real multiply-adds per point instead, so it can beat this floor; "
        "the write floor (returned bytes ÷ write bandwidth) is the one it cannot beat.",
        agreement(ours, peer),
    ]
    rec = json.dumps(peer, sort_keys=True)
    return "\n".join(
        [
            head,
            "",
            *table(ours, peer, fma, bw),
            *notes,
            "",
            f"<!-- cancellation-peer-timings: {rec} -->",
        ]
    )


def agreement(ours: dict[str, dict[str, Any]], peer: dict[str, dict[str, Any]]) -> str:
    """Whether ours and the original found the same after_overlap and feasible_count."""
    same = [
        w
        for w in PEER
        if w in peer
        and abs(peer[w]["after"] - ours[w]["after"]) <= 1e-12
        and peer[w]["feasible"] == ours[w]["feasible"]
    ]
    differ = [w for w in PEER if w in peer and w not in same]
    if differ:
        return f"- Results DIFFER from the original on {differ} (after_overlap or feasible_count)."
    if not same:
        return "- No original timings to compare results with."
    return (
        "- Results agree: after_overlap (to 1e-12) and feasible_count of ours and the original "
        f"match on {', '.join(WORKLOADS[w][0] for w in same)}."
    )


def peer_date(peer: dict[str, dict[str, Any]]) -> str:
    dates = sorted({v.get("date", "?") for v in peer.values()})
    return ", ".join(dates) if dates else "n/a"


def update_docs(block: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Performance\n"
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + f"{BEGIN}\n{block}\n{END}" + text[b:]
    else:
        text = text.rstrip("\n") + f"\n\n## Cancellation\n\n{BEGIN}\n{block}\n{END}\n"
    DOCS.write_text(text, encoding="utf-8")
    print(f"updated {DOCS}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer", action="store_true", help="time the original 0.0.1 too")
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of repeats per workload")
    ap.add_argument("--update-docs", action="store_true", help="rewrite the docs section")
    args = ap.parse_args(argv)
    print("machine floors ...", flush=True)
    fma, bw = cfma_throughput(), write_bandwidth()
    print(f"  complex FMA {fma / 1e9:.2f} G/s, write {bw / 1e9:.2f} GB/s")
    print("ours ...", flush=True)
    ours = run_ours(args.budget)
    peer = recorded_peer()
    if args.peer:
        print("original 0.0.1 ...", flush=True)
        peer.update(run_peer())
    block = render(ours, peer, fma, bw, args.peer)
    print()
    print(block)
    if args.update_docs:
        update_docs(block)
    failed = [w for w, (*_, t) in WORKLOADS.items() if t is not None and ours[w]["best"] >= t]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
