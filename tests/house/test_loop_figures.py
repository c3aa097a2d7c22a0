"""The loop's figures: each writes a PNG of the declared size from real report
objects, and refuses inputs it cannot draw."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from polygram.behavioural.report import CandidatePair, ValidationReport
from polygram.behavioural.stats import summarise
from polygram.loop_figures import plot_epoch, plot_firing_frequencies, plot_validation

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _report(measured: bool = True) -> ValidationReport:
    rng = np.random.default_rng(3)
    ids = [3, 7, 11, 12, 20, 31]
    pairs = []
    for i, j in combinations(ids, 2):
        poly, dec = float(rng.uniform(0.2, 1)), float(rng.uniform(0, 1))
        jac = float(rng.choice([0.0, rng.uniform(0, 1)]))
        kl = float(rng.uniform(1e-4, 0.2)) if measured else math.nan
        pairs.append(CandidatePair(
            i=i, j=j, polygram_overlap=poly, decoder_overlap=dec, jaccard=jac,
            pearson_activation=math.nan, kl_ablate_i=kl, kl_ablate_j=kl / 2,
            kl_ratio_paired=math.nan, kl_log_ratio_abs=math.nan, n_fires_i=5, n_fires_j=5,
            n_both_fire=2, n_either_fire=8, gate_pass=poly >= 0.7 and jac >= 0.5,
        ))  # fmt: skip
    return ValidationReport(
        schema_version=1, dictionary_name="panel", model_name="tiny", layer=1, n_prompts=4,
        n_tokens=40, polygram_overlap_threshold=0.7, jaccard_threshold=0.5,
        min_firing_rate=0.0, min_both_fire=1, feature_ids=tuple(ids), pairs=tuple(pairs),
        summary=summarise(pairs), confirmed=tuple((p.i, p.j) for p in pairs if p.gate_pass),
    )  # fmt: skip


@pytest.mark.parametrize("measured", [True, False])
def test_validation_figure(tmp_path: Path, measured: bool) -> None:
    out = plot_validation(_report(measured), tmp_path / "validation.png")
    assert _png_size(out) == (1320, 552)  # 11 × 4.6 in at 120 dpi


def test_firing_frequency_figure(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    before = rng.uniform(0, 0.2, 64)
    after = before.copy()
    after[:8] = 0.0
    out = plot_firing_frequencies(before, after, tmp_path / "freq.png")
    assert _png_size(out) == (840, 480)
    with pytest.raises(ValueError, match="frequencies in \\[0, 1\\]"):
        plot_firing_frequencies(before, np.array([np.nan]), tmp_path / "x.png")
    with pytest.raises(ValueError, match="before must be"):
        plot_firing_frequencies(np.array([]), after, tmp_path / "x.png")


def test_epoch_figure(tmp_path: Path) -> None:
    out = plot_epoch([4, 3, 2], [0.95, 0.948, 0.93], tmp_path / "epoch.png",
                     metric="ce_loss_score", reference=0.952, tolerance=0.01,
                     kept=[True, True, False])  # fmt: skip
    assert _png_size(out) == (900, 576)
    with pytest.raises(ValueError, match="one length"):
        plot_epoch([1, 2], [0.5], tmp_path / "x.png", metric="m")
