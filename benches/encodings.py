"""Time the richer encodings (HEA_Rung2 Gram, rung-3 joint cancellation)
against the PyPI original ``polygram==0.0.1``.

Workloads (identical code runs in both interpreters):

* ``hea_gram``: ``Dictionary.gram()`` of the reference ``AnimalsHea``
  dictionary (4 features, ``HEA_Rung2(depth=2)``: ring, (Ry, Rz), 3 qubits);
  per call, median of repeated blocks.
* ``rung3_joint_3x3_8``: ``Cancellation(d, ("dog_poodle", "bird_hawk"),
  encoding="rung3", grid_outer=(3, 3), optimize={"max_steps": 8}).run()`` on
  the README quickstart with ``Rung3()`` (the spec 03 §3.5 parity case).
* ``rung3_joint_default``: the same with the defaults, ``grid_outer=(5, 5)``,
  ``max_steps=50`` (62,500 inner-grid points).  The original needs minutes
  for it: it runs only with ``--full``; otherwise the time recorded in
  docs/performance.md is quoted.

The original runs in its own venv (default ``/opt/polygram-peer``, override
with ``POLYGRAM_PEER_VENV``) as a subprocess that prints JSON; when the venv
is missing its column is N/A (this script never installs it — see
``benches/compare.py`` for that).

Usage::

    python benches/encodings.py                # ~10 s (+ original's small workloads)
    python benches/encodings.py --full         # + the original's default joint run (minutes)
    python benches/encodings.py --update-docs  # rewrite the "Richer encodings" block
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "performance.md"
DEFAULT_PEER_VENV = "/opt/polygram-peer"
BEGIN = "<!-- encodings.py:begin -->"
END = "<!-- encodings.py:end -->"
RECORDED_RE = re.compile(r"<!-- encodings-peer-timings: (\{.*?\}) -->", re.S)
ORDER = ["hea_gram", "rung3_joint_3x3_8", "rung3_joint_default"]
SLOW_PEER = ["rung3_joint_default"]
PEER_TIMEOUT_S = 900.0

# The workload code, run verbatim by both interpreters (public API only).
WORKLOAD = r"""
import json, statistics, sys, time
from polygram import Dictionary, Feature, HEA_Rung2, Rung3
from polygram import Cancellation

H = {"dogs": ["dog_poodle", "dog_beagle"], "birds": ["bird_hawk", "bird_sparrow"]}

def hea():
    rows = [("dog_poodle", "dogs", 0.05, -0.5, 0.02), ("dog_beagle", "dogs", 0.04, -0.48, 0.03),
            ("bird_hawk", "birds", -0.04, 0.5, 0.02), ("bird_sparrow", "birds", -0.03, 0.52, 0.01)]
    feats = [Feature(n, c, b, alpha=a, gamma=g) for n, c, a, b, g in rows]
    return Dictionary(name="AnimalsHea", features=feats, hierarchy=H, encoding=HEA_Rung2(depth=2))

def rung3():
    feats = [Feature(n, c, -0.5 if c == "dogs" else 0.5) for c, m in H.items() for n in m]
    return Dictionary(name="AnimalsRung3", features=feats, hierarchy=H, encoding=Rung3())

def joint(outer, steps):
    c = Cancellation(dictionary=rung3(), target_pair=("dog_poodle", "bird_hawk"),
                     encoding="rung3", grid_outer=outer, optimize={"max_steps": steps})
    return c.run()

def per_call(fn, budget=1.0):
    fn()
    n, t = 1, 0.0
    while True:  # calibrate a block of ~50 ms
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t > 0.05:
            break
        n *= 2
    blocks, t_end = [], time.perf_counter() + budget
    while time.perf_counter() < t_end or len(blocks) < 3:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        blocks.append((time.perf_counter() - t0) / n)
    return statistics.median(blocks), len(blocks) * n

