"""``load_sae_safetensors``: key precedence, orientation, dtypes on both
paths, memory behaviour, and every refusal."""

from __future__ import annotations

import json
import struct
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sae_helpers import bf16_value, fingerprint, to_bf16_bits, write_bf16, write_numpy, write_raw

from polygram.errors import (
    FeatureSelectionError,
    MissingDependencyError,
    OrientationError,
    SAEFileNotFoundError,
    SAEFormatError,
)
from polygram.sae import load_sae_safetensors, read_safetensors_header


@pytest.fixture(scope="module")
def w_dec(ref: dict[str, Any]) -> np.ndarray:
    return np.array(ref["sae_import_cli"]["inputs"]["W_dec"], dtype=np.float32)


def rows_of(recs: dict[int, Any]) -> np.ndarray:
    return np.stack([r.projection for r in recs.values()])


# ----------------------------------------------------------- reference case


def test_sae_import_cli_records(tmp_path: Path, ref: dict[str, Any], w_dec: np.ndarray) -> None:
    case = ref["sae_import_cli"]
    path = write_numpy(tmp_path / "sae_wdec.safetensors", W_dec=w_dec)
    names = {int(k): v for k, v in case["inputs"]["names.json"].items()}
    recs = load_sae_safetensors(path, names=names, feature_ids=[0, 2, 5])
    want = case["output_json"]["features"]
    assert list(recs) == [f["feature_id"] for f in want]
    for rec, w in zip(recs.values(), want):
        assert rec.name == w["name"]
        assert rec.projection.tolist() == w["projection"]  # exact float32 values
        assert rec.label is None and rec.activation_mean is None and rec.activation_std is None
    # the equivalences stated with the case: transposed decoder.weight, and dec + decoder.weight
    for tensors in ({"decoder__weight": w_dec.T}, {"dec": w_dec * 7, "decoder__weight": w_dec.T}):
        other = write_numpy(tmp_path / "other.safetensors", **tensors)
        again = load_sae_safetensors(other, names=names, feature_ids=[0, 2, 5])
        assert again == recs


def test_eager_loads_every_row_as_one_float32_block(tmp_path: Path, w_dec: np.ndarray) -> None:
    path = write_numpy(tmp_path / "s.safetensors", W_dec=w_dec, b_dec=np.zeros(4, np.float32))
    recs = load_sae_safetensors(path, names={3: "three"})
    assert list(recs) == list(range(6))
    assert [r.name for r in recs.values()] == [
        "feat_0",
        "feat_1",
        "feat_2",
        "three",
        "feat_4",
        "feat_5",
    ]
    np.testing.assert_array_equal(rows_of(recs), w_dec)
    bases = {id(r.projection.base) for r in recs.values()}
    assert len(bases) == 1  # one decoder array, every record a row view of it
    base = recs[0].projection.base
    assert base.dtype == np.float32 and base.nbytes == w_dec.nbytes
    assert all(
        r.projection.dtype == np.float32 and not r.projection.flags.writeable for r in recs.values()
    )


# --------------------------------------------------------- key precedence


@pytest.mark.parametrize(
    ("present", "winner"),
    [
        (("W_dec", "w_dec", "decoder.weight", "dec"), "W_dec"),
        (("w_dec", "decoder.weight", "dec"), "w_dec"),
        (("decoder.weight", "dec"), "decoder.weight"),
        (("dec",), "dec"),
    ],
)
def test_key_precedence(tmp_path: Path, present: tuple[str, ...], winner: str) -> None:
    rng = np.random.default_rng(1)
    mats = {k: rng.normal(size=(5, 3)).astype(np.float32) for k in present}
    # decoder.weight is stored nn.Linear-style, [d_in, d_sae]
    stored = {k.replace(".", "__"): (m.T if k == "decoder.weight" else m) for k, m in mats.items()}
    path = write_numpy(tmp_path / "k.safetensors", **stored, W_enc=np.zeros((3, 5), np.float32))
    for ids in (None, [4, 0]):
        recs = load_sae_safetensors(path, feature_ids=ids)
        want = mats[winner] if ids is None else mats[winner][ids]
        np.testing.assert_array_equal(rows_of(recs), want)


