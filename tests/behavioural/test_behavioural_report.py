"""ValidationReport & co: JSON/CSV text, round trips, NaN-aware equality, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import polygram
from polygram.behavioural import BucketStats, CandidatePair, ValidationReport, ValidationSummary
from polygram.behavioural.report import CSV_COLUMNS

NAN = math.nan


def pair(i: int, j: int, **kw: object) -> CandidatePair:
    base: dict[str, object] = dict(
        i=i,
        j=j,
        polygram_overlap=0.5,
        decoder_overlap=0.25,
        jaccard=0.1,
        pearson_activation=NAN,
        kl_ablate_i=NAN,
        kl_ablate_j=NAN,
        kl_ratio_paired=NAN,
        kl_log_ratio_abs=NAN,
        n_fires_i=0,
        n_fires_j=0,
        n_both_fire=0,
        n_either_fire=0,
        gate_pass=False,
    )
    base.update(kw)
    return CandidatePair(**base)  # type: ignore[arg-type]


def summary(**kw: object) -> ValidationSummary:
    base: dict[str, object] = dict(
        spearman_polygram_jaccard=0.5,
        spearman_decoder_jaccard=NAN,
        spearman_polygram_log_kl_abs=-0.25,
        pearson_polygram_jaccard=0.75,
        pearson_decoder_jaccard=0.0,
        buckets={
            "low_overlap": BucketStats("≤ 0.4", 0, NAN, (NAN, NAN)),
            "mid_overlap": BucketStats("(0.4, 0.7)", 2, 0.125, (0.1, 0.15)),
            "high_overlap": BucketStats("≥ 0.7", 1, 0.75, (0.75, 0.75)),
        },
        outcome="medium_spearman_loop_needs_calibration",
    )
    base.update(kw)
    return ValidationSummary(**base)  # type: ignore[arg-type]


def report(**kw: object) -> ValidationReport:
    pairs = [
        pair(12, 3, polygram_overlap=0.8, jaccard=0.5, n_both_fire=6, gate_pass=True),
        pair(3, 7, kl_ablate_i=0.012345678, n_fires_i=4, n_either_fire=4),
        pair(12, 7, polygram_overlap=0.123456789, decoder_overlap=0.0, jaccard=0.0),
    ]
    base: dict[str, object] = dict(
        schema_version=1,
        dictionary_name="ImportedSAE",
        model_name="gpt2",
        layer=10,
        n_prompts=2,
        n_tokens=17,
        polygram_overlap_threshold=0.7,
        jaccard_threshold=0.3,
        min_firing_rate=0.01,
        min_both_fire=5,
        feature_ids=[12, 3, 7],
        pairs=pairs,
        summary=summary(),
        confirmed=[(12, 3)],
    )
    base.update(kw)
    return ValidationReport(**base)  # type: ignore[arg-type]


def test_exports() -> None:
    for name in ("ValidationReport", "CandidatePair", "BucketStats", "ValidationSummary"):
        assert getattr(polygram, name) is getattr(polygram.behavioural, name)


def test_field_order_matches_spec() -> None:
    from dataclasses import fields

    assert [f.name for f in fields(CandidatePair)] == [
        "i", "j", "polygram_overlap", "decoder_overlap", "jaccard", "pearson_activation",
        "kl_ablate_i", "kl_ablate_j", "kl_ratio_paired", "kl_log_ratio_abs",
        "n_fires_i", "n_fires_j", "n_both_fire", "n_either_fire", "gate_pass",
    ]  # fmt: skip
    assert [f.name for f in fields(ValidationReport)] == [
        "schema_version", "dictionary_name", "model_name", "layer", "n_prompts", "n_tokens",
        "polygram_overlap_threshold", "jaccard_threshold", "min_firing_rate", "min_both_fire",
        "feature_ids", "pairs", "summary", "confirmed", "n_clusters", "sae_settings",
    ]  # fmt: skip
    assert [f.name for f in fields(BucketStats)] == [
        "polygram_range", "n_pairs", "jaccard_mean", "jaccard_ci_95",
    ]  # fmt: skip


def test_version_2_carries_n_clusters_and_version_1_reads_and_writes_as_before() -> None:
    v2 = report(schema_version=2, n_clusters=3)
    doc = json.loads(v2.to_json())
    assert doc["schema_version"] == 2 and doc["n_clusters"] == 3
    once = ValidationReport.from_json(v2.to_json())
    assert once.n_clusters == 3 and ValidationReport.from_json(once.to_json()) == once
    assert json.loads(report(schema_version=2).to_json())["n_clusters"] is None
    v1 = report()  # version 1: no n_clusters key, read back as None
    assert "n_clusters" not in json.loads(v1.to_json())
    assert ValidationReport.from_json(v1.to_json()).n_clusters is None


def test_frozen_and_coerced() -> None:
    r = report()
    assert r.feature_ids == (12, 3, 7) and isinstance(r.pairs, tuple)
    assert r.confirmed == ((12, 3),)
    with pytest.raises(AttributeError):
        r.layer = 3  # type: ignore[misc]


def test_json_text_details() -> None:
    text = report().to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert "\n" not in text and '", "' not in text and '": ' not in text  # compact
    assert "\\u2265 0.7" in text and "≥" not in text  # ensure_ascii
    doc = json.loads(text)
    assert list(doc) == sorted(doc)
    assert list(doc["summary"]) == sorted(doc["summary"])
    # pairs sorted by (i, j); confirmed kept in stored order; feature_ids unsorted
    assert [(p["i"], p["j"]) for p in doc["pairs"]] == [(3, 7), (12, 3), (12, 7)]
    assert doc["confirmed"] == [[12, 3]]
    assert doc["feature_ids"] == [12, 3, 7]
    # 6 significant figures, NaN → null, 0 → 0.0
    assert doc["pairs"][0]["kl_ablate_i"] == 0.0123457
    assert doc["pairs"][2]["polygram_overlap"] == 0.123457
    assert doc["pairs"][0]["pearson_activation"] is None
    assert '"decoder_overlap":0.0' in text
    assert doc["summary"]["buckets"]["low_overlap"]["jaccard_ci_95"] == [None, None]
    assert doc["pairs"][1]["gate_pass"] is True
    assert isinstance(doc["pairs"][1]["n_both_fire"], int)


def test_json_infinity_is_null() -> None:
    r = report(pairs=[pair(1, 2, kl_ratio_paired=math.inf)], confirmed=[])
    assert json.loads(r.to_json())["pairs"][0]["kl_ratio_paired"] is None


def test_round_trip_exact_after_one_trip(tmp_path: Path) -> None:
    r = report()
    once = ValidationReport.from_json(r.to_json())
    # the fresh report keeps full precision; the JSON keeps 6 s.f.
    assert once != r
    assert ValidationReport.from_json(once.to_json()) == once
    assert once.to_json() == r.to_json()  # to_json is idempotent on from_json output
    # a report with only short floats survives the first trip
    short = report(pairs=[pair(12, 3), pair(3, 7, gate_pass=True)], confirmed=[(3, 7)])
    assert ValidationReport.from_json(short.to_json()) == short


def test_from_json_sources(tmp_path: Path) -> None:
    r = ValidationReport.from_json(report().to_json())
    p = tmp_path / "sub" / "dir" / "report.json"
    text = r.to_json(p)
    assert p.read_text(encoding="utf-8") == text
    assert ValidationReport.from_json(p) == r  # PathLike
    assert ValidationReport.from_json(str(p)) == r  # str path
    assert ValidationReport.from_json("  \n" + text) == r  # leading whitespace → text
    with pytest.raises(TypeError, match="str"):
        ValidationReport.from_json(b"{}")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not valid JSON"):
        ValidationReport.from_json(str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError):
        ValidationReport.from_json(tmp_path / "missing.json")


@pytest.mark.parametrize("key", ["schema_version", "pairs", "summary", "confirmed", "n_tokens"])
def test_missing_top_level_key(key: str) -> None:
    doc = json.loads(report().to_json())
    del doc[key]
    with pytest.raises(ValueError, match=f"missing required key.*'{key}'"):
        ValidationReport.from_json(json.dumps(doc))


def test_missing_nested_key_is_key_error() -> None:
    doc = json.loads(report().to_json())
    del doc["pairs"][0]["jaccard"]
    with pytest.raises(KeyError):
        ValidationReport.from_json(json.dumps(doc))


def test_top_level_not_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        ValidationReport.from_json("[1, 2]")


def test_nan_aware_equality() -> None:
    a, b = report(), report()
    assert a.pairs[0] is not b.pairs[0] and a == b
    assert pair(1, 2) == pair(1, 2) and hash(pair(1, 2)) == hash(pair(1, 2))
    assert pair(1, 2) != pair(1, 2, jaccard=NAN)
    assert BucketStats("x", 0, NAN, (NAN, NAN)) == BucketStats("x", 0, NAN, (NAN, NAN))
    # pair order does not matter, confirmed order does
    assert report(pairs=list(reversed(a.pairs))) == a
    two = [(12, 3), (3, 7)]
    assert report(confirmed=two) != report(confirmed=list(reversed(two)))
    assert report(summary=summary(outcome="x")) != a
    assert report(layer=9) != a
    assert a != "not a report"


def test_report_type_checks() -> None:
    with pytest.raises(TypeError, match=r"pairs\[0\]"):
        report(pairs=[{"i": 1}])
    with pytest.raises(TypeError, match="summary"):
        report(summary={})


def test_csv_bytes(tmp_path: Path) -> None:
    out = report().to_csv(tmp_path / "deep" / "pairs.csv")
    assert out == tmp_path / "deep" / "pairs.csv"
    data = out.read_bytes()
    lines = data.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in data.replace(b"\r\n", b"")
    assert lines[0].decode() == ",".join(CSV_COLUMNS)
    assert len(CSV_COLUMNS) == 15
    assert lines[1] == b"3,7,0.5,0.25,0.1,,4,0,0,4,0.0123457,,,,false"
    assert lines[2] == b"12,3,0.8,0.25,0.5,,0,0,6,0,,,,,true"
    assert lines[3] == b"12,7,0.123457,0,0,,0,0,0,0,,,,,false"
    assert len(lines) == 5


# --- property: one trip through JSON is a fixed point ---------------------------

_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e-300, 123456789.0, 0.1234565]),
)
_pairs = st.lists(
    st.builds(
        CandidatePair,
        i=st.integers(0, 50),
        j=st.integers(0, 50),
        polygram_overlap=_floats,
        decoder_overlap=_floats,
        jaccard=_floats,
        pearson_activation=_floats,
        kl_ablate_i=_floats,
        kl_ablate_j=_floats,
        kl_ratio_paired=_floats,
        kl_log_ratio_abs=_floats,
        n_fires_i=st.integers(0, 10**6),
        n_fires_j=st.integers(0, 10**6),
        n_both_fire=st.integers(0, 10**6),
        n_either_fire=st.integers(0, 10**6),
        gate_pass=st.booleans(),
    ),
    max_size=6,
    unique_by=lambda p: (p.i, p.j),
)


@given(pairs=_pairs, t=_floats, s=_floats)
def test_json_fixed_point_after_one_trip(pairs: list[CandidatePair], t: float, s: float) -> None:
    r = report(
        pairs=pairs,
        polygram_overlap_threshold=t,
        summary=summary(spearman_polygram_jaccard=s),
        confirmed=[(p.i, p.j) for p in pairs if p.gate_pass],
    )
    once = ValidationReport.from_json(r.to_json())
    assert ValidationReport.from_json(once.to_json()) == once
    assert once.to_json() == r.to_json()
    for a, b in zip(sorted(r.pairs, key=lambda p: (p.i, p.j)), once.pairs):
        for x, y in ((a.jaccard, b.jaccard), (a.kl_ratio_paired, b.kl_ratio_paired)):
            if math.isfinite(x):
                assert y == pytest.approx(x, rel=5e-6, abs=0)
            else:
                assert math.isnan(y)
