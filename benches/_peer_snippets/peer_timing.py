"""Workloads and timers shared by ``benches/compare.py`` and the peer subprocess.

Only the public Polygram API of the seed README is used (``Dictionary``,
``Feature``, ``MPSRung1``, ``Experiment``), so the same file times this
package (imported in-process by ``compare.py``) and the PyPI original (run as
a script with the peer venv's interpreter)::

    /opt/polygram-peer/bin/python -I peer_timing.py '{"workloads": ["gram_8"], "budget_s": 1}'

As a script it prints one JSON object per line: one per workload as it
finishes, so a crash or a timeout keeps the finished ones.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: Knob rows ``(name, cluster, alpha, beta, gamma, phi)``.
QUICKSTART: list[tuple[str, str, float, float, float, float]] = [
    ("dog_poodle", "dogs", 0.0, -0.5, 0.0, 0.0),
    ("dog_beagle", "dogs", 0.0, -0.5, 0.0, 0.0),
    ("bird_hawk", "birds", 0.0, 0.5, 0.0, 0.0),
    ("bird_sparrow", "birds", 0.0, 0.5, 0.0, 0.0),
]

#: Eight features in four clusters with every knob in use (the table of the
#: criterion bench ``gram/mps/8``).
EIGHT: list[tuple[str, str, float, float, float, float]] = [
    (f"f{k}", f"c{k // 2}", 0.15 * k, -0.6 + 0.16 * k, 0.05 * k - 0.2, 0.3 * k) for k in range(8)
]

TARGET = ("dog_poodle", "bird_hawk")
ASSERTIONS = ["hierarchical_ordering_preserved"]
MEASURES = ["overlap", "gram_matrix", "schmidt_rank"]


def hierarchy_of(rows: list[tuple[str, str, float, float, float, float]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, cluster, *_ in rows:
        out.setdefault(cluster, []).append(name)
    return out


def sweep_axes(n_axes: int, n: int) -> dict[str, np.ndarray]:
    """1 axis: ``bird_hawk.phi``; 2 axes: ``dog_poodle.phi`` × ``bird_hawk.phi``;
    each ``linspace(0, π, n)``."""
    keys = ["bird_hawk.phi"] if n_axes == 1 else ["dog_poodle.phi", "bird_hawk.phi"]
    return {k: np.linspace(0.0, np.pi, n) for k in keys}


#: Workload id → (kind, dictionary rows, sweep (n_axes, n) or None, label).
WORKLOADS: dict[str, tuple[str, list[Any], tuple[int, int] | None, str]] = {
    "gram_4": ("per_call", QUICKSTART, None, "Gram, 4 features (per call)"),
    "gram_8": ("per_call", EIGHT, None, "Gram, 8 features (per call)"),
    "sweep_1d_40": ("sweep", QUICKSTART, (1, 40), "1-D sweep, 40 points"),
    "sweep_2d_24": ("sweep", QUICKSTART, (2, 24), "2-D sweep, 24×24"),
    "sweep_2d_200": ("sweep", QUICKSTART, (2, 200), "2-D sweep, 200×200"),
}


def build_dictionary(rows: list[tuple[str, str, float, float, float, float]]) -> Any:
    from polygram import Dictionary, Feature, MPSRung1

    features = [
        Feature(name, cluster, alpha=a, beta=b, gamma=g, phi=p)
        for name, cluster, a, b, g, p in rows
    ]
    return Dictionary(
        name="AnimalsInterference" if rows is QUICKSTART else "EightFeatures",
        features=features,
        hierarchy=hierarchy_of(rows),
        encoding=MPSRung1(bond_dim=2, phase_knobs=True),
    )


def make_call(workload: str) -> tuple[Callable[[], Any], Callable[[Any], float]]:
    """The timed callable of a workload and a checksum of its result (the sum
    of ``|G_ab|²`` over the sweep, or of ``|G|²`` over the Gram)."""
    kind, rows, sweep, _ = WORKLOADS[workload]
    d = build_dictionary(rows)
    if kind == "per_call":
        return d.gram, lambda g: float(np.sum(np.abs(np.asarray(g)) ** 2))
    from polygram import Experiment

    assert sweep is not None
    axes = sweep_axes(*sweep)

    def run() -> Any:
        return Experiment(
            name="AnimalsInterference",
            dictionary=d,
            target_pair=TARGET,
            sweep=axes,
            measures=MEASURES,
            assertions=ASSERTIONS,
        ).run()

    return run, lambda r: float(np.sum(np.asarray(r.overlaps)))


def measure(
    fn: Callable[[], Any],
    budget_s: float,
    *,
    min_rounds: int = 3,
    max_rounds: int = 50,
    round_s: float = 0.05,
    warmup: bool = True,
) -> dict[str, Any]:
    """Time ``fn`` in rounds of ``number`` calls (``number`` grows until a round
    takes ``round_s``), as many rounds as fit in ``budget_s`` within
    ``[min_rounds, max_rounds]``.  Reports the per-call best and median over
    rounds, and ``n`` = total timed calls.  Without ``warmup`` and with
    ``max_rounds == 1`` the single timed call is also the first one."""
    last: Any = None
    if warmup:
        last = fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            last = fn()
        dt = time.perf_counter() - t0
        if dt >= round_s or max_rounds == 1:
            break
        number *= max(2, min(10, int(round_s / max(dt, 1e-9))))
    times = [dt / number]
    rounds = max(min_rounds, min(max_rounds, int(budget_s / max(dt, 1e-9))))
    for _ in range(rounds - 1):
        t0 = time.perf_counter()
        for _ in range(number):
            last = fn()
        times.append((time.perf_counter() - t0) / number)
    return {
        "best": min(times),
        "median": statistics.median(times),
        "rounds": len(times),
        "number": number,
        "n": len(times) * number,
        "result": last,
    }


def run_workload(workload: str, budget_s: float, single_shot: bool = False) -> dict[str, Any]:
    fn, checksum = make_call(workload)
    if single_shot:
        m = measure(fn, 0.0, min_rounds=1, max_rounds=1, warmup=False)
    else:
        m = measure(fn, budget_s)
    result = m.pop("result")
    return {"workload": workload, **m, "checksum": checksum(result)}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    import polygram

    version = getattr(polygram, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("polygram")
    print(json.dumps({"version": version, "numpy": np.__version__}), flush=True)
    single = set(spec.get("single_shot", []))
    for w in spec["workloads"]:
        try:
            out = run_workload(w, float(spec.get("budget_s", 2.0)), single_shot=w in single)
        except Exception as exc:  # report and go on with the next workload
            out = {"workload": w, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
