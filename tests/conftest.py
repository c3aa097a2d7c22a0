"""Shared fixtures: reference values, the quickstart dictionary, hypothesis profiles.

Hypothesis profile: ``fast`` by default (derandomized, so the test command
and CI draw the same examples on every run), ``thorough`` with
``POLYGRAM_HYPOTHESIS_PROFILE=thorough`` (random, 500 examples: for hunting).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from polygram import Dictionary, Feature, MPSRung1

DATA = Path(__file__).parent / "data"
FIXTURES = Path(__file__).parent / "fixtures"

settings.register_profile(
    "fast",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("POLYGRAM_HYPOTHESIS_PROFILE", "fast"))


def _load_reference() -> dict[str, Any]:
    def nan(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: (float("nan") if v == "NaN" else v) for k, v in obj.items()}

    with open(DATA / "reference_values.json", encoding="utf-8") as fh:
        return json.load(fh, object_hook=nan)  # type: ignore[no-any-return]


REFERENCE = _load_reference()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a fresh module (examples are scripts,
    not a package)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 with its own BPE tokenizer (``examples/tiny_gpt2.py``),
    saved once per session (offline; needs torch + transformers: use it from
    ``torch``-marked tests)."""
    sys.path.insert(0, str(EXAMPLES))
    from tiny_gpt2 import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_model(model_type, **kw)``: the directory of a tiny random model of
    that family (``examples/tiny_models.py``: 2 layers, width 16 unless ``kw``
    says otherwise), built once per session for each ``(model_type, kw)``
    (offline; use it from ``torch``-marked tests)."""
    sys.path.insert(0, str(EXAMPLES))
    from tiny_models import build_tiny_model

    built: dict[tuple[str, tuple[tuple[str, Any], ...]], Path] = {}

    def build(model_type: str, **kw: Any) -> Path:
        key = (model_type, tuple(sorted(kw.items())))
        if key not in built:
            built[key] = build_tiny_model(model_type, tmp_path_factory.mktemp(model_type), **kw)
        return built[key]

    return build


@pytest.fixture(scope="session")
def ref() -> dict[str, Any]:
    return REFERENCE


def dictionary_from_spec(spec: dict[str, Any], encoding: Any = None) -> Dictionary:
    """Build a Dictionary from a reference-file description (features + hierarchy)."""
    feats = [
        Feature(
            f["name"],
            f["cluster"],
            beta=f["beta"],
            alpha=f.get("alpha", 0.0),
            gamma=f.get("gamma", 0.0),
            phi=f.get("phi", 0.0),
        )
        for f in spec["features"]
    ]
    hierarchy = spec.get("hierarchy")
    if hierarchy is None:
        hierarchy = {}
        for f in spec["features"]:
            hierarchy.setdefault(f["cluster"], []).append(f["name"])
    return Dictionary(spec.get("name", "Ref"), feats, hierarchy, encoding or MPSRung1())


def quickstart_dictionary() -> Dictionary:
    return Dictionary(
        name="AnimalsInterference",
        features=[
            Feature("dog_poodle", "dogs", beta=-0.5),
            Feature("dog_beagle", "dogs", beta=-0.5),
            Feature("bird_hawk", "birds", beta=0.5),
            Feature("bird_sparrow", "birds", beta=0.5),
        ],
        hierarchy={"dogs": ["dog_poodle", "dog_beagle"], "birds": ["bird_hawk", "bird_sparrow"]},
        encoding=MPSRung1(bond_dim=2, phase_knobs=True),
    )


@pytest.fixture
def quickstart() -> Dictionary:
    return quickstart_dictionary()
