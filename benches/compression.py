"""Benchmark of the compression action: union-find and ``Compressor.run``.

Workloads:

* **union-find** — components of ``10^5`` / ``10^6`` random edges over as many
  ids, through ``polygram.compression.connected_components`` (an ``(E, 2)``
  int64 array → the Rust kernel → tuples), best of 3; next to it a pure-Python
  union-find with the same rules (path halving, larger root under the smaller,
  dict-based like polygram 0.0.1), run once.
* **Compressor.run** — a synthetic GPT-2-small-sized SAE (24576 × 768 float32,
  ~151 MB for W_enc + W_dec) and a report of 1000 confirmed pairs (random
  clusters), ``zero`` and ``merge``; best of 3 wall times of the whole call
  (load, two sha256s, rewrite, atomic write), and the sha256 share of it.

    python benches/compression.py                # print the table
    python benches/compression.py --quick        # 10^5 edges and a 4096 × 768 SAE only
    python benches/compression.py --update-docs  # also rewrite the block in docs/performance.md
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

import polygram
from polygram._io import sha256_file
from polygram.behavioural import CandidatePair, ValidationReport, ValidationSummary
from polygram.compression import Compressor, connected_components

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- compression.py:begin -->", "<!-- compression.py:end -->"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def python_components(edges: np.ndarray) -> list[list[int]]:
    """The baseline: a dict-based union-find in pure Python, same rules."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges.tolist():
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted(sorted(g) for g in groups.values())


def fmt(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def union_find_rows(sizes: list[int]) -> list[tuple[str, str, str, str]]:
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        edges = rng.integers(0, n, size=(n, 2), dtype=np.int64)
        ours = best_of(lambda e=edges: connected_components(e), 3)  # type: ignore[misc]
        t0 = time.perf_counter()
        base = python_components(edges)
        py = time.perf_counter() - t0
        assert [list(c) for c in connected_components(edges)] == base
        rows.append((f"union-find, {n:,} random edges", fmt(ours), fmt(py), f"{py / ours:,.0f}×"))
    return rows


def synth(path: Path, n: int, d: int) -> None:
    rng = np.random.default_rng(1)
    save_file(
        {
            "W_enc": rng.standard_normal((d, n), dtype=np.float32),
            "b_enc": np.zeros(n, np.float32),
            "W_dec": rng.standard_normal((n, d), dtype=np.float32),
            "b_dec": np.zeros(d, np.float32),
        },
        str(path),
    )


def report(n: int, n_pairs: int) -> ValidationReport:
    rng = np.random.default_rng(2)
    ids = rng.choice(n, size=2 * n_pairs, replace=False)
    # pairs within random groups of ~4 ids → clusters of a few members
    conf = [(int(ids[k]), int(ids[(k // 4) * 4 + (k + 1) % 4])) for k in range(n_pairs)]
    nan = math.nan
    pairs = [
        CandidatePair(i, j, 0.8, 0.9, 0.5, nan, nan, nan, nan, nan, 10, 12, 8, 15, True)
        for i, j in conf
    ]
    summary = ValidationSummary.unmeasured("synthetic")
    return ValidationReport(
        1, "Bench", "gpt2", 10, 1, 1, 0.5, 0.3, 0.0, 1,
        tuple(sorted({f for p in conf for f in p})), tuple(pairs), summary, tuple(conf),
    )  # fmt: skip


def compressor_rows(n: int, d: int) -> list[tuple[str, str, str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sae.safetensors"
        synth(src, n, d)
        rep = report(n, 1000)
        Compressor(rep, src).run(Path(tmp) / "warm.safetensors")  # page cache, imports
        sha = best_of(lambda: sha256_file(src), 3)
        mb = os.path.getsize(src) / 1e6
        for strategy in ("zero", "merge"):
            c = Compressor(rep, src, strategy=strategy)  # type: ignore[arg-type]
            t = best_of(lambda c=c: c.run(Path(tmp) / "out.safetensors"), 3)  # type: ignore[misc]
            rows.append(
                (
                    f"Compressor.run {strategy}, {n}×{d} f32 ({mb:.0f} MB), 1000 pairs",
                    fmt(t),
                    "—",
                    f"sha256 ×2: {fmt(2 * sha)}",
                )
            )
    return rows


def table(rows: list[tuple[str, str, str, str]]) -> str:
    out = [
        "| workload | ours | pure-Python union-find | note |",
        "|---|---:|---:|---|",
    ]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small workloads only")
    ap.add_argument("--update-docs", action="store_true", help="rewrite docs/performance.md")
    args = ap.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    rows = union_find_rows(sizes) + compressor_rows(4096 if args.quick else 24576, 768)
    text = table(rows)
    stamp = (
        f"_Measured by `python benches/compression.py` (polygram {polygram.__version__}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores, "
        f"{date.today().isoformat()})._"
    )
    print(text)
    print(stamp)
    if args.update_docs:
        doc = DOC.read_text(encoding="utf-8")
        block = f"{BEGIN}\n{text}\n\n{stamp}\n{END}"
        if BEGIN in doc and END in doc:
            head, rest = doc.split(BEGIN, 1)
            doc = head + block + rest.split(END, 1)[1]
        else:
            doc = doc.rstrip("\n") + "\n\n## Compression\n\n" + block + "\n"
        DOC.write_text(doc, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
