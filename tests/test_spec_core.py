"""Spec 01/02 audit of the core: list-typed Dictionary fields, with_default_angles
inputs, empty-cluster knob writes, axis-less CSV, ``save`` naming and the
sweep figures (size and labels of 0.0.1's artefacts)."""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polygram import Dictionary, Experiment, Feature
from polygram.errors import DictionaryError, KnobError

TARGET = ("dog_poodle", "bird_hawk")
HIERARCHY = {"dogs": ["dog_poodle", "dog_beagle"], "birds": ["bird_hawk", "bird_sparrow"]}


# ------------------------------------------------------------- Dictionary


def test_features_and_hierarchy_are_lists(quickstart: Dictionary) -> None:
    # Spec 02 §2.2: features: list[Feature], hierarchy: dict[cluster → list[name]].
    assert quickstart.hierarchy == HIERARCHY
    assert isinstance(quickstart.features, list)
    assert all(isinstance(m, list) for m in quickstart.hierarchy.values())
    extra = Feature("dog_pug", "dogs", -0.5)
    bigger = Dictionary(
        "Bigger",
        quickstart.features + [extra],  # noqa: RUF005 (list concatenation is the point)
        {**quickstart.hierarchy, "dogs": quickstart.hierarchy["dogs"] + ["dog_pug"]},
    )
    assert bigger.feature_names[-1] == "dog_pug"
    assert abs(bigger.overlaps()[0, 4] - 1.0) < 1e-15


def test_dictionary_lists_are_read_only(quickstart: Dictionary) -> None:
    with pytest.raises(TypeError, match="read-only"):
        quickstart.features.append(Feature("x", "dogs", 0.0))
    with pytest.raises(TypeError, match="read-only"):
        quickstart.hierarchy["dogs"][0] = "x"
    with pytest.raises(TypeError, match="read-only"):
        quickstart.features += []  # type: ignore[misc]
    assert quickstart.feature_names == ["dog_poodle", "dog_beagle", "bird_hawk", "bird_sparrow"]
    for clone in (pickle.loads(pickle.dumps(quickstart)), copy.deepcopy(quickstart)):
        assert clone.hierarchy == HIERARCHY
        np.testing.assert_allclose(clone.gram(), quickstart.gram(), atol=0)


@pytest.mark.parametrize(
    ("features", "hierarchy", "match"),
    [
        ("abc", {"c": ["abc"]}, "Dictionary.features"),
        ([Feature("a", "c", 0.0)], {"c": "a"}, r"hierarchy\['c'\]"),
        ([Feature("a", "c", 0.0)], {"c": 3}, r"hierarchy\['c'\]"),
    ],
)
def test_container_types_are_checked(features: Any, hierarchy: Any, match: str) -> None:
    with pytest.raises(DictionaryError, match=match):
        Dictionary("D", features, hierarchy)


def test_with_default_angles_reads_each_member_list_once() -> None:
    d = Dictionary.with_default_angles(
        "W", {"a": iter(["a1"]), "b": (m for m in ["b1", "b2"]), "c": ("c1",)}
    )
    assert d.hierarchy == {"a": ["a1"], "b": ["b1", "b2"], "c": ["c1"]}
    assert [f.beta for f in d.features] == [-0.5, 0.0, 0.0, 0.5]
    assert all(f.alpha == f.gamma == f.phi == 0.0 for f in d.features)
    with pytest.raises(DictionaryError, match=r"hierarchy\['a'\]"):
        Dictionary.with_default_angles("W", {"a": "a1"})


def test_knob_write_on_an_empty_cluster_is_refused() -> None:
    d = Dictionary(
        "D",
        [Feature("a", "x", -0.5), Feature("b", "y", 0.5)],
        {"x": ["a"], "y": ["b"], "z": []},
    )
    with pytest.raises(KnobError, match="'z' has no members"):
        d.with_knob("z.phi", 1.0)
    with pytest.raises(ValueError, match="'z' has no members"):
        Experiment("E", d, ("a", "b"), {"z.phi": [0.0, 1.0]})
    # The tier-separation column exists (not every list has one name) and
    # stores 0.0 where q-orca's helper gives None (spec 02 §2.5.1 step 5).
    r = Experiment("E", d, ("a", "b"), {"b.phi": [0.0, 1.0]}).run()
    assert r.tier_separation is not None
    assert r.tier_separation.tolist() == [0.0, 0.0]
    assert d.tier_separation() is None