def wall(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out

def run(which, repeats):
    res = {}
    if "hea_gram" in which:
        d = hea()
        t, n = per_call(d.gram)
        res["hea_gram"] = {"seconds": t, "calls": n, "check": float(abs(d.gram()[0][2]) ** 2)}
    for name, outer, steps in (("rung3_joint_3x3_8", (3, 3), 8), ("rung3_joint_default", (5, 5), 50)):
        if name in which:
            t, r = wall(lambda: joint(outer, steps), repeats[name])
            res[name] = {"seconds": t, "runs": repeats[name], "check": float(r.after_overlap),
                         "rows": len(r.trajectory)}
    return res
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ours(which: list[str], repeats: dict[str, int]) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(compile(WORKLOAD, "<encodings workload>", "exec"), ns)
    return ns["run"](which, repeats)  # type: ignore[no-any-return]


def peer(which: list[str], repeats: dict[str, int]) -> dict[str, Any] | None:
    venv = Path(os.environ.get("POLYGRAM_PEER_VENV", DEFAULT_PEER_VENV))
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"peer unavailable: no {python}")
        return None
    code = WORKLOAD + f"\nprint(json.dumps(run({which!r}, {repeats!r})))\n"
    try:
        proc = subprocess.run(
            [str(python), "-I", "-c", code],
            capture_output=True,
            text=True,
            timeout=PEER_TIMEOUT_S,
            cwd="/",
            check=False,
        )
    except subprocess.TimeoutExpired:
        log("peer timed out")
        return None
    if proc.returncode != 0:
        log(f"peer failed:\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def recorded() -> dict[str, float]:
    m = RECORDED_RE.search(DOCS.read_text(encoding="utf-8")) if DOCS.exists() else None
    return json.loads(m.group(1)) if m else {}


def fmt(t: float | None) -> str:
    if t is None:
        return "N/A"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


LABELS = {
    "hea_gram": "HEA Gram, 4 features, depth 2 (per call)",
    "rung3_joint_3x3_8": "Rung3 joint cancellation, grid_outer (3, 3), max_steps 8",
    "rung3_joint_default": "Rung3 joint cancellation, defaults: (5, 5), max_steps 50",
}


def table(o: dict[str, Any], p: dict[str, Any] | None, rec: dict[str, float]) -> list[str]:
    rows = [
        "| workload | ours | original 0.0.1 | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for w in ORDER:
        t_o = o[w]["seconds"]
        t_p: float | None = None
        note = ""
        if p is not None and w in p:
            t_p = p[w]["seconds"]
        elif w in rec:
            t_p, note = rec[w], " (recorded)"
        speed = f"{t_p / t_o:,.0f}×" if t_p else "N/A"
        rows.append(f"| {LABELS[w]} | {fmt(t_o)} | {fmt(t_p)}{note} | {speed} |")
    return rows


def update_docs(block: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Performance\n"
    if BEGIN in text and END in text:
        i, j = text.index(BEGIN), text.index(END) + len(END)
        text = text[:i] + block + text[j:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--full", action="store_true", help="also time the original's default joint run"
    )
    ap.add_argument("--update-docs", action="store_true", help="rewrite the docs block")
    args = ap.parse_args(argv)

    repeats = {"rung3_joint_3x3_8": 5, "rung3_joint_default": 3}
    log("timing ours …")
    o = ours(ORDER, repeats)
    peer_which = [w for w in ORDER if args.full or w not in SLOW_PEER]
    log(f"timing the original ({', '.join(peer_which)}) …")
    p = peer(peer_which, {**repeats, "rung3_joint_3x3_8": 2, "rung3_joint_default": 1})
    rec = recorded()
    if p is not None:
        for w in ORDER:
            if w in p and w in o:
                log(f"{w}: check ours {o[w]['check']:.6g} vs original {p[w]['check']:.6g}")
        rec |= {w: p[w]["seconds"] for w in SLOW_PEER if w in p}
    lines = table(o, p, rec)
    print("\n".join(lines))
    if args.update_docs:
        import numpy
        import scipy

        env = (
            f"{platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
            f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
        )
        block = "\n".join(
            [
                BEGIN,
                *lines,
                "",
                f"_Measured by `python benches/encodings.py{' --full' if args.full else ''}` "
                f"({env})._",
                f"<!-- encodings-peer-timings: {json.dumps({k: v for k, v in rec.items() if k in SLOW_PEER})} -->",
                END,
            ]
        )
        update_docs(block)
        log(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