def test_no_decoder_key_lists_what_was_tried(tmp_path: Path) -> None:
    path = write_numpy(tmp_path / "enc.safetensors", W_enc=np.zeros((2, 3), np.float32))
    with pytest.raises(
        SAEFormatError,
        match=r"no decoder tensor: tried 'W_dec', 'w_dec', 'decoder.weight', 'dec'; the file holds 'W_enc'",
    ) as e:
        load_sae_safetensors(path)
    assert "enc.safetensors" in str(e.value)


# ------------------------------------------------------------ orientation


def test_orientation_rules(tmp_path: Path) -> None:
    sq = np.arange(9, dtype=np.float32).reshape(3, 3)
    for key in ("W_dec", "w_dec", "dec"):  # rows are features even when square
        p = write_numpy(tmp_path / f"{key}.safetensors", **{key: sq})
        np.testing.assert_array_equal(rows_of(load_sae_safetensors(p)), sq)
        np.testing.assert_array_equal(rows_of(load_sae_safetensors(p, orientation="columns")), sq.T)
    p = write_numpy(tmp_path / "sq.safetensors", decoder__weight=sq)
    for ids in (None, [1]):
        with pytest.raises(OrientationError, match="square") as e:
            load_sae_safetensors(p, feature_ids=ids)
        assert isinstance(e.value, SAEFormatError) and "sq.safetensors" in str(e.value)
    np.testing.assert_array_equal(rows_of(load_sae_safetensors(p, orientation="columns")), sq.T)
    np.testing.assert_array_equal(rows_of(load_sae_safetensors(p, orientation="rows")), sq)
    np.testing.assert_array_equal(
        rows_of(load_sae_safetensors(p, feature_ids=[2], orientation="columns")), sq.T[[2]]
    )
    with pytest.raises(ValueError, match="orientation"):
        load_sae_safetensors(p, orientation="sideways")  # type: ignore[arg-type]


def test_transposed_decoder_weight_is_read_column_wise(tmp_path: Path) -> None:
    w = np.random.default_rng(2).normal(size=(7, 4)).astype(np.float32)  # d_sae=7, d_in=4
    p = write_numpy(tmp_path / "dl.safetensors", decoder__weight=w.T)
    eager = load_sae_safetensors(p)
    assert list(eager) == list(range(7))
    np.testing.assert_array_equal(rows_of(eager), w)
    assert len({id(r.projection.base) for r in eager.values()}) == 1  # transposed *view*, no copy
    sliced = load_sae_safetensors(p, feature_ids=[6, 1])
    np.testing.assert_array_equal(rows_of(sliced), w[[6, 1]])


@pytest.mark.parametrize("shape", [(6,), (2, 3, 4)])
def test_non_2d_decoder(tmp_path: Path, shape: tuple[int, ...]) -> None:
    p = write_numpy(tmp_path / "nd.safetensors", W_dec=np.zeros(shape, np.float32))
    with pytest.raises(SAEFormatError, match="expected a 2-D matrix"):
        load_sae_safetensors(p)


# ------------------------------------------------------------------ dtypes