# ----------------------------------------------------------------- results


def test_axis_less_csv_with_the_endpoint_assertion(quickstart: Dictionary) -> None:
    r = Experiment(
        "E",
        quickstart,
        TARGET,
        {},
        assertions=["target_pair_destructive_at_endpoint", "hierarchical_ordering_preserved"],
    ).run()
    header, row, end = r.csv_text().split("\n")
    assert header == (
        "overlap,tier_self,tier_sibling,tier_cross_cluster,tier_separation,"
        "hierarchical_ordering_preserved,target_pair_destructive_at_endpoint"
    )
    cells = row.split(",")
    assert end == "" and len(cells) == 7
    assert float(cells[0]) == pytest.approx(math.cos(0.5) ** 4, abs=1e-15)
    assert cells[1] == "1.0"
    assert float(cells[4]) == pytest.approx(1 - math.cos(0.5) ** 4, abs=1e-12)
    assert cells[5:] == ["1", "0"]


def test_save_appends_npz_like_numpy(quickstart: Dictionary, tmp_path: Path) -> None:
    r = Experiment("E", quickstart, TARGET, {"bird_hawk.phi": [0.0, np.pi]}).run()
    p = r.save(tmp_path / "result")
    assert p == tmp_path / "result.npz" and p.exists()
    assert not (tmp_path / "result").exists()
    assert r.save(str(tmp_path / "again.npz")) == tmp_path / "again.npz"
    with np.load(p) as z:
        np.testing.assert_array_equal(z["axis_bird_hawk.phi"], [0.0, np.pi])
        assert z["sweep_keys"].tolist() == ["bird_hawk.phi"]


# ----------------------------------------------------------------- figures


def _captured_figure(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from polygram import plotting

    seen: list[Any] = []
    real = plotting.save_figure

    def spy(fig: Any, path: Any, dpi: int = 120) -> Path:
        seen.append(
            {
                "size": tuple(fig.get_size_inches()),
                "ylabels": [ax.get_ylabel() for ax in fig.axes],
                "xlabel": fig.axes[0].get_xlabel(),
                "title": fig.axes[0].get_title(),
                "legend": [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
                if fig.axes[0].get_legend()
                else [],
            }
        )
        return real(fig, path, dpi)

    monkeypatch.setattr(plotting, "save_figure", spy)
    return seen


def test_sweep_figures_match_the_reference_pngs(
    quickstart: Dictionary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    image = pytest.importorskip("PIL.Image")
    seen = _captured_figure(monkeypatch)
    one = Experiment("E", quickstart, TARGET, {"bird_hawk.phi": np.linspace(0, np.pi, 40)}).run()
    two = Experiment(
        "E",
        quickstart,
        TARGET,
        {"dog_poodle.phi": np.linspace(0, np.pi, 24), "bird_hawk.phi": np.linspace(0, np.pi, 24)},
    ).run()
    p1, p2 = one.plot(tmp_path / "line.png"), two.plot(tmp_path / "heat.png")
    # examples/core/quickstart PNGs: 7×4 in and 6×5 in at 120 dpi, nothing cropped.
    with image.open(p1) as im:
        assert im.size == (840, 480)
    with image.open(p2) as im:
        assert im.size == (720, 600)
    line, heat = seen
    assert line["size"] == (7.0, 4.0) and heat["size"] == (6.0, 5.0)
    assert line["ylabels"][0] == "|<A|B>|²"
    assert line["xlabel"] == "bird_hawk.phi"
    assert line["title"] == "AnimalsInterference — target overlap"
    assert line["legend"] == [
        "(dog_poodle, bird_hawk)",
        "sibling tier (mean)",
        "cross-cluster tier (mean)",
    ]
    assert heat["xlabel"] == "dog_poodle.phi" and heat["ylabels"] == ["bird_hawk.phi", "|<A|B>|²"]
