"""The toy-SAE walk — the main job of this repository.

toy SAE (tests/fixtures/toy_sae.json) → selection of 4 features → rung-1
Dictionary (β per cluster, γ from per-cluster PCA) → triage report →
1-D and 2-D phase sweeps → grid cancellation with its structural floor →
q-orca-verified ``.q.orca.md`` machines, CSV, summaries and figures.

    polygram run examples/import_from_sae.py --output-dir results/

A cross-cluster pair with opposite-sign β already sits at its phase-only
floor M − |V| (V < 0), so phase search cannot lower it (efficiency "n/a");
the walk shows that, then cancels the within-cluster pair the triage ranks
first, which has a real phase gap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polygram import Cancellation, Experiment, from_sae_lens, load_toy_sae, verify_qorca
from polygram._io import atomic_write_text
from polygram.analysis import render_report, triage_dictionary

TOY_SAE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "toy_sae.json"
FEATURE_IDS = [0, 1, 4, 5]


def _verified(path: Path, dictionary: object) -> None:
    check = verify_qorca(path, dictionary=dictionary)  # type: ignore[arg-type]
    if not check.valid:
        raise RuntimeError(f"q-orca rejected {path}: {check.errors}")
    print(f"q-orca: {path.name} valid (Gram max |diff| {check.gram_max_abs_diff:.1e})")


def main(output_dir: str | Path = "examples/output", n_points: int = 40) -> dict[str, Path]:
    out = Path(output_dir)
    records = load_toy_sae(TOY_SAE)
    dictionary, report = from_sae_lens(
        records, FEATURE_IDS, name="ToySAEAnimals4", assign_gamma=True
    )
    print(
        f"imported {report.n_selected} of {report.n_input_features} features "
        f"({report.cluster_method}); β variance explained {report.beta_variance_explained:.4f}, "
        f"tier preservation {report.tier_preservation:.4f}"
    )
    files: dict[str, Path] = {}

    triage = triage_dictionary(dictionary)
    files["triage"] = atomic_write_text(
        out / "triage_report.md",
        render_report(triage, sae_source=str(TOY_SAE.name), feature_ids=FEATURE_IDS),
    )
    a, b = dictionary.feature_names[0], dictionary.feature_names[2]  # a cross-cluster pair

    sweep = Experiment(
        name="ToySAEAnimals4",
        dictionary=dictionary,
        target_pair=(a, b),
        sweep={f"{b}.phi": np.linspace(0.0, np.pi, n_points)},
        measures=["overlap", "gram_matrix", "schmidt_rank"],
        assertions=["hierarchical_ordering_preserved"],
    )
    files |= sweep.materialize(out)
    result = sweep.run()
    result.write_summary(files["summary"])
    files["csv"] = result.to_csv(out / "ToySAEAnimals4_result.csv")
    files["plot_1d"] = result.plot(out / "ToySAEAnimals4_overlap.png")
    _verified(files["machine"], sweep.dictionary_at([n_points // 2]))

    landscape = Experiment(
        name="ToySAEAnimals4_2d",
        dictionary=dictionary,
        target_pair=(a, b),
        sweep={f"{a}.phi": np.linspace(0, np.pi, 24), f"{b}.phi": np.linspace(0, np.pi, 24)},
    ).run()
    files["plot_2d"] = landscape.plot(out / "ToySAEAnimals4_overlap_2d_24x24.png")

    # Cross-cluster: already at the floor; within-cluster: the largest triage gap.
    best = max(triage.pairs, key=lambda p: p.cancellation_gap)
    for pair in ((a, b), (best.feature_a, best.feature_b)):
        cancellation = Cancellation(
            dictionary=dictionary,
            target_pair=pair,
            tolerance=0.05,
            preserve_tiers=pair == (a, b),
            optimize={"method": "grid", "max_steps": 51},
        )
        res = cancellation.run()
        tag = f"{pair[0]}_x_{pair[1]}"
        written = res.materialize(out / tag)
        files[f"cancel_{tag}"] = written["summary"]
        files[f"cancel_plot_{tag}"] = res.plot(out / tag / "grid.png")
        _verified(written["machine"], res.dictionary_at_optimum)
        eff = res.cancellation_efficiency
        print(
            f"cancel {pair[0]} × {pair[1]}: {res.before_overlap:.4f} → {res.after_overlap:.4f} "
            f"(floor {res.structural_floor:.4f}, efficiency "
            f"{'n/a' if eff is None else f'{eff:.4f}'})"
        )
    return files


if __name__ == "__main__":
    main()
