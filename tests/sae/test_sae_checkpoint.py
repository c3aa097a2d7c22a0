"""The normalising SAE checkpoint loader (spec 11 §6) and sha256_file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from sae_helpers import bf16_value, fingerprint, to_bf16_bits, write_numpy, write_raw

from polygram._io import sha256_file
from polygram.errors import OrientationError, SAEFileNotFoundError, SAEFormatError
from polygram.sae import load_sae_checkpoint
from polygram.sae.checkpoint import check_sae_shapes

N, D = 12, 5  # n_features > d_model, as in every real SAE


def canonical(seed: int = 0, n: int = N, d: int = D) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W_enc": rng.standard_normal((d, n)).astype(np.float32),
        "b_enc": rng.standard_normal(n).astype(np.float32),
        "W_dec": rng.standard_normal((n, d)).astype(np.float32),
        "b_dec": rng.standard_normal(d).astype(np.float32),
    }


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == np.float32, k
        assert got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_canonical_names_round_trip(tmp_path: Path) -> None:
    t = canonical()
    p = write_numpy(tmp_path / "sae.safetensors", **t)
    before = fingerprint(p)
    assert_same(load_sae_checkpoint(p), t)
    assert fingerprint(p) == before


def test_nn_linear_layout_is_transposed(tmp_path: Path) -> None:
    t = canonical(1)
    p = write_numpy(
        tmp_path / "lin.safetensors",
        encoder__weight=t["W_enc"].T,  # (n, d): nn.Linear(d_model → n)
        encoder__bias=t["b_enc"],
        decoder__weight=t["W_dec"].T,  # (d, n): nn.Linear(n → d_model)
        decoder__bias=t["b_dec"],
    )
    got = load_sae_checkpoint(p)
    assert_same(got, t)
    assert all(a.flags.c_contiguous for a in got.values())


def test_encoder_weight_already_canonical_is_kept(tmp_path: Path) -> None:
    # rows < cols: (d_model, n) — the heuristic leaves it alone
    t = canonical(2)
    p = write_numpy(tmp_path / "e.safetensors", encoder__weight=t["W_enc"])
    np.testing.assert_array_equal(load_sae_checkpoint(p, keys=["W_enc"])["W_enc"], t["W_enc"])


def test_alias_precedence_and_dec_alias(tmp_path: Path) -> None:
    t = canonical(3)
    other = canonical(4)
    p = write_numpy(
        tmp_path / "a.safetensors",
        W_dec=t["W_dec"],
        dec=other["W_dec"],
        decoder__weight=other["W_dec"].T,
    )
    np.testing.assert_array_equal(load_sae_checkpoint(p, keys=["W_dec"])["W_dec"], t["W_dec"])
    q = write_numpy(tmp_path / "b.safetensors", dec=t["W_dec"])
    np.testing.assert_array_equal(load_sae_checkpoint(q, keys=["W_dec"])["W_dec"], t["W_dec"])


def test_square_canonical_names_are_left_alone(tmp_path: Path) -> None:
    t = canonical(5, n=4, d=4)
    p = write_numpy(tmp_path / "sq.safetensors", **t)
    assert_same(load_sae_checkpoint(p), t)


@pytest.mark.parametrize("name", ["decoder__weight", "encoder__weight"])
def test_square_nn_linear_names_are_refused(tmp_path: Path, name: str) -> None:
    p = write_numpy(tmp_path / "sq.safetensors", **{name: np.eye(4, dtype=np.float32)})
    key = "W_dec" if name.startswith("decoder") else "W_enc"
    with pytest.raises(OrientationError, match="square"):
        load_sae_checkpoint(p, keys=[key])


def test_missing_key_lists_aliases_and_file_keys(tmp_path: Path) -> None:
    t = canonical()
    p = write_numpy(tmp_path / "m.safetensors", W_enc=t["W_enc"], W_dec=t["W_dec"])
    with pytest.raises(ValueError, match="no b_enc tensor") as ei:
        load_sae_checkpoint(p)
    msg = str(ei.value)
    assert "'b_enc'" in msg and "'encoder.bias'" in msg  # aliases tried
    assert "'W_dec'" in msg and "'W_enc'" in msg  # the file's keys
    assert isinstance(ei.value, SAEFormatError)
    # a subset that is present loads fine
    assert set(load_sae_checkpoint(p, keys=("W_dec",))) == {"W_dec"}


def test_unknown_requested_key(tmp_path: Path) -> None:
    p = write_numpy(tmp_path / "u.safetensors", **canonical())
    with pytest.raises(ValueError, match=r"keys: \['threshold'\] are not SAE tensor names"):
        load_sae_checkpoint(p, keys=["W_dec", "threshold"])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SAEFileNotFoundError, match="no such file"):
        load_sae_checkpoint(tmp_path / "nope.safetensors")


def test_bf16_f16_f64_against_numpy_oracle(tmp_path: Path) -> None:
    t = canonical(6)
    bits = to_bf16_bits(t["W_dec"])
    p = write_raw(
        tmp_path / "mixed.safetensors",
        {
            "W_dec": ("BF16", bits.shape, bits.astype("<u2").tobytes()),
            "W_enc": ("F16", t["W_enc"].shape, t["W_enc"].astype("<f2").tobytes()),
            "b_enc": ("F64", (N,), t["b_enc"].astype("<f8").tobytes()),
            "b_dec": ("I8", (D,), np.arange(D, dtype="<i1").tobytes()),
        },
    )
    before = fingerprint(p)
    got = load_sae_checkpoint(p)
    want = {
        "W_dec": bf16_value(bits),
        "W_enc": t["W_enc"].astype(np.float16).astype(np.float32),
        "b_enc": t["b_enc"].astype(np.float64).astype(np.float32),
        "b_dec": np.arange(D, dtype=np.float32),
    }
    assert_same(got, want)
    assert fingerprint(p) == before


def test_bf16_nn_linear_decoder(tmp_path: Path) -> None:
    w = canonical(7)["W_dec"]
    bits = to_bf16_bits(w.T)  # stored (d, n)
    p = write_raw(
        tmp_path / "b.safetensors", {"decoder.weight": ("BF16", bits.shape, bits.tobytes())}
    )
    got = load_sae_checkpoint(p, keys=["W_dec"])["W_dec"]
    np.testing.assert_array_equal(got, bf16_value(bits).T)


def test_unsupported_dtype_and_bad_rank(tmp_path: Path) -> None:
    p = write_raw(tmp_path / "f8.safetensors", {"W_dec": ("F8_E4M3", (2, 2), bytes(4))})
    with pytest.raises(SAEFormatError, match="dtype F8_E4M3; supported"):
        load_sae_checkpoint(p, keys=["W_dec"])
    q = write_numpy(tmp_path / "r.safetensors", b_enc=np.zeros((2, 2), np.float32))
    with pytest.raises(
        SAEFormatError, match=r"b_enc \('b_enc'\) has shape \[2, 2\]; expected a 1-D"
    ):
        load_sae_checkpoint(q, keys=["b_enc"])


def test_non_finite_is_refused(tmp_path: Path) -> None:
    t = canonical()
    t["W_enc"][2, 3] = np.nan
    p = write_numpy(tmp_path / "nan.safetensors", **t)
    with pytest.raises(
        SAEFormatError, match=r"W_enc .* non-finite value at canonical index \[2, 3\]"
    ):
        load_sae_checkpoint(p)
    t = canonical()
    t["b_dec"][1] = np.inf
    q = write_numpy(tmp_path / "inf.safetensors", **t)
    with pytest.raises(SAEFormatError, match=r"b_dec .* \[1\] \(inf\)"):
        load_sae_checkpoint(q)


def test_not_safetensors(tmp_path: Path) -> None:
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"hello")
    with pytest.raises(SAEFormatError, match="not a safetensors file"):
        load_sae_checkpoint(p)


def test_check_sae_shapes(tmp_path: Path) -> None:
    t = canonical()
    check_sae_shapes("x", t)
    t["b_enc"] = t["b_enc"][:-1]
    with pytest.raises(SAEFormatError, match=r"b_enc has canonical shape \[11\] .* must be \[12\]"):
        check_sae_shapes("x", t)


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 200_001])
def test_sha256_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()
