"""Spec 15 §10: the 0.0.1 / 0.15 import paths are the port's own objects."""

from __future__ import annotations

import importlib

import polygram
import polygram.analysis as analysis
import polygram.compression as compression


def test_name_aliases_are_the_same_objects() -> None:
    assert polygram.SlotPopulation is compression.SlotPopulation is compression.RegrowSlot
    assert analysis.KNOB_SELECTION_GUIDANCE is analysis.KNOB_GUIDANCE
    assert analysis.SHARING_EDGE_FORMULA is analysis.SHARING_FORMULA
    assert analysis.SEPARATION_EDGE_FORMULA is analysis.SEPARATION_FORMULA
    assert polygram.EpochIteration is compression.EpochIteration
    assert polygram.Panel is compression.Panel
    assert polygram.RegrowPlan is compression.RegrowPlan


def test_module_aliases() -> None:
    sae = importlib.import_module("polygram.sae")
    old = importlib.import_module("polygram.sae_import")
    assert list(old.__all__) == list(sae.__all__)
    for name in sae.__all__:
        assert getattr(old, name) is getattr(sae, name), name
    conf = importlib.import_module("polygram.confirmation")
    for name in ("BehaviouralValidator", "ClusterConfirmer", "DecoderGeometryConfirmer"):
        assert getattr(conf, name) is getattr(polygram, name)
    emit = importlib.import_module("polygram.emit")
    assert emit.write_qorca is polygram.write_qorca


def test_every_spec15_public_name_is_importable() -> None:
    import polygram.config as config
    import polygram.geometry as geometry

    for name in (
        "ValidationConfig",
        "CancellationConfig",
        "CompressionConfig",
        "EpochCompressionConfig",
        "RegrowConfig",
        "SAEImportConfig",
    ):
        assert getattr(polygram, name) is getattr(config, name)
    for name in geometry.__all__:
        assert hasattr(geometry, name)


def test_pareto_names() -> None:
    assert polygram.ParetoReport is compression.ParetoReport
    assert polygram.ParetoOutcome is compression.ParetoOutcome
