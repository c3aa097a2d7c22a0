"""SAE checkpoint loading: time and peak memory of the sliced and eager paths.

Writes synthetic checkpoints (streamed to disk, never held in memory whole),
then measures every load in a fresh interpreter so that RSS numbers are not
polluted by earlier loads:

* time — best and median of ``--repeat`` calls (no tracing);
* tracemalloc peak — Python + numpy allocations during one call;
* RSS Δ — growth of the process's peak resident set (``VmHWM``, reset just
  before the first call) over that call; it includes file pages mapped by
  ``safe_open`` that the call touched.

With the original polygram 0.0.1 installed in a separate venv
(``POLYGRAM_PEER_VENV``, default ``/opt/polygram-peer``) the same workloads
are also run there for comparison; the original is never imported here.

    python benches/sae_loading.py                 # everything (~1-2 min, 1.3 GB of temp files)
    python benches/sae_loading.py --quick         # no 600 MB eager loads, no original
    python benches/sae_loading.py --update-docs   # also rewrite the SAE loading block of docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- sae_loading.py:begin -->", "<!-- sae_loading.py:end -->"
MB = 1_000_000

# Runs in a child interpreter (ours or the original's); prints one JSON line.
CHILD = r"""
import gc, json, resource, statistics, sys, time, tracemalloc
import numpy, safetensors
try:
    from polygram.sae import load_sae_safetensors
except ImportError:  # polygram 0.0.1 exports it at top level only
    from polygram import load_sae_safetensors
