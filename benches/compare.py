"""Time Polygram against the PyPI original and a plain-numpy implementation.

One run times, on the same workloads:

* **ours**: this package, in-process (``import polygram``);
* **original**: ``polygram==0.0.1`` from PyPI in its own venv (default
  ``/opt/polygram-peer``, override with ``POLYGRAM_PEER_VENV``), created here
  when missing, run as a subprocess that prints JSON;
* **numpy**: a hand-written vectorised numpy version of the same math (closed
  form MPS amplitudes of spec 01 §1.2.2, ``G = conj(S) @ S.T``, the sweep as
  one batched computation over every grid point).

Workloads: Gram of 4 and 8 features (per call), ``Experiment(...).run()`` of
the seed README quickstart over a 40-point 1-D sweep (``bird_hawk.phi``) and
24×24 / 200×200 2-D sweeps (``dog_poodle.phi`` × ``bird_hawk.phi``, each
``linspace(0, π, n)``), and ``import polygram`` in a fresh interpreter.

Usage::

    python benches/compare.py              # full run, 2-5 minutes (the peer's 200x200 sweep: 1-3.5 min)
    python benches/compare.py --quick      # skip the slow peer workloads; use docs' recorded times
    python benches/compare.py --markdown   # emit the table as Markdown
    python benches/compare.py --update-docs  # also rewrite the table block of docs/performance.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SNIPPET = HERE / "_peer_snippets" / "peer_timing.py"
DOCS = ROOT / "docs" / "performance.md"
DEFAULT_PEER_VENV = "/opt/polygram-peer"
PEER_REQUIREMENT = "polygram[plot,opt,sae]==0.0.1"
PEER_VERSION = "0.0.1"

BEGIN = "<!-- compare.py:begin -->"
END = "<!-- compare.py:end -->"
RECORDED_RE = re.compile(r"<!-- peer-timings: (\{.*?\}) -->", re.S)

ORDER = ["gram_4", "gram_8", "sweep_1d_40", "sweep_2d_24", "sweep_2d_200", "import"]
#: Peer workloads that take seconds to minutes; ``--quick`` uses recorded times.
SLOW_PEER = ["sweep_2d_24", "sweep_2d_200"]
#: Peer workloads timed with one call and no warm-up (the 24×24 run warms up).
SINGLE_SHOT_PEER = ["sweep_2d_200"]
PEER_TIMEOUT_S = 480.0
IMPORT_REPEATS = 5


def load_snippet() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_timing", SNIPPET)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["peer_timing"] = mod
    spec.loader.exec_module(mod)
    return mod


pt = load_snippet()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- numpy


def np_states(knobs: np.ndarray) -> np.ndarray:
    """Rung-1 MPS amplitudes (spec 01 §1.2.2) of knob rows ``(..., 4)`` → ``(..., 8)``."""
    a, b, g, phi = (knobs[..., k] for k in range(4))
    a0, a1 = np.cos(a / 2), np.sin(a / 2)
    c1, s1 = np.cos((a + b) / 2), np.sin((a + b) / 2)
    c2, s2 = np.cos((b + g) / 2), np.sin((b + g) / 2)
    p = np.exp(-0.5j * phi)
    pb = p.conj()
    s = np.empty((*knobs.shape[:-1], 8), dtype=np.complex128)
    s[..., 0] = a0 * c1 * c2 * p
    s[..., 1] = a0 * c1 * s2 * p
    s[..., 2] = -a0 * s1 * s2 * pb
    s[..., 3] = a0 * s1 * c2 * pb
    s[..., 4] = -a1 * s1 * c2 * p
    s[..., 5] = -a1 * s1 * s2 * p
    s[..., 6] = -a1 * c1 * s2 * pb
    s[..., 7] = a1 * c1 * c2 * pb
    return s


def np_gram(table: np.ndarray) -> np.ndarray:
    s = np_states(table)
    return s.conj() @ s.T


def np_schmidt_ranks(s: np.ndarray) -> np.ndarray:
    """Rank of the q0 | q1q2 cut: singular values of the 2×4 reshape from the
    2×2 Gram of its rows (trace and determinant), threshold 1e-9."""
    r0, r1 = s[..., :4], s[..., 4:]
    n0 = np.sum(r0.real**2 + r0.imag**2, axis=-1)
    n1 = np.sum(r1.real**2 + r1.imag**2, axis=-1)
    x = np.sum(r0.conj() * r1, axis=-1)
    det = np.maximum(n0 * n1 - (x.real**2 + x.imag**2), 0.0)
    tr = n0 + n1
    lmax = 0.5 * (tr + np.sqrt(np.maximum(tr * tr - 4 * det, 0.0)))
    lmin = np.divide(det, lmax, out=np.zeros_like(det), where=lmax > 0)
    return (np.sqrt(lmax) > 1e-9).astype(np.int64) + (np.sqrt(lmin) > 1e-9)


def np_sweep(
    base: np.ndarray,
    axes: Sequence[tuple[int, int, np.ndarray]],
    clusters: Sequence[int],
    target: tuple[int, int],
) -> dict[str, np.ndarray]:
    """Every statistic of an interference sweep, batched over all grid points.

    ``axes``: ``(feature, knob column, values)``; points in C order."""
    n = base.shape[0]
    dims = tuple(len(v) for *_, v in axes)
    points = math.prod(dims)
    knobs = np.broadcast_to(base, (points, *base.shape)).copy()
    for (f, col, _), grid in zip(axes, np.meshgrid(*(v for *_, v in axes), indexing="ij")):
        knobs[:, f, col] = grid.ravel()
    s = np_states(knobs)
    gram = s.conj() @ np.swapaxes(s, 1, 2)
    ov = gram.real**2 + gram.imag**2
    cl = np.asarray(clusters)
    iu, ju = np.triu_indices(n, 1)
    pairs = ov[:, iu, ju]
    same = cl[iu] == cl[ju]
    nan = np.full(points, np.nan)
    sibling = pairs[:, same].mean(axis=1) if same.any() else nan
    cross = pairs[:, ~same].mean(axis=1) if (~same).any() else nan
    intra = [
        pairs[:, same & (cl[iu] == c)].mean(axis=1)
        for c in np.unique(cl)
        if np.count_nonzero(cl == c) >= 2
    ]
    cross_max = pairs[:, ~same].max(axis=1) if (~same).any() else 0.0
    separation = np.min(intra, axis=0) - cross_max if intra else nan
    a, b = target
    c = ov[:, a, b][:, None]
    sib_a = [k for k in range(n) if cl[k] == cl[a] and k != a]
    sib_b = [k for k in range(n) if cl[k] == cl[b] and k != b]
    ordering = np.all(ov[:, a, sib_a] + 1e-12 >= c, axis=1) & np.all(
        ov[:, b, sib_b] + 1e-12 >= c, axis=1
    )
    return {
        "gram": gram.reshape(*dims, n, n),
        "overlaps": ov[:, a, b].reshape(dims),
        "schmidt_ranks": np_schmidt_ranks(s).reshape(*dims, n),
        "sibling": sibling.reshape(dims),
        "cross_cluster": cross.reshape(dims),
        "tier_separation": separation.reshape(dims),
        "hierarchical_ordering_preserved": ordering.reshape(dims),
    }


def np_call(workload: str) -> tuple[Callable[[], Any], Callable[[Any], float]]:
    """The numpy counterpart of ``peer_timing.make_call``."""
    kind, rows, sweep, _ = pt.WORKLOADS[workload]
    table = np.array([r[2:] for r in rows], dtype=np.float64)
    if kind == "per_call":
        return (lambda: np_gram(table)), lambda g: float(np.sum(np.abs(g) ** 2))
    names = [r[0] for r in rows]
    order = list(dict.fromkeys(r[1] for r in rows))
    clusters = [order.index(r[1]) for r in rows]
    target = (names.index(pt.TARGET[0]), names.index(pt.TARGET[1]))
    axes = [
        (names.index(key.split(".")[0]), 3, values) for key, values in pt.sweep_axes(*sweep).items()
    ]
    return (lambda: np_sweep(table, axes, clusters, target)), lambda r: float(np.sum(r["overlaps"]))


def check_numpy_agrees() -> list[str]:
    """The numpy implementation computes what ``polygram`` computes."""
    problems: list[str] = []
    for w in ("gram_4", "gram_8"):
        ours, _ = pt.make_call(w)
        mine, _ = np_call(w)
        err = float(np.max(np.abs(np.asarray(ours()) - mine())))
        if err > 1e-12:
            problems.append(f"{w}: max |ΔG| = {err:.2e}")
    for w in ("sweep_1d_40", "sweep_2d_24"):
        ours, _ = pt.make_call(w)
        mine, _ = np_call(w)
        r, m = ours(), mine()
        checks = {
            "gram": float(np.max(np.abs(r.gram_matrices - m["gram"]))),
            "overlaps": float(np.max(np.abs(r.overlaps - m["overlaps"]))),
            "schmidt_ranks": float(np.max(np.abs(r.schmidt_ranks - m["schmidt_ranks"]))),
            "sibling": float(np.nanmax(np.abs(r.tier_stats["sibling"] - m["sibling"]))),
            "cross": float(np.nanmax(np.abs(r.tier_stats["cross_cluster"] - m["cross_cluster"]))),
            "ordering": float(
                np.sum(
                    r.assertion_pass["hierarchical_ordering_preserved"]
                    != m["hierarchical_ordering_preserved"]
                )
            ),
        }
        if r.tier_separation is not None:
            checks["separation"] = float(np.max(np.abs(r.tier_separation - m["tier_separation"])))
        problems += [f"{w}: {k} differs by {v:.2e}" for k, v in checks.items() if v > 1e-12]
    return problems


# --------------------------------------------------------------------------- peer


def peer_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def peer_ok(py: Path) -> str | None:
    """The installed original's version, or None when it cannot be imported."""
    if not py.exists():
        return None
    code = "import importlib.metadata as m, polygram; print(m.version('polygram'))"
    try:
        out = subprocess.run(
            [str(py), "-I", "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tempfile.gettempdir(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_peer(venv: Path) -> Path | None:
    """The peer venv's interpreter, creating the venv (outside the repo) when
    missing; None (and a "peer unavailable" line) when that fails."""
    py = peer_python(venv)
    if peer_ok(py) == PEER_VERSION:
        return py
    log(f"creating the peer venv at {venv} ({PEER_REQUIREMENT}) ...")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(py), "-m", "pip", "install", "--quiet", PEER_REQUIREMENT],
    ]
    try:
        for cmd in steps:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
                raise RuntimeError(f"`{' '.join(cmd)}` failed: {' | '.join(tail)}")
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"peer unavailable: {exc}")
        return None
    version = peer_ok(py)
    if version != PEER_VERSION:
        print(f"peer unavailable: {venv} holds polygram {version!r}, not {PEER_VERSION}")
        return None
    return py