def test_bf16_exact_on_both_paths(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    bits = to_bf16_bits(rng.normal(size=(40, 24)).astype(np.float32) * 10)
    bits[0, :4] = [0x0000, 0x8000, 0x7F7F, 0x0001]  # +0, −0, max finite, smallest subnormal
    want = bf16_value(bits)
    p = write_bf16(tmp_path / "b.safetensors", "W_dec", bits, b_dec=np.ones(24, np.float32))
    eager = load_sae_safetensors(p)
    assert eager[0].projection.dtype == np.float32
    assert rows_of(eager).view(np.uint32).tolist() == want.view(np.uint32).tolist()  # bit-exact
    ids = [39, 0, 17]
    sliced = load_sae_safetensors(p, feature_ids=ids)
    assert rows_of(sliced).view(np.uint32).tolist() == want[ids].view(np.uint32).tolist()
    # transposed BF16 decoder.weight: only columns are read on the sliced path
    pt = write_bf16(tmp_path / "bt.safetensors", "decoder.weight", np.ascontiguousarray(bits.T))
    np.testing.assert_array_equal(rows_of(load_sae_safetensors(pt)), want)
    np.testing.assert_array_equal(rows_of(load_sae_safetensors(pt, feature_ids=ids)), want[ids])


@pytest.mark.parametrize(
    ("dtype", "kept"),
    [(np.float16, np.float32), (np.float32, np.float32), (np.float64, np.float64)],
)
def test_float_dtypes_exact_on_both_paths(tmp_path: Path, dtype: type, kept: type) -> None:
    w = (np.random.default_rng(4).normal(size=(9, 5)) * 3).astype(dtype)
    p = write_numpy(tmp_path / "f.safetensors", W_dec=w)
    eager = load_sae_safetensors(p)
    sliced = load_sae_safetensors(p, feature_ids=[8, 3])
    assert eager[0].projection.dtype == kept and sliced[8].projection.dtype == kept
    np.testing.assert_array_equal(rows_of(eager), w.astype(kept))
    np.testing.assert_array_equal(rows_of(sliced), w.astype(kept)[[8, 3]])


def test_unsupported_decoder_dtype(tmp_path: Path) -> None:
    p = write_numpy(tmp_path / "b.safetensors", W_dec=np.zeros((2, 2), bool))
    with pytest.raises(SAEFormatError, match="dtype BOOL; supported: F32, F16, BF16, F64, I8"):
        load_sae_safetensors(p)


@pytest.mark.parametrize(
    ("dtype", "kept"),
    [
        (np.int8, np.float32),
        (np.uint8, np.float32),
        (np.int16, np.float32),
        (np.uint16, np.float32),
        (np.int32, np.float64),
        (np.uint32, np.float64),
        (np.int64, np.float64),
        (np.uint64, np.float64),
    ],
)
def test_integer_decoders_cast_exactly_on_both_paths(
    tmp_path: Path, dtype: type, kept: type
) -> None:
    """0.0.1 maps I8…U64 decoders to floats (spec 05 §5.6); the cast is exact
    (for 64-bit integers, up to 2**53 in magnitude)."""
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -(2**53)), min(int(info.max), 2**53)
    w = np.array([[lo, 0, 1], [hi, 7, 2], [3, 5, 11], [13, 17, 19]], dtype=dtype)
    for key, stored in (("W_dec", w), ("decoder__weight", np.ascontiguousarray(w.T))):
        p = write_numpy(tmp_path / f"{key}.safetensors", **{key: stored})
        eager = load_sae_safetensors(p)
        sliced = load_sae_safetensors(p, feature_ids=[3, 1])
        assert eager[0].projection.dtype == kept and sliced[3].projection.dtype == kept
        assert rows_of(eager).tolist() == w.astype(object).tolist()
        assert rows_of(sliced).tolist() == w[[3, 1]].astype(object).tolist()


@given(
    st.integers(1, 30),
    st.integers(1, 9),
    st.sampled_from(["F32", "F16", "BF16", "F64"]),
    st.booleans(),
    st.data(),
)
def test_eager_and_sliced_agree(
    n: int, d: int, dtype: str, transposed: bool, data: st.DataObject
) -> None:
    import tempfile

    rng = np.random.default_rng(n * 100 + d)
    w = rng.normal(size=(n, d)).astype(np.float32)
    key = "decoder.weight" if transposed else "W_dec"
    if transposed and n == d:
        key = "W_dec"  # a square decoder.weight is refused without orientation
    stored = np.ascontiguousarray(w.T) if key == "decoder.weight" else w
    ids = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.safetensors"
        if dtype == "BF16":
            write_bf16(path, key, to_bf16_bits(stored))
        else:
            np_dtype = {"F32": np.float32, "F16": np.float16, "F64": np.float64}[dtype]
            write_numpy(path, **{key.replace(".", "__"): stored.astype(np_dtype)})
        eager = load_sae_safetensors(path)
        sliced = load_sae_safetensors(path, feature_ids=ids)
    assert list(sliced) == ids
    for i in ids:
        assert sliced[i] == eager[i]


