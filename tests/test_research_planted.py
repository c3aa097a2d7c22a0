"""examples/research_planted_redundancy.py on a small setting: the loop
recovers near-duplicate planted pairs and nothing else in the panels."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import pytest

from conftest import load_example


def load() -> ModuleType:
    return load_example("research_planted_redundancy")


@pytest.mark.torch
def test_planted_pairs_small(tmp_path: Path) -> None:
    summary = load().main(tmp_path, noise_levels=(0.1, 4.0), n_panels=2, n_prompts=20, seed=0)
    assert summary == tmp_path / "planted.json"
    payload = json.loads(summary.read_text())
    assert payload["settings"]["noise_levels"] == [0.1, 4.0]
    low, high = payload["rows"]
    with (tmp_path / "planted.csv").open() as fh:
        assert [float(r["noise"]) for r in csv.DictReader(fh)] == [0.1, 4.0]
    assert (tmp_path / "planted.png").stat().st_size > 1000

    # two panels of two planted pairs and four independent features: 4 + 52 pairs
    assert (low["panel_planted_pairs"], low["panel_other_pairs"]) == (4, 52)
    # near-duplicates (cos ≈ 0.995): every planted pair confirmed, no other pair
    assert low["planted_cosine"] > 0.99
    assert (low["confirmed_planted"], low["confirmed_other"]) == (4, 0)
    assert low["recall"] == 1.0 and low["precision"] == 1.0
    # … and the chained Compressor zeroes one member of each, nothing else
    assert (low["compress_planted_zeroed"], low["compress_other_zeroed"]) == (4, 0)
    # the epoch over the whole SAE confirms every planted pair too
    assert low["epoch_confirmed_planted"] == 6
    # nearly unrelated "duplicates" (cos ≈ 0.16) co-fire too rarely to pass the gate
    assert high["planted_cosine"] < 0.3
    assert high["confirmed_planted"] == 0 and high["compress_planted_zeroed"] == 0
    assert high["jaccard_planted_mean"] < low["jaccard_planted_mean"]
    # regrowing the epoch's zeroed slots does not lose reconstruction
    for row in (low, high):
        assert row["ve_regrown"] >= row["ve_epoch"]
