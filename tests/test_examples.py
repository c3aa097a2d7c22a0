"""The research walk runs and its claims hold on a small survey."""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

from conftest import load_example


def load(name: str) -> ModuleType:
    return load_example(name)


def test_gap_survey_on_pairs(tmp_path: Path) -> None:
    summary = load("research_gap_survey").main(tmp_path, size=2, steps=7).read_text()
    assert "120 pairs in 120 dictionaries" in summary
    assert "below the closed-form floor (should be 0): 0" in summary
    with (tmp_path / "gap_survey.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 120
    for r in rows:
        # odd steps sample δ = π: the grid reaches the closed-form floor
        assert abs(float(r["after_grid"]) - float(r["floor"])) < 1e-9
        if r["tier"] == "cross":
            # two clusters → β = ∓0.5: V < 0, the pair already sits at its floor
            assert float(r["gap"]) < 1e-9
    assert (tmp_path / "gap_survey.png").stat().st_size > 1000