# --------------------------------------------------------------- selection


def test_feature_id_and_name_refusals(tmp_path: Path, w_dec: np.ndarray) -> None:
    p = write_numpy(tmp_path / "s.safetensors", W_dec=w_dec)
    with pytest.raises(FeatureSelectionError, match=r"repeated id\(s\) \[2\]"):
        load_sae_safetensors(p, feature_ids=[2, 0, 2])
    with pytest.raises(FeatureSelectionError, match=r"\[6, -1\] out of range.*0\.\.5"):
        load_sae_safetensors(p, feature_ids=[0, 6, -1])
    with pytest.raises(FeatureSelectionError, match="empty selection"):
        load_sae_safetensors(p, feature_ids=[])
    with pytest.raises(FeatureSelectionError, match="not integers"):
        load_sae_safetensors(p, feature_ids=[0, 1.0])  # type: ignore[list-item]
    with pytest.raises(FeatureSelectionError, match="expected a sequence"):
        load_sae_safetensors(p, feature_ids="0,1")  # type: ignore[arg-type]
    for ids in (None, [0]):
        with pytest.raises(FeatureSelectionError, match="names: feature id 6 out of range"):
            load_sae_safetensors(p, names={6: "x"}, feature_ids=ids)
    with pytest.raises(FeatureSelectionError, match="not an integer feature id"):
        load_sae_safetensors(p, names={"0": "x"})  # type: ignore[dict-item]
    with pytest.raises(FeatureSelectionError, match=r"names\[0\]"):
        load_sae_safetensors(p, names={0: ""})


def test_non_finite_rows(tmp_path: Path, w_dec: np.ndarray) -> None:
    w = w_dec.copy()
    w[4, 1] = np.nan
    p = write_numpy(tmp_path / "nan.safetensors", W_dec=w)
    with pytest.raises(SAEFormatError, match="feature 4 component 1 is nan"):
        load_sae_safetensors(p)
    # the sliced path never looks at rows it was not asked for
    assert list(load_sae_safetensors(p, feature_ids=[0, 5])) == [0, 5]


# ----------------------------------------------------------------- bad files


def _valid(tmp_path: Path) -> bytes:
    p = write_numpy(tmp_path / "v.safetensors", W_dec=np.ones((4, 3), np.float32))
    return p.read_bytes()


def _header(doc: dict[str, Any]) -> bytes:
    h = json.dumps(doc).encode()
    return struct.pack("<Q", len(h)) + h


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ok: b"", "shorter than the 8-byte header"),
        (lambda ok: b"PK\x03\x04zipdata", "exceeds the format's"),
        (lambda ok: b"\x10\x00\x00\x00\x00\x00\x00\x00{}", "only 2 follow"),
        (lambda ok: ok[: len(ok) - 10], "truncated: tensor 'W_dec' ends at data byte 48"),
        (lambda ok: struct.pack("<Q", 4) + b"\xff\xfe{}", "header is not JSON"),
        (lambda ok: struct.pack("<Q", 5) + b"[1,2]", "expected a JSON object, got list"),
        (
            lambda ok: _header({"W_dec": {"dtype": "F32", "shape": [2, 2]}}),
            "expected an object with dtype",
        ),
        (
            lambda ok: _header(
                {"W_dec": {"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 0]}}
            ),
            "non-negative integers",
        ),
        (
            lambda ok: _header(
                {"W_dec": {"dtype": "F32", "shape": [1, 1], "data_offsets": [4, 0]}}
            ),
            "begin <= end",
        ),
        (
            lambda ok: (
                _header({"W_dec": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})
                + bytes(12)
            ),
            "12 data bytes for shape",
        ),
        (lambda ok: _header({"__metadata__": {"a": 1}}), "__metadata__"),
        # overlapping tensors: caught by safetensors' own parser (the cross-check)
        (
            lambda ok: (
                _header(
                    {
                        "W_dec": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                        "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                    }
                )
                + bytes(16)
            ),
            "not a valid safetensors file",
        ),
    ],
)
def test_corrupt_files(tmp_path: Path, make: Any, match: str) -> None:
    p = tmp_path / "bad.safetensors"
    p.write_bytes(make(_valid(tmp_path)))
    before = fingerprint(p)
    for ids in (None, [0]):
        with pytest.raises(SAEFormatError, match=match) as e:
            load_sae_safetensors(p, feature_ids=ids)
        assert "bad.safetensors" in str(e.value)
    assert fingerprint(p) == before


def test_missing_file_and_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SAEFileNotFoundError, match="no such file") as e:
        load_sae_safetensors(tmp_path / "gone.safetensors")
    assert isinstance(e.value, FileNotFoundError) and "gone.safetensors" in str(e.value)
    (tmp_path / "fifo").mkdir()
    with pytest.raises(SAEFileNotFoundError, match="cfg.json"):  # a directory is a SAELens folder
        load_sae_safetensors(tmp_path / "fifo")