path, ids, repeat = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
kw = {} if ids is None else {"feature_ids": ids}
def rss():
    # peak RSS of *this* process: VmHWM, reset just before the load (ru_maxrss
    # would also carry the parent's peak, which survives fork + exec)
    try:
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) * 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    base = rss()
    t = time.perf_counter(); recs = load_sae_safetensors(path, **kw); first = time.perf_counter() - t
    rss_delta = rss() - base
    n, dim = len(recs), len(next(iter(recs.values())).projection)
    dtype = str(next(iter(recs.values())).projection.dtype)
    del recs; gc.collect()
    times = [first]
    for _ in range(repeat - 1):
        t = time.perf_counter(); recs = load_sae_safetensors(path, **kw); times.append(time.perf_counter() - t)
        del recs; gc.collect()
    tracemalloc.start()
    recs = load_sae_safetensors(path, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {"ok": True, "best": min(times), "median": statistics.median(times), "n": len(times),
           "tracemalloc_peak": peak, "rss_delta": rss_delta, "records": n, "dim": dim, "dtype": dtype}
except Exception as e:  # the original refuses BF16 on its sliced path
    out = {"ok": False, "error": f"{type(e).__name__}: {e}"[:120]}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Checkpoint:
    key: str
    rows: int
    cols: int
    dtype: str  # F32 or BF16

    @property
    def label(self) -> str:
        size = self.rows * self.cols * (4 if self.dtype == "F32" else 2)
        return f"{self.rows}×{self.cols} {self.dtype.lower()} ({size / MB:.0f} MB)"

    @property
    def f32_bytes(self) -> int:
        return self.rows * self.cols * 4


def write_checkpoint(path: Path, ck: Checkpoint, seed: int = 0) -> None:
    """Stream a safetensors file of N(0, 1) rows in 64 MB chunks."""
    item = 4 if ck.dtype == "F32" else 2
    nbytes = ck.rows * ck.cols * item
    header = {
        "__metadata__": {"format": "pt"},
        "W_dec": {"dtype": ck.dtype, "shape": [ck.rows, ck.cols], "data_offsets": [0, nbytes]},
    }
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    rng = np.random.default_rng(seed)
    step = max(1, (64 * MB) // (ck.cols * 4))
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h)
        for lo in range(0, ck.rows, step):
            block = rng.standard_normal((min(step, ck.rows - lo), ck.cols), dtype=np.float32)
            if ck.dtype == "BF16":
                block = (block.view(np.uint32) >> 16).astype("<u2")
            fh.write(block.astype(block.dtype.newbyteorder("<")).tobytes())


def measure(python: str, path: Path, ids: list[int] | None, repeat: int) -> dict[str, Any]:
    cmd = [python, "-I", "-c", CHILD, str(path), json.dumps(ids), str(repeat)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if r.returncode != 0:
        return {"ok": False, "error": (r.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_bytes(b: float) -> str:
    if b < MB:
        return f"{b / 1e3:.0f} kB"
    return f"{b / MB:.1f} MB"


@dataclass(frozen=True)
class Workload:
    name: str
    ck: Checkpoint
    ids: list[int] | None
    repeat: int
    heavy: bool = False
    target: Callable[[dict[str, Any]], tuple[str, bool]] | None = None


def spread(n: int, k: int = 8) -> list[int]:
    return [int(i) for i in np.linspace(0, n - 1, k).round()]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dir", type=Path, help="where to write the checkpoints (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints")
    ap.add_argument("--repeat", type=int, default=20, help="timed calls per sliced workload")
    ap.add_argument(
        "--quick", action="store_true", help="skip the 600 MB eager loads and the original"
    )
    ap.add_argument("--no-peer", action="store_true", help="do not run the original polygram 0.0.1")
    ap.add_argument("--json", type=Path, help="also dump the raw results here")
    ap.add_argument(
        "--update-docs", action="store_true", help="rewrite the block in docs/performance.md"
    )
    ap.add_argument(
        "--from-json", type=Path, help="re-render results saved with --json instead of measuring"
    )
    args = ap.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        table = render(results, any(r.get("original") for r in results))
        print(table)
        if args.update_docs:
            update_docs(table)
        return 0

    small = Checkpoint("small", 24576, 768, "F32")
    big = Checkpoint("big", 65536, 2304, "F32")
    gemma = Checkpoint("gemma", 16384, 2304, "BF16")

    def sliced_target(r: dict[str, Any]) -> tuple[str, bool]:
        ok = r["tracemalloc_peak"] < 5 * MB and r["rss_delta"] < 5 * MB and r["best"] < 0.010
        return "< 5 MB extra, < 10 ms", ok

    def bf16_target(r: dict[str, Any]) -> tuple[str, bool]:
        ratio = max(r["tracemalloc_peak"], r["rss_delta"]) / gemma.f32_bytes
        return f"peak ≤ 1.2× f32 size (measured {ratio:.2f}×)", ratio <= 1.2

    work = [
        Workload("sliced, 8 rows", small, spread(small.rows), args.repeat),
        Workload("sliced, 8 rows", big, spread(big.rows), args.repeat, target=sliced_target),
        Workload("sliced, 8 rows", gemma, spread(gemma.rows), args.repeat),
        Workload("eager, all rows", small, None, 3),
        Workload("eager, all rows", gemma, None, 3, target=bf16_target),
        Workload("eager, all rows", big, None, 2, heavy=True),
    ]
    if args.quick:
        work = [w for w in work if not w.heavy]

    peer = os.environ.get("POLYGRAM_PEER_VENV", "/opt/polygram-peer")
    peer_py = Path(peer) / "bin" / "python"
    use_peer = not (args.quick or args.no_peer) and peer_py.exists()

    tmp = Path(tempfile.mkdtemp(prefix="sae_bench_")) if args.dir is None else args.dir
    tmp.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    try:
        paths = {}
        for ck in {w.ck for w in work}:
            paths[ck] = tmp / f"{ck.key}.safetensors"
            if not paths[ck].exists():
                print(f"writing {ck.label} …", file=sys.stderr)
                write_checkpoint(paths[ck], ck)
        for w in work:
            print(f"measuring {w.name} / {w.ck.label} …", file=sys.stderr)
            ours = measure(sys.executable, paths[w.ck], w.ids, w.repeat)
            theirs = (
                measure(str(peer_py), paths[w.ck], w.ids, max(1, w.repeat // 4))
                if use_peer
                else None
            )
            row = {"workload": w.name, "checkpoint": w.ck.label, "ours": ours, "original": theirs}
            if w.target is not None and ours.get("ok"):
                text, met = w.target(ours)
                row["target"], row["met"] = text, met
            results.append(row)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)

    table = render(results, use_peer)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.update_docs:
        update_docs(table)
    return 0 if all(r.get("met", True) for r in results) else 1


def _cell(r: dict[str, Any] | None) -> tuple[str, str, str]:
    if r is None:
        return "—", "—", "—"
    if not r.get("ok"):
        return f"fails: {r['error']}", "—", "—"
    return (
        f"{fmt_time(r['best'])} / {fmt_time(r['median'])}",
        fmt_bytes(r["tracemalloc_peak"]),
        fmt_bytes(max(0, r["rss_delta"])),
    )


def render(results: list[dict[str, Any]], with_peer: bool) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        f"Measured {date.today().isoformat()} with `python benches/sae_loading.py` on "
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, numpy {np.__version__}.",
        "",
        "| load | checkpoint | ours: time best / median | ours: tracemalloc peak | ours: RSS Δ |"
        + (" 0.0.1: time best | 0.0.1: tracemalloc peak | 0.0.1: RSS Δ |" if with_peer else ""),
        "|---|---|---:|---:|---:|" + ("---:|---:|---:|" if with_peer else ""),
    ]
    for row in results:
        t, p, rss = _cell(row["ours"])
        line = f"| {row['workload']} | {row['checkpoint']} | {t} | {p} | {rss} |"
        if with_peer:
            o = row["original"]
            ot, op, orss = _cell(o)
            if o is not None and o.get("ok"):
                ot = fmt_time(o["best"])
            line += f" {ot} | {op} | {orss} |"
        lines.append(line)
    lines.append("")
    lines.append("Targets:")
    lines.append("")
    for row in results:
        if "target" in row:
            state = "MET" if row["met"] else "MISSED"
            lines.append(f"- {row['workload']} of {row['checkpoint']}: {row['target']}: {state}")
    return "\n".join(lines)


def update_docs(table: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Performance\n"
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## SAE loading\n\n" + block + "\n"
    tmp = DOCS.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, DOCS)


if __name__ == "__main__":
    sys.exit(main())
