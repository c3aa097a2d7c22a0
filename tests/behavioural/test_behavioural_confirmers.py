"""Geometry-only confirmers: decoder cos² by hand, cluster pairs, report shape."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import polygram
from behavioural.beh_helpers import PANEL, write_sae
from polygram import load_sae_safetensors
from polygram.behavioural import (
    BehaviouralValidator,
    ClusterConfirmer,
    Confirmer,
    DecoderGeometryConfirmer,
    ValidationReport,
)
from polygram.sae import SAEFeatureRecord, from_sae_lens


def test_exports() -> None:
    for name in ("ClusterConfirmer", "Confirmer", "DecoderGeometryConfirmer"):
        assert getattr(polygram, name) is getattr(polygram.behavioural, name)


def test_decoder_geometry(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    arrays = write_sae(ckpt)
    # make feature 7 nearly parallel to 11 so one pair passes a 0.8 threshold
    arrays["W_dec"][7] = 2.0 * arrays["W_dec"][11] + 0.05 * arrays["W_dec"][7]
    from safetensors.numpy import save_file

    save_file(arrays, str(ckpt))
    records = load_sae_safetensors(ckpt, feature_ids=PANEL)
    c = DecoderGeometryConfirmer(records, ckpt, PANEL)
    assert isinstance(c, Confirmer)
    r = c.run()
    w = arrays["W_dec"].astype(np.float64)
    assert [(p.i, p.j) for p in r.pairs] == [
        (PANEL[a], PANEL[b]) for a in range(4) for b in range(a + 1, 4)
    ]
    for p in r.pairs:
        cos2 = float(w[p.i] @ w[p.j]) ** 2 / (float(w[p.i] @ w[p.i]) * float(w[p.j] @ w[p.j]))
        assert p.decoder_overlap == pytest.approx(cos2, rel=1e-12)
        assert p.gate_pass is (cos2 >= 0.8)
        assert math.isnan(p.polygram_overlap) and math.isnan(p.jaccard)
        assert p.n_both_fire == 0
    assert r.confirmed == ((11, 7),)
    assert r.model_name == "geometry:decoder_cosine2"
    assert r.dictionary_name == "imported_sae"
    assert (r.layer, r.n_prompts, r.n_tokens) == (0, 0, 0)
    assert r.polygram_overlap_threshold == 0.8
    assert (r.jaccard_threshold, r.min_firing_rate, r.min_both_fire) == (0.0, 0.0, 0)
    assert r.summary.buckets == {} and r.summary.outcome == "geometry_only"
    assert math.isnan(r.summary.spearman_polygram_jaccard)
    assert r.feature_ids == tuple(PANEL)
    # threshold 0 confirms everything
    assert len(DecoderGeometryConfirmer(records, ckpt, PANEL, threshold=0.0).run().confirmed) == 6
    once = ValidationReport.from_json(r.to_json())
    assert ValidationReport.from_json(once.to_json()) == once


def test_decoder_geometry_errors(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    records = load_sae_safetensors(ckpt, feature_ids=PANEL)
    with pytest.raises(ValueError, match="threshold"):
        DecoderGeometryConfirmer(records, ckpt, PANEL, threshold=1.2)
    with pytest.raises(ValueError, match=r"\[3\] have no record"):
        DecoderGeometryConfirmer(records, ckpt, [11, 3])
    with pytest.raises(ValueError, match="not found on disk"):
        DecoderGeometryConfirmer(records, tmp_path / "nope", PANEL)
    with pytest.raises(ValueError, match="repeated"):
        DecoderGeometryConfirmer(records, ckpt, [11, 11])
    with pytest.raises(TypeError, match="mapping"):
        DecoderGeometryConfirmer(list(records.values()), ckpt, PANEL)  # type: ignore[arg-type]


def test_cluster_confirmer(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    records = load_sae_safetensors(ckpt, feature_ids=PANEL)
    _, sel = from_sae_lens(records, PANEL, cluster_assignments={11: "a", 2: "b", 7: "a", 5: "b"})
    c = ClusterConfirmer(sel, ckpt, records)
    assert isinstance(c, Confirmer)
    r = c.run()
    # clusters in order of first appearance, ids ascending within each (i < j)
    assert [(p.i, p.j) for p in r.pairs] == [(7, 11), (2, 5)]
    assert r.confirmed == ((7, 11), (2, 5))
    assert all(p.gate_pass and math.isnan(p.decoder_overlap) for p in r.pairs)
    assert r.model_name == "geometry:cluster" and r.summary.outcome == "geometry_only"
    assert r.feature_ids == tuple(sorted(PANEL))


def test_cluster_confirmer_errors(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    records = load_sae_safetensors(ckpt, feature_ids=PANEL)
    _, sel = from_sae_lens(records, PANEL)
    with pytest.raises(TypeError, match="SelectionReport"):
        ClusterConfirmer({"a": "b"}, ckpt, records)  # type: ignore[arg-type]
    fewer = {f: records[f] for f in PANEL[:2]}
    with pytest.raises(ValueError, match="no record"):
        ClusterConfirmer(sel, ckpt, fewer).run()
    dup = {1: SAEFeatureRecord(1, "same", [1.0, 0.0]), 2: SAEFeatureRecord(2, "same", [0.0, 1.0])}
    with pytest.raises(ValueError, match="unique"):
        ClusterConfirmer(sel, ckpt, dup).run()


def test_validator_is_a_confirmer(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    from behavioural.beh_helpers import panel_dictionary

    v = BehaviouralValidator(panel_dictionary(ckpt), ckpt, PANEL, ["x"], layer=1, model_name="gpt2")
    assert isinstance(v, Confirmer)