def test_header_metadata_and_offsets(tmp_path: Path) -> None:
    bits = to_bf16_bits(np.ones((2, 3), np.float32))
    p = write_raw(
        tmp_path / "m.safetensors",
        {"b_dec": ("F32", (3,), bytes(12)), "W_dec": ("BF16", (2, 3), bits.tobytes())},
        metadata={"format": "pt"},
    )
    h = read_safetensors_header(p)
    assert h.metadata == {"format": "pt"} and set(h.tensors) == {"b_dec", "W_dec"}
    w = h.tensors["W_dec"]
    assert (w.dtype, w.shape, w.end - w.start) == ("BF16", (2, 3), 12)
    assert w.start == h.data_start + 12


def test_inputs_are_never_modified(tmp_path: Path, w_dec: np.ndarray) -> None:
    p = write_numpy(tmp_path / "s.safetensors", W_dec=w_dec)
    pb = write_bf16(tmp_path / "b.safetensors", "W_dec", to_bf16_bits(w_dec))
    before = (fingerprint(p), fingerprint(pb))
    for path in (p, pb):
        load_sae_safetensors(path)
        load_sae_safetensors(path, feature_ids=[1, 3])
        with pytest.raises(FeatureSelectionError):
            load_sae_safetensors(path, feature_ids=[9])
    assert (fingerprint(p), fingerprint(pb)) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b.safetensors", "s.safetensors"]


def test_missing_safetensors_package(
    tmp_path: Path, w_dec: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write_numpy(tmp_path / "s.safetensors", W_dec=w_dec)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(MissingDependencyError, match=r"polygram\[sae\]") as e:
        load_sae_safetensors(p)
    assert isinstance(e.value, ImportError)


# ------------------------------------------------------------------ memory


def test_eager_bf16_peak_is_about_the_float32_size(tmp_path: Path) -> None:
    # Gemma-Scope-like rows (d_in = 2304); the per-record overhead is ~4 % there
    n, d = 1024, 2304
    bits = to_bf16_bits(np.random.default_rng(5).normal(size=(n, d)).astype(np.float32))
    p = write_bf16(tmp_path / "big.safetensors", "W_dec", bits)
    del bits
    tracemalloc.start()
    try:
        recs = load_sae_safetensors(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    f32 = n * d * 4
    assert len(recs) == n
    assert peak <= 1.2 * f32, f"peak {peak / f32:.2f}× the float32 size"


def test_sliced_reads_a_few_rows_only(tmp_path: Path) -> None:
    n, d = 20000, 256
    w = np.zeros((n, d), np.float32)
    w[::997] = 1.5
    p = write_numpy(tmp_path / "wide.safetensors", W_dec=w)
    del w
    tracemalloc.start()
    try:
        recs = load_sae_safetensors(p, feature_ids=[0, 997, 19940])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(r.projection[0] == 1.5 for r in recs.values())
    assert peak < 1_000_000  # the file is 20 MB
