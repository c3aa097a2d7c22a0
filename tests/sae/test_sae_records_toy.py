"""SAEFeatureRecord validation and dtype policy; the toy JSON schema."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sae_helpers import TOY, fingerprint

from polygram.errors import PolygramError, SAEFileNotFoundError, SAEFormatError
from polygram.sae import SAEFeatureRecord, dumps_toy_sae, load_toy_sae, write_toy_sae

# ---------------------------------------------------------------- records


def test_float64_projection_is_a_read_only_view_not_a_copy() -> None:
    row = np.arange(6, dtype=np.float64)
    rec = SAEFeatureRecord(3, "f3", row)
    assert rec.projection.dtype == np.float64
    assert np.shares_memory(rec.projection, row)
    assert not rec.projection.flags.writeable
    assert row.flags.writeable  # the caller's array keeps its flags
    with pytest.raises(ValueError):
        rec.projection[0] = 1.0


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        ([0.1, 0.2], np.float64),  # decimal JSON values are not rounded to float32
        (np.array([1, 2], dtype=np.int32), np.float64),
        (np.array([0.5, 2.0], dtype=np.float16), np.float64),
        (np.array([0.1, 2.0], dtype=np.float32), np.float64),  # spec 05 §5.4: float64
        (np.array([0.25, 1.0]), np.float64),
    ],
)
def test_projection_dtype_policy(value: Any, dtype: type) -> None:
    rec = SAEFeatureRecord(0, "a", value)
    assert rec.projection.dtype == dtype
    np.testing.assert_array_equal(rec.projection, np.asarray(value, dtype=np.float64))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"projection": [[1.0, 2.0]]}, "1-D"),
        ({"projection": 3.0}, "1-D"),
        ({"projection": []}, "empty"),
        ({"projection": [1.0, math.nan]}, "component 1 is nan"),
        ({"projection": [math.inf]}, "finite"),
        ({"projection": ["a", "b"]}, "not numeric"),
        ({"projection": [True, False]}, "boolean"),
        ({"feature_id": -1}, "non-negative"),
        ({"feature_id": True}, "non-negative integer"),
        ({"feature_id": 1.5}, "non-negative integer"),
        ({"name": ""}, "name"),
        ({"label": 3}, "label"),
        ({"activation_mean": math.nan}, "activation_mean"),
        ({"activation_std": "x"}, "activation_std"),
    ],
)
def test_record_validation(kwargs: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {"feature_id": 0, "name": "a", "projection": [1.0, 2.0]}
    base.update(kwargs)
    with pytest.raises(SAEFormatError, match=match) as exc:
        SAEFeatureRecord(**base)
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, PolygramError)


def test_record_equality_and_hash() -> None:
    a = SAEFeatureRecord(1, "a", [1.0, 2.0], label="c/a")
    b = SAEFeatureRecord(1, "a", np.array([1.0, 2.0]), label="c/a")
    c = SAEFeatureRecord(1, "a", np.array([1.0, 2.0], dtype=np.float32), label="c/a")
    assert a == b == c and hash(a) == hash(b)  # equal values (float32 widens exactly)
    assert a != SAEFeatureRecord(1, "a", [1.0, 2.5], label="c/a")
    assert "float64[2]" in repr(a)
    assert a.dim == 2


# -------------------------------------------------------------- toy JSON


def test_bundled_fixture_shape(ref: dict[str, Any]) -> None:
    recs = load_toy_sae(TOY)
    assert list(recs) == list(range(16))
    expected = {f["feature_id"]: f for f in ref["toy_sae_fixture"]["features"]}
    for fid, rec in recs.items():
        e = expected[fid]
        assert rec.name == e["name"] and rec.label == e["label"]
        assert rec.projection.tolist() == e["projection"]
        assert rec.activation_mean == e["activation_mean"]
        assert rec.activation_std == e["activation_std"]
        assert rec.dim == 8
    prefixes = [recs[i].label.split("/")[0] for i in range(16)]  # type: ignore[union-attr]
    assert prefixes == ["mammals"] * 4 + ["birds"] * 4 + ["vehicles"] * 4 + ["fruits"] * 4
    doc = json.loads(TOY.read_text())
    assert doc["schema_version"] == 1 and isinstance(doc["description"], str)


def test_load_keeps_file_order_and_ignores_header_fields(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(
        json.dumps(
            {
                "schema_version": 99,
                "features": [
                    {"feature_id": 7, "name": "b", "projection": [1, 0]},
                    {"feature_id": 2, "name": "a", "projection": [0.5, 0.25], "label": "x/a"},
                ],
            }
        )
    )
    before = fingerprint(p)
    recs = load_toy_sae(p)
    assert list(recs) == [7, 2]
    assert recs[2].label == "x/a" and recs[7].label is None
    assert fingerprint(p) == before


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "missing top-level 'features'"),
        ('{"schema_version": 1}', "missing top-level 'features'"),
        ('{"features": {}}', "expected a list"),
        ('{"features": [3]}', r"features\[0\]: got int"),
        (
            '{"features": [{"feature_id": 0, "name": "a"}]}',
            r"missing required key\(s\) \['projection'\]",
        ),
        (
            '{"features": [{"feature_id": "0", "name": "a", "projection": [1]}]}',
            "expected an integer",
        ),
        ('{"features": [{"feature_id": 0, "name": "a", "projection": 1}]}', "list of numbers"),
        (
            '{"features": [{"feature_id": 0, "name": "a", "projection": [1]},'
            ' {"feature_id": 0, "name": "b", "projection": [2]}]}',
            "duplicate feature_id 0",
        ),
        ('{"features": [{"feature_id": 0, "name": "a", "projection": [[1]]}]}', "1-D"),
    ],
)
def test_bad_toy_json(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(SAEFormatError, match=match) as exc:
        load_toy_sae(p)
    assert "bad.json" in str(exc.value)


def test_missing_toy_file(tmp_path: Path) -> None:
    with pytest.raises(SAEFileNotFoundError, match="no such file"):
        load_toy_sae(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):
        load_toy_sae(tmp_path)


def test_writer_round_trip_and_format(tmp_path: Path) -> None:
    recs = load_toy_sae(TOY)
    out = write_toy_sae(tmp_path / "sub" / "copy.json", recs.values(), description="é copy")
    text = out.read_text()
    assert text == dumps_toy_sae(recs.values(), description="é copy")
    assert "\\u00e9" in text and not text.endswith("\n")
    assert text.startswith('{\n  "schema_version": 1,\n  "description"')
    assert load_toy_sae(out) == recs
    no_optional = SAEFeatureRecord(5, "x", np.array([0.1], dtype=np.float32))
    entry = json.loads(dumps_toy_sae([no_optional], description="d"))["features"][0]
    assert list(entry) == ["feature_id", "name", "projection"]
    assert entry["projection"] == [float(np.float32(0.1))]
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["copy.json"]  # no temp left