def run_peer(py: Path, workloads: list[str], budget_s: float) -> dict[str, dict[str, Any]]:
    """Run the timing snippet in the peer venv; keeps what finished on a crash/timeout."""
    spec = {"workloads": workloads, "budget_s": budget_s, "single_shot": SINGLE_SHOT_PEER}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "out.jsonl", "w+") as out:
        # -I: the peer sees neither this checkout nor PYTHONPATH; cwd outside the repo.
        proc = subprocess.Popen(
            [str(py), "-I", str(SNIPPET), json.dumps(spec)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp,
        )
        try:
            _, err = proc.communicate(timeout=PEER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            log(f"peer: timed out after {PEER_TIMEOUT_S:.0f} s; keeping finished workloads")
        if proc.returncode:
            log(f"peer: exit {proc.returncode}: {err.strip()[-500:]}")
        out.seek(0)
        lines = [json.loads(x) for x in out.read().splitlines() if x.strip()]
    results: dict[str, dict[str, Any]] = {}
    for rec in lines[1:] if lines else []:
        if "error" in rec:
            log(f"peer: {rec['workload']}: {rec['error']}")
        else:
            results[rec["workload"]] = rec
    return results


# --------------------------------------------------------------------------- import


def import_once(python: str, module: str) -> float:
    """Seconds for ``import <module>`` in a fresh interpreter (``-I``, cwd
    outside the repo), measured inside it with ``perf_counter``."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [python, "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tempfile.gettempdir(),
    )
    if out.returncode != 0:
        raise RuntimeError(f"{python}: import {module} failed: {out.stderr.strip()[-300:]}")
    return float(out.stdout.strip().splitlines()[-1])


def time_imports(
    targets: dict[str, tuple[str, str]], repeats: int = IMPORT_REPEATS
) -> dict[str, dict[str, Any]]:
    """Best and median of ``repeats`` fresh-interpreter imports per target
    (``name → (python, module)``), interleaved round by round so background
    load hits every target alike."""
    times: dict[str, list[float]] = {k: [] for k in targets}
    for _ in range(repeats):
        for k, (python, module) in targets.items():
            times[k].append(import_once(python, module))
    return {
        k: {"best": min(v), "median": statistics.median(v), "n": len(v)} for k, v in times.items()
    }


# --------------------------------------------------------------------------- report


def loadavg() -> str:
    """1-minute load average (other jobs on a 2-core machine move the numbers)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "unknown"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = "unknown"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "rust", "python"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        commit = (head or "unknown") + (
            " + uncommitted changes in rust/ or python/" if dirty else ""
        )
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": str(affinity),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "date": dt.date.today().isoformat(),
        "commit": commit,
        "load": loadavg(),
    }


def fmt_time(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale:
            v = s / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{s / 1e-9:.2g} ns"


def fmt_n(n: int) -> str:
    return f"{n / 1e6:.3g}M" if n >= 1_000_000 else f"{n / 1e3:.3g}k" if n >= 10_000 else str(n)


def cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "skipped"
    mark = " †" if r.get("recorded") else ""
    return f"{fmt_time(r['best'])} / {fmt_time(r['median'])} (N={fmt_n(int(r['n']))}){mark}"


def ratio(num: dict[str, Any] | None, den: dict[str, Any] | None) -> str:
    if num is None or den is None or den["best"] <= 0:
        return "—"
    x = num["best"] / den["best"]
    return f"{x:,.0f}×" if x >= 100 else f"{x:.3g}×"


def table_rows(results: dict[str, dict[str, dict[str, Any] | None]]) -> list[list[str]]:
    rows = []
    for w in ORDER:
        r = results.get(w)
        if r is None:
            continue
        label = "`import polygram` (fresh interpreter)" if w == "import" else pt.WORKLOADS[w][3]
        rows.append(
            [
                label,
                cell(r["ours"]),
                cell(r["original"]),
                cell(r["numpy"]),
                ratio(r["original"], r["ours"]),
                ratio(r["numpy"], r["ours"]),
            ]
        )
    return rows


HEADER = [
    "Workload",
    "ours best / median (N)",
    "original 0.0.1 best / median (N)",
    "numpy best / median (N)",
    "original ÷ ours",
    "numpy ÷ ours",
]


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def render_markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] + ["---:"] * 5) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def targets(results: dict[str, dict[str, dict[str, Any] | None]]) -> list[str]:
    def speedup(w: str) -> float | None:
        r = results.get(w, {})
        o, p = r.get("ours"), r.get("original")
        return p["best"] / o["best"] if o and p else None

    out = []
    for w, need, what in (
        ("gram_8", 200.0, "Gram of 8 features ≥ 200× faster than the original"),
        ("sweep_2d_200", 10_000.0, "200×200 sweep ≥ 10,000× faster than the original"),
    ):
        x = speedup(w)
        verdict = "n/a (no peer timing)" if x is None else ("MET" if x >= need else "NOT MET")
        shown = "" if x is None else f" (measured {x:,.0f}×)"
        out.append(f"- {what}: {verdict}{shown}")
    imp = results.get("import", {})
    o, p = imp.get("ours"), imp.get("original")
    if o and p:
        verdict = "MET" if o["best"] <= p["best"] else "NOT MET"
        shown = f" ({fmt_time(o['best'])} vs {fmt_time(p['best'])})"
    else:
        verdict, shown = "n/a (no peer timing)", ""
    out.append(f"- `import polygram` no slower than the original's: {verdict}{shown}")
    return out


