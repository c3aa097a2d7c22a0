"""CompressionReport JSON (spec 11 §7.2): exact round trip, required keys, defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compression_fixtures import build_report, synth_sae

import polygram
from polygram.compression import (
    ClusterPlan,
    CompressionPlan,
    CompressionReport,
    CompressionResult,
    Compressor,
)


def sample() -> CompressionReport:
    plan = CompressionPlan(
        (
            ClusterPlan(0, (2, 3), 3, (2,), 2.5147453725638282, 0.6520924061157254, None),
            ClusterPlan(1, (5, 6, 9), 9, (5, 6), 0.1 + 0.2, 1e-300, 2.560951528640866),
        ),
        (9, 2, 3, 5, 6),
    )
    return CompressionReport(
        source_checkpoint="rel/sae.safetensors",
        source_checkpoint_sha256="a" * 64,
        output_checkpoint="/abs/out.safetensors",
        output_checkpoint_sha256="b" * 64,
        validation_report_dictionary_name="Dict",
        validation_report_schema_version=1,
        strategy="merge",
        plan=plan,
        n_features_zeroed=3,
        n_features_kept=2,
        n_clusters=2,
        scale_compression_ratio=0.30000000000000004,
    )


def test_round_trip_is_exact_and_unrounded(tmp_path: Path) -> None:
    r = sample()
    text = r.to_json()
    assert CompressionReport.from_json(text) == r
    assert "0.30000000000000004" in text and "2.5147453725638282" in text  # full repr
    doc = json.loads(text)
    assert list(doc) == sorted(doc)  # sorted keys, compact separators
    assert ", " not in text and ": " not in text
    assert doc["feature_ids"] == [9, 2, 3, 5, 6]  # original order
    assert doc["clusters"][0]["merged_norm"] is None
    assert set(doc) == {
        "schema_version", "source_checkpoint", "source_checkpoint_sha256",
        "output_checkpoint", "output_checkpoint_sha256", "validation_report_dictionary_name",
        "validation_report_schema_version", "strategy", "feature_ids", "clusters",
        "n_features_zeroed", "n_features_kept", "n_clusters", "scale_compression_ratio",
        "sae_settings", "output_layout", "decoder_row_kept",
        "eval_before", "eval_after", "eval_change",
    }  # fmt: skip
    assert doc["schema_version"] == 2
    p = tmp_path / "sub" / "report.json"
    assert r.to_json(p) == text and p.read_text() == text
    assert CompressionReport.from_json(p) == r
    assert CompressionReport.from_json(str(p)) == r


def test_real_report_round_trip(tmp_path: Path) -> None:
    sae = synth_sae(tmp_path / "s.safetensors")
    res = Compressor(build_report(6, [(0, 1), (2, 3)]), sae).run(tmp_path / "c.safetensors")
    assert isinstance(res, CompressionResult)
    assert CompressionReport.from_json(res.report.to_json()) == res.report


@pytest.mark.parametrize(
    "key",
    [
        "schema_version", "source_checkpoint", "source_checkpoint_sha256",
        "output_checkpoint", "output_checkpoint_sha256", "validation_report_dictionary_name",
        "validation_report_schema_version", "strategy", "feature_ids", "clusters",
        "n_features_zeroed", "n_features_kept", "n_clusters",
    ],
)  # fmt: skip
def test_missing_required_key(key: str) -> None:
    doc = json.loads(sample().to_json())
    del doc[key]
    with pytest.raises(ValueError, match=f"missing required key.*{key}"):
        CompressionReport.from_json(json.dumps(doc))


def test_defaults_for_optional_keys() -> None:
    doc = json.loads(sample().to_json())
    del doc["scale_compression_ratio"]
    for c in doc["clusters"]:
        for k in ("cluster_norm_mean", "cluster_norm_std", "merged_norm"):
            del c[k]
    r = CompressionReport.from_json(json.dumps(doc))
    assert r.scale_compression_ratio == 1.0
    assert all(
        (c.cluster_norm_mean, c.cluster_norm_std, c.merged_norm) == (None, None, None)
        for c in r.plan.clusters
    )


def test_a_schema_1_report_reads_with_the_documented_defaults() -> None:
    doc = json.loads(sample().to_json())
    for k in ("sae_settings", "output_layout", "decoder_row_kept"):
        del doc[k]
    doc["schema_version"] = 1
    r = CompressionReport.from_json(json.dumps(doc))
    assert r.schema_version == 1
    assert (r.sae_settings, r.output_layout, r.decoder_row_kept) == (None, None, False)


def test_settings_and_layout_round_trip() -> None:
    from dataclasses import replace

    settings = {"architecture": {"value": "jumprelu", "source": "cfg"}}
    r = replace(sample(), sae_settings=settings, output_layout="folder", decoder_row_kept=True)
    assert CompressionReport.from_json(r.to_json()) == r


def test_malformed_values() -> None:
    doc = json.loads(sample().to_json())
    doc["n_clusters"] = "2"
    with pytest.raises(ValueError, match="n_clusters is '2'; expected an integer"):
        CompressionReport.from_json(json.dumps(doc))
    doc = json.loads(sample().to_json())
    del doc["clusters"][1]["zeroed"]
    with pytest.raises(ValueError, match=r"clusters\[1\].*missing required key"):
        CompressionReport.from_json(json.dumps(doc))
    with pytest.raises(ValueError, match="not valid JSON"):
        CompressionReport.from_json("{nope")


def test_equality_is_fieldwise() -> None:
    from dataclasses import replace

    r = sample()
    assert r == sample()
    assert replace(r, scale_compression_ratio=0.3) != r


def test_top_level_exports() -> None:
    for name in ("Compressor", "CompressionReport", "CompressionPlan", "ClusterPlan",
                 "CompressionResult"):  # fmt: skip
        assert getattr(polygram, name) is getattr(polygram.compression, name)
        assert name in polygram.__all__
