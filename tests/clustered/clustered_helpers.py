"""Shared inputs of the clustered-dictionary tests: spec 17's reference file
(copied into tests/data) and its numpy recipes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from polygram import Feature

DATA = Path(__file__).resolve().parents[1] / "data"


def _nan(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: (float("nan") if v == "NaN" else v) for k, v in obj.items()}


with open(DATA / "reference_values_17.json", encoding="utf-8") as fh:
    REF17: dict[str, Any] = json.load(fh, object_hook=_nan)

RECIPES: dict[str, Any] = {}
exec(REF17["recipes"]["python"], RECIPES)  # the reference file's own input recipes
planted = RECIPES["planted"]
iso = RECIPES["iso"]
activations = RECIPES["activations"]
feature_knobs = RECIPES["feature_knobs"]


def plant_a() -> tuple[np.ndarray, np.ndarray, list[Feature]]:
    """Rows, group labels and features of the ``*_A`` cases (30 × 24)."""
    x, labels = planted(1701, 24, [11, 6, 3, 1, 9], 0.6)
    return x, labels, [Feature(**feature_knobs(i, labels[i])) for i in range(30)]


def block_lists(cd: Any) -> list[list[int]]:
    return [list(cd.block_view(b).indices) for b in range(cd.n_blocks)]


def edge_rows(cd: Any) -> list[list[Any]]:
    return [[*k, v] for k, v in cd.cross_block_edges_tuple]


def assert_edges(got: list[list[Any]], want: list[list[Any]], tol: float = 1e-12) -> None:
    assert [g[:4] for g in got] == [w[:4] for w in want]
    assert np.allclose([g[4] for g in got], [w[4] for w in want], rtol=0, atol=tol)


def assert_gram(got: np.ndarray, want: dict[str, Any]) -> None:
    # the reference rounds Grams to 12 decimals
    assert np.allclose(got.real, want["re"], rtol=0, atol=1e-12 + 5e-13)
    assert np.allclose(got.imag, want["im"], rtol=0, atol=1e-12 + 5e-13)