def recorded_peer() -> dict[str, dict[str, Any]]:
    """Peer timings recorded in docs/performance.md by an earlier full run."""
    if not DOCS.exists():
        return {}
    m = RECORDED_RE.search(DOCS.read_text(encoding="utf-8"))
    return json.loads(m.group(1)) if m else {}


def docs_block(
    info: dict[str, str],
    text_md: str,
    target_lines: list[str],
    notes: list[str],
    record: dict[str, dict[str, Any]],
    argv: list[str],
) -> str:
    cmd = " ".join(["python benches/compare.py", *argv])
    lines = [
        BEGIN,
        f"Measured {info['date']} with `{cmd}` on {info['cores']} cores of an {info['cpu']} "
        f"(Python {info['python']}, numpy {info['numpy']}, "
        f"`OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}`; commit {info['commit']}; "
        f"1-min load average {info['load']} before and {loadavg()} after the run):",
        "",
        text_md,
        "",
        *notes,
        "",
        "Targets:",
        "",
        *target_lines,
        "",
        "<!-- peer-timings: " + json.dumps(record, sort_keys=True) + " -->",
        END,
    ]
    return "\n".join(lines)


def update_docs(block: str) -> None:
    if not DOCS.exists():
        raise SystemExit(f"{DOCS} does not exist; write the page first (see its intro)")
    text = DOCS.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOCS} has no {BEGIN} … {END} block to replace")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(head + block + tail, encoding="utf-8")
    log(f"updated {DOCS.relative_to(ROOT)}")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the slow peer workloads")
    ap.add_argument("--markdown", action="store_true", help="emit the table as Markdown")
    ap.add_argument("--update-docs", action="store_true", help="rewrite the docs table block")
    ap.add_argument("--no-peer", action="store_true", help="do not time the original")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per fast workload")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)

    info = machine()
    log(
        f"machine: {info['cores']} cores, {info['cpu']}; Python {info['python']}, "
        f"numpy {info['numpy']}; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}; "
        f"commit {info['commit']}; load {info['load']}"
    )
    problems = check_numpy_agrees()
    if problems:
        log(
            "WARNING: the numpy implementation disagrees with polygram:\n  " + "\n  ".join(problems)
        )
    else:
        log("numpy implementation agrees with polygram (Gram, sweeps: |Δ| ≤ 1e-12)")

    workloads = [w for w in ORDER if w != "import"]
    results: dict[str, dict[str, dict[str, Any] | None]] = {w: {} for w in ORDER}
    for w in workloads:
        log(f"ours:  {w}")
        results[w]["ours"] = pt.run_workload(w, args.budget)
        fn, checksum = np_call(w)
        log(f"numpy: {w}")
        m = pt.measure(fn, args.budget)
        m["checksum"] = checksum(m.pop("result"))
        results[w]["numpy"] = m

    venv = Path(os.environ.get("POLYGRAM_PEER_VENV", DEFAULT_PEER_VENV))
    py = None if args.no_peer else ensure_peer(venv)
    imports = {"ours": (sys.executable, "polygram"), "numpy": (sys.executable, "numpy")}
    if py is not None:
        imports["original"] = (str(py), "polygram")
    log(f"import: {', '.join(imports)} (interleaved, {IMPORT_REPEATS} each)")
    try:
        results["import"] |= time_imports(imports)
    except RuntimeError as exc:
        log(f"import: {exc}")
        results["import"] |= time_imports({k: imports[k] for k in ("ours", "numpy")})

    recorded = recorded_peer()
    peer: dict[str, dict[str, Any]] = {}
    if "original" in results["import"]:
        peer["import"] = results["import"]["original"] or {}
    if py is not None:
        todo = [w for w in workloads if not (args.quick and w in SLOW_PEER)]
        eta = "~15 s" if args.quick else "1-4 min"
        log(f"original: {', '.join(todo)} ({eta})")
        t0 = time.perf_counter()
        peer |= run_peer(py, todo, args.budget)
        log(f"original: done in {time.perf_counter() - t0:.0f} s")
    record: dict[str, dict[str, Any]] = {}
    mismatches: list[str] = []
    for w in ORDER:
        r = peer.get(w)
        if r is None and py is not None and args.quick and w in SLOW_PEER and w in recorded:
            r = {**recorded[w], "recorded": True}
        results[w]["original"] = r
        if r is not None:
            record[w] = {k: r[k] for k in ("best", "median", "n") if k in r}
            record[w]["date"] = r.get("date", info["date"])
        ours = results[w]["ours"]
        for impl in ("original", "numpy"):
            other = results[w].get(impl)
            if (
                ours
                and other
                and "checksum" in other
                and "checksum" in ours
                and not math.isclose(other["checksum"], ours["checksum"], rel_tol=1e-9)
            ):
                mismatches.append(
                    f"- WARNING {w}: checksum of {impl} {other['checksum']!r} "
                    f"≠ ours {ours['checksum']!r}"
                )
    notes: list[str] = list(mismatches)
    originals = [r.get("original") or {} for r in results.values()]
    recorded_dates = sorted({str(o["date"]) for o in originals if o.get("recorded")})
    if recorded_dates:
        notes.append(
            f"- † original's time recorded by an earlier full run ({', '.join(recorded_dates)}), "
            "not re-measured (`--quick`)."
        )
    notes += [
        "- Times are per call: best / median over N timed calls (`time.perf_counter`; "
        "fast calls are timed in rounds of many calls, best/median are over rounds). "
        "Ratios use the best times.",
        "- Sweeps time `Experiment(...).run()` including construction; the original's "
        "200×200 sweep is a single call (N=1) warmed up by its 24×24 runs.",
        "- numpy: hand-written vectorised implementation (all grid points at once, "
        "`G = conj(S) @ S.T`); for `import` it is `import numpy` alone, the floor "
        "of both packages.",
    ]
    if not mismatches:
        notes.append(
            "- Results agree: every measured workload's checksum (sum of |G|² or of the "
            "target overlap) matches across the implementations to 1e-9 relative."
        )

    rows = table_rows(results)
    md = render_markdown(rows)
    tlines = targets(results)
    if args.markdown:
        print(md)
    else:
        print(render_text(rows))
    print()
    print("\n".join(notes))
    print()
    print("Targets:")
    print("\n".join(tlines))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=1))
    if args.update_docs:
        shown = [f for f, on in (("--quick", args.quick), ("--no-peer", args.no_peer)) if on]
        if args.budget != ap.get_default("budget"):
            shown.append(f"--budget {args.budget:g}")
        update_docs(docs_block(info, md, tlines, notes, record, shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
