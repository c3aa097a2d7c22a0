"""Research walk: where does phase-only cancellation help on the toy SAE?

For every 4-feature selection of the bundled toy SAE (C(16, 4) = 1820
dictionaries, 10,920 pairs) this imports the selection with
``from_sae_lens(..., assign_gamma=True)``, predicts every pair's phase law
(M, V, floor, gap: one Rust call per dictionary) and runs a 51×51 grid
cancellation with tier preservation on every pair, then compares the grid
optimum with the closed-form floor.

    polygram run examples/research_gap_survey.py --output-dir results/survey

Writes ``gap_survey.csv`` (one row per pair), ``gap_survey.md`` (the summary
quoted in docs/research/phase-gap-survey.md) and ``gap_survey.png``.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from pathlib import Path

import numpy as np

from polygram import Cancellation, from_sae_lens, load_toy_sae
from polygram._io import atomic_write_text
from polygram.analysis import triage_dictionary
from polygram.plotting import pyplot, save_figure

TOY_SAE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "toy_sae.json"
COLUMNS = [
    "feature_ids",
    "feature_a",
    "feature_b",
    "tier",
    "current",
    "floor",
    "gap",
    "after_grid",
    "feasible",
    "efficiency",
]


def main(output_dir: str | Path = "examples/output", size: int = 4, steps: int = 51) -> Path:
    out = Path(output_dir)
    records = load_toy_sae(TOY_SAE)
    rows: list[list[object]] = []
    selections = list(itertools.combinations(sorted(records), size))
    start = time.perf_counter()
    for ids in selections:
        d, _ = from_sae_lens(records, list(ids), name="Survey", assign_gamma=True)
        for p in triage_dictionary(d).pairs:
            res = Cancellation(
                d,
                (p.feature_a, p.feature_b),
                optimize={"method": "grid", "max_steps": steps},
                lean=True,
            ).run()
            eff = res.cancellation_efficiency
            rows.append(
                [
                    " ".join(map(str, ids)),
                    p.feature_a,
                    p.feature_b,
                    "cross" if p.is_cross_cluster else "intra",
                    p.current_overlap,
                    p.structural_floor,
                    p.cancellation_gap,
                    res.after_overlap,
                    res.feasible_count,
                    "" if eff is None else eff,
                ]
            )
    seconds = time.perf_counter() - start

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows([[f"{x:.9g}" if isinstance(x, float) else x for x in r] for r in rows])
    atomic_write_text(out / "gap_survey.csv", buf.getvalue())

    tier = np.array([r[3] for r in rows])
    gap = np.array([r[6] for r in rows], dtype=float)
    floor = np.array([r[5] for r in rows], dtype=float)
    after = np.array([r[7] for r in rows], dtype=float)
    lines = [
        f"# Phase-gap survey: {len(rows):,} pairs in {len(selections):,} dictionaries "
        f"({seconds:.1f} s, grid {steps}×{steps} per pair)",
        "",
        "| tier | pairs | gap > 1e-9 | median gap | max gap | after − floor (max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in ("intra", "cross"):
        m = tier == t
        has = gap[m] > 1e-9
        lines.append(
            f"| {t} | {int(m.sum()):,} | {int(has.sum()):,} ({has.mean():.1%}) | "
            f"{np.median(gap[m]):.4f} | {gap[m].max():.4f} | "
            f"{(after[m] - floor[m]).max():.2e} |"
        )
    below = int(np.sum(after < floor - 1e-12))
    lines += ["", f"Grid optima below the closed-form floor (should be 0): {below}"]
    summary = "\n".join(lines) + "\n"
    atomic_write_text(out / "gap_survey.md", summary)
    print(summary)

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, max(gap.max(), 1e-3), 40)
    for t, colour in (("intra", "tab:green"), ("cross", "tab:grey")):
        ax.hist(gap[tier == t], bins=bins, alpha=0.7, color=colour, label=f"{t}-cluster pairs")
    ax.set_xlabel("phase-only cancellation gap  (current − floor)")
    ax.set_ylabel("pairs")
    ax.set_yscale("log")
    ax.set_title("Toy SAE, every 4-feature selection (assign_gamma=True)")
    ax.legend()
    save_figure(fig, out / "gap_survey.png")
    return out / "gap_survey.md"


if __name__ == "__main__":
    main()
