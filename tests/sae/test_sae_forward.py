"""The one SAE forward (spec 16 §1.2–§1.4): every case of
reference_values_16.json on numpy and torch, and properties against the
per-token oracle in forward_oracle.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from forward_oracle import decode_token, encode_token, reconstruct_token
from hypothesis import given
from hypothesis import strategies as st

from polygram.errors import SAEFormatError, UnsupportedSAEError
from polygram.sae import SAE
from polygram.sae import forward as saef

torch = pytest.importorskip("torch")

REF = json.loads(
    (Path(__file__).parents[1] / "data" / "reference_values_16.json").read_text(encoding="utf-8")
)
SHARED = REF["sae_forward_shared"]
TOL = {"rtol": 1e-5, "atol": 1e-6}
BACKENDS = ("numpy", "torch")


def f32(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.float32)


def base(**extra: Any) -> dict[str, np.ndarray]:
    t = {k: f32(SHARED[k]) for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    t.update({k: f32(v) for k, v in extra.items()})
    return t


def run(fn: Any, sae: SAE, x: Any, backend: str, **kw: Any) -> np.ndarray:
    """``fn(sae, x)`` on ``backend``, back as a float64 numpy array."""
    if backend == "torch":
        out = fn(sae, torch.tensor(np.asarray(x, dtype=np.float64)), **kw)
        assert isinstance(out, torch.Tensor) and out.device.type == "cpu"
        return out.double().numpy()
    out = fn(sae, f32(x), **kw)
    assert isinstance(out, np.ndarray)
    return out.astype(np.float64)


def check(got: np.ndarray, want: Any) -> None:
    np.testing.assert_allclose(got, np.asarray(want, dtype=np.float64), **TOL)


X = SHARED["x"]
GATED = SHARED["gated"]


def gated_tensors() -> dict[str, np.ndarray]:
    t = base(**{k: GATED[k] for k in ("b_gate", "b_mag", "r_mag")})
    del t["b_enc"]
    return t


# ------------------------------------------------------------- reference cases
@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_standard_jumprelu_topk_gated(backend: str) -> None:
    cases = [
        (SAE("standard", base()), SHARED["standard"]),
        (SAE("jumprelu", base(threshold=SHARED["threshold"])), SHARED["jumprelu"]),
        (SAE("topk", base(), k=2), SHARED["topk_k2"]),
        (SAE("gated", gated_tensors()), GATED),
    ]
    for sae, want in cases:
        acts = run(saef.encode, sae, X, backend)
        check(acts, want["acts"])
        check(run(saef.reconstruct, sae, X, backend), want["recon"])
        check(run(saef.decode, sae, want["acts"], backend), want["recon"])
        check(run(saef.residual, sae, X, backend), np.asarray(X) - np.asarray(want["recon"]))
        if "l0_per_token" in want:
            assert (acts > 0).sum(axis=1).tolist() == want["l0_per_token"]
        counts = saef.fire_counts(sae, f32(X) if backend == "numpy" else torch.tensor(X))
        assert np.asarray(counts).tolist() == (np.asarray(want["acts"]) > 0).sum(0).tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_b_dec_to_input_false(backend: str) -> None:
    want = SHARED["standard_apply_b_dec_to_input_false"]
    sae = SAE("standard", base(), apply_b_dec_to_input=False)
    check(run(saef.encode, sae, X, backend), want["acts"])
    check(run(saef.reconstruct, sae, X, backend), want["recon"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_feature_2_never_fires(backend: str) -> None:
    want = SHARED["zero_feature_2"]
    t = base(threshold=SHARED["threshold"])
    t["W_enc"][:, 2] = 0
    t["b_enc"][2] = 0
    t["W_dec"][2] = 0
    std = {k: v for k, v in t.items() if k != "threshold"}
    check(run(saef.encode, SAE("standard", std), X, backend), want["standard_acts"])
    check(run(saef.encode, SAE("jumprelu", t), X, backend), want["jumprelu_acts"])
    topk = SAE("topk", std, k=2)
    check(run(saef.encode, topk, X, backend), want["topk_k2_acts"])
    check(run(saef.reconstruct, topk, X, backend), want["topk_k2_recon"])


def eye_topk(**kw: Any) -> SAE:
    eye = np.eye(4, dtype=np.float32)
    t = {
        "W_enc": eye,
        "b_enc": np.zeros(4, np.float32),
        "W_dec": eye,
        "b_dec": np.zeros(4, np.float32),
    }
    t.update(kw)
    return SAE("topk", t, k=2, rescale_acts_by_decoder_norm="W_dec" in kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(REF["topk_cases"]["cases"]))
def test_topk_cases(backend: str, case: str) -> None:
    want = REF["topk_cases"]["cases"][case]
    acts = run(saef.encode, eye_topk(), [want["x"]], backend)[0]
    check(acts, want["acts"])
    assert int((acts > 0).sum()) == want["l0"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_rescaled_by_decoder_norm(backend: str) -> None:
    want = REF["topk_cases"]["rescale_acts_by_decoder_norm"]
    sae = eye_topk(W_dec=f32(want["W_dec"]))
    check(run(saef.encode, sae, [want["x"]], backend)[0], want["acts"])
    check(run(saef.reconstruct, sae, [want["x"]], backend)[0], want["recon"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("mode", "key", "factor"),
    [
        ("constant_norm_rescale", "constant_norm_rescale", None),
        ("layer_norm", "layer_norm", None),
        ("expected_average_only_in", "expected_average_only_in_factor_2", 2.0),
    ],
)
def test_normalize_activations(backend: str, mode: str, key: str, factor: float | None) -> None:
    want = REF["normalize_activations"][key]
    sae = SAE("standard", base(), normalize_activations=mode, norm_scaling_factor=factor)
    x0 = [X[0]]
    acts = run(saef.encode, sae, x0, backend)
    check(acts, [want["acts"]])
    check(run(saef.reconstruct, sae, x0, backend), [want["recon"]])
    xs = torch.tensor(x0) if backend == "torch" else f32(x0)
    a = torch.tensor(acts) if backend == "torch" else f32(acts)
    check(np.asarray(saef.decode(sae, a, x=xs), dtype=np.float64), [want["recon"]])


# ---------------------------------------------------------------- contracts
def test_decode_and_contribution_need_x_when_the_normalisation_is_per_token() -> None:
    sae = SAE("standard", base(), normalize_activations="layer_norm")
    with pytest.raises(ValueError, match="needs x"):
        saef.decode(sae, np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="pass x="):
        saef.contribution(sae, np.ones(1, np.float32), 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "opts",
    [
        {"normalize_activations": "none"},
        {"normalize_activations": "constant_norm_rescale"},
        {"normalize_activations": "layer_norm"},
        {"normalize_activations": "expected_average_only_in", "norm_scaling_factor": 2.0},
    ],
)
def test_contributions_sum_to_the_reconstruction(backend: str, opts: dict[str, Any]) -> None:
    # x̂ = N_out(Σ f_j W_dec[j] + b_dec) is affine in f: x̂ − x̂(f = 0) = Σ_j contribution_j
    for sae in (SAE("standard", base(), **opts), SAE("topk", eye_topk().tensors, k=2, **opts)):
        x = np.asarray(X if sae.d_in == 3 else [[0.6, 0.4, 0.9, 0.1]], np.float64)
        xb = torch.tensor(x) if backend == "torch" else f32(x)
        f = saef.encode(sae, xb)
        total = sum(np.asarray(saef.contribution(sae, f[:, j], j, x=xb)) for j in range(sae.d_sae))
        zero = saef.decode(sae, f * 0, x=xb)
        check(np.asarray(saef.reconstruct(sae, xb)) - np.asarray(zero), total)


def test_contribution_of_rescaled_topk_divides_by_the_row_norm() -> None:
    want = REF["topk_cases"]["rescale_acts_by_decoder_norm"]
    sae = eye_topk(W_dec=f32(want["W_dec"]))
    got = saef.contribution(sae, f32([0.8]), 1)
    check(got, [[0.0, 0.8, 0.0, 0.0]])  # 0.8 / ‖W_dec[1]‖ = 0.4, times W_dec[1] = (0, 2, 0, 0)


def test_features_select_columns_and_topk_still_ranks_all() -> None:
    sae = SAE("topk", base(), k=2)
    full = saef.encode(sae, f32(X))
    np.testing.assert_array_equal(saef.encode(sae, f32(X), features=[3, 0]), full[:, [3, 0]])
    with pytest.raises(IndexError, match="out of range"):
        saef.encode(sae, f32(X), features=[4])


def test_shapes_dtypes_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    sae = SAE("jumprelu", base(threshold=SHARED["threshold"]))
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    whole = saef.encode(sae, x)
    assert whole.shape == (2, 5, 4) and whole.dtype == np.float32
    assert saef.reconstruct(sae, x).shape == (2, 5, 3)
    assert saef.encode(sae, np.zeros((0, 3))).shape == (0, 4)
    monkeypatch.setattr(saef, "CHUNK_ACTIVATIONS", 8)  # two tokens per chunk
    assert saef.chunk_tokens(4) == 2
    np.testing.assert_array_equal(saef.encode(sae, x), whole)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 3\)"):
        saef.encode(sae, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="finite"):
        saef.encode(sae, np.array([[np.nan, 0, 0]]))


def test_f64_sae_computes_in_float64_and_torch_in_float32() -> None:
    t64 = {k: v.astype(np.float64) for k, v in base().items()}
    sae = SAE("standard", t64)
    assert saef.encode(sae, np.asarray(X)).dtype == np.float64
    out = saef.encode(sae, torch.tensor(X, dtype=torch.float64))
    assert out.dtype == torch.float32


def test_torch_tensors_are_cached_once_per_device() -> None:
    sae = SAE("standard", base())
    x = torch.tensor(X)
    saef.encode(sae, x)
    saef.reconstruct(sae, x)
    keys = [k for k in sae._cache if k.startswith("forward:torch:")]
    assert keys == ["forward:torch:cpu"]


def test_partial_sae_cannot_be_run() -> None:
    sae = SAE("standard", {"W_dec": base()["W_dec"]}, partial=True)
    with pytest.raises(SAEFormatError, match="decoder-only"):
        saef.encode(sae, f32(X))


def test_compatibility_wrappers_are_the_standard_forward() -> None:
    t = base()
    sae = SAE("standard", t)
    x = f32(X)
    np.testing.assert_allclose(
        saef.sae_activations(x, t["W_enc"], t["b_enc"], t["b_dec"]), saef.encode(sae, x)
    )
    np.testing.assert_allclose(
        saef.residual_stream(x, t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], chunk=2),
        saef.residual(sae, x),
    )


# ------------------------------------------------------------ value object
def test_sae_is_frozen_and_its_arrays_read_only() -> None:
    t = base()
    sae = SAE("standard", t)
    with pytest.raises(AttributeError):
        sae.k = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        sae.tensors["W_dec"][0, 0] = 1
    t["W_dec"][0, 0] = 42  # the caller's array was copied, not frozen
    assert sae.tensors["W_dec"][0, 0] == 1.0
    assert (sae.d_in, sae.d_sae) == (3, 4)


def test_replace_tensors_checks_names_and_shapes() -> None:
    sae = SAE("standard", base())
    new = sae.replace_tensors(b_enc=np.ones(4))
    assert new.tensors["b_enc"].dtype == np.float32 and new.tensors["b_enc"].tolist() == [1] * 4
    assert sae.tensors["b_enc"][1] == -0.5  # the original is untouched
    with pytest.raises(SAEFormatError, match="not a tensor of this standard SAE"):
        sae.replace_tensors(threshold=np.zeros(4))
    with pytest.raises(SAEFormatError, match=r"shape \[3\]; expected \[4\]"):
        sae.replace_tensors(b_enc=np.zeros(3))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"architecture": "transcoder"}, UnsupportedSAEError, "transcoder"),
        ({"architecture": "batchtopk"}, UnsupportedSAEError, "save the inference model"),
        ({"architecture": "topk"}, SAEFormatError, r"k is None.*d_sae=4"),
        ({"architecture": "topk", "k": 5}, SAEFormatError, r"k is 5.*\[1, d_sae=4\]"),
        ({"architecture": "jumprelu"}, SAEFormatError, "needs tensor 'threshold'"),
        ({"normalize_activations": "unit"}, UnsupportedSAEError, "normalize_activations 'unit'"),
        ({"normalize_activations": "expected_average_only_in"}, UnsupportedSAEError,
         "norm_scaling_factor"),
    ],
)  # fmt: skip
def test_refusals(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    arch = kwargs.pop("architecture", "standard")
    with pytest.raises(error, match=match):
        SAE(arch, base(), **kwargs)


def test_non_finite_and_bad_shapes_are_refused() -> None:
    t = base()
    t["b_dec"][1] = np.inf
    with pytest.raises(SAEFormatError, match=r"b_dec holds a non-finite value at index \[1\]"):
        SAE("standard", t)
    t = base()
    t["b_enc"] = np.zeros(5, np.float32)
    with pytest.raises(SAEFormatError, match=r"b_enc has shape \[5\].*need \[4\]"):
        SAE("standard", t)


# ------------------------------------------------------------ oracle properties
def _values(draw: Any, shape: tuple[int, ...]) -> np.ndarray:
    # quarter steps make ties (TopK's boundary rule) and exact zeros common
    n = int(np.prod(shape))
    vals = draw(st.lists(st.integers(-8, 8), min_size=n, max_size=n))
    return (np.asarray(vals, dtype=np.float64) / 4).reshape(shape)


@st.composite
def sae_and_x(draw: Any) -> tuple[dict[str, np.ndarray], str, dict[str, Any], np.ndarray]:
    arch = draw(st.sampled_from(("standard", "jumprelu", "topk", "gated")))
    d_in, d_sae, n_tok = draw(st.integers(2, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    t = {
        "W_enc": _values(draw, (d_in, d_sae)),
        "W_dec": _values(draw, (d_sae, d_in)),
        "b_dec": _values(draw, (d_in,)),
    }
    if arch == "gated":
        t.update(b_gate=_values(draw, (d_sae,)), b_mag=_values(draw, (d_sae,)))
        t["r_mag"] = _values(draw, (d_sae,)) / 2
    else:
        t["b_enc"] = _values(draw, (d_sae,))
    if arch == "jumprelu":
        t["threshold"] = _values(draw, (d_sae,))
    opts: dict[str, Any] = {
        "apply_b_dec": draw(st.booleans()),
        "normalize": draw(
            st.sampled_from(
                ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
            )
        ),
    }
    if opts["normalize"] == "expected_average_only_in":
        opts["factor"] = draw(st.sampled_from((0.5, 2.0, 3.0)))
    if arch == "topk":
        opts["k"] = draw(st.integers(1, d_sae))
        opts["rescale"] = draw(st.booleans())
    x = _values(draw, (n_tok, d_in))
    return t, arch, opts, x


def _sae(t: dict[str, np.ndarray], arch: str, opts: dict[str, Any]) -> SAE:
    return SAE(
        arch,
        t,
        k=opts.get("k"),
        rescale_acts_by_decoder_norm=bool(opts.get("rescale")),
        apply_b_dec_to_input=opts["apply_b_dec"],
        normalize_activations=opts["normalize"],
        norm_scaling_factor=opts.get("factor"),
    )


def _lists(t: dict[str, np.ndarray]) -> dict[str, Any]:
    return {k: v.tolist() for k, v in t.items()}


@given(sae_and_x())
def test_forward_matches_the_per_token_oracle(case: Any) -> None:
    t, arch, opts, x = case
    if opts["normalize"] == "layer_norm" and (np.ptp(x, axis=1) == 0).any():
        opts["normalize"] = "none"  # σ = 0: (x − μ)/(σ + ε) blows the ties up by 1e5
    sae = _sae({k: v.copy() for k, v in t.items()}, arch, opts)  # float64 SAE: exact oracle match
    tl = _lists(t)
    want_f, want_x = [], []
    for row in x.tolist():
        f, ctx = encode_token(tl, row, arch, opts)
        want_f.append(f)
        want_x.append(decode_token(tl, f, arch, opts, ctx))
    got_f = saef.encode(sae, x)
    np.testing.assert_allclose(got_f, want_f, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(saef.reconstruct(sae, x), want_x, rtol=1e-9, atol=1e-9)
    assert saef.fire_counts(sae, x).tolist() == (np.asarray(want_f) > 0).sum(0).tolist()
    if arch == "topk":
        assert ((got_f > 0).sum(axis=1) <= opts["k"]).all()
    assert (got_f >= 0).all()


@given(sae_and_x())
def test_torch_matches_numpy(case: Any) -> None:
    t, arch, opts, x = case
    if opts["normalize"] in ("constant_norm_rescale", "layer_norm"):
        opts["normalize"] = "none"  # irrational factors: float32 rounding could break ties apart
    # quarter-step values and factors are exact in float32, so both backends see the same ties
    sae = _sae({k: v.astype(np.float32) for k, v in t.items()}, arch, opts)
    xn = x.astype(np.float32)
    for fn in (saef.encode, saef.reconstruct):
        want = fn(sae, xn)
        got = fn(sae, torch.tensor(xn)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert saef.fire_counts(sae, torch.tensor(xn)).tolist() == saef.fire_counts(sae, xn).tolist()


def test_oracle_reconstruct_of_reference_token() -> None:
    # the oracle itself agrees with the reference file (so the property tests test polygram)
    tl = _lists(base(threshold=SHARED["threshold"]))
    got = reconstruct_token(tl, X[2], "jumprelu", {"apply_b_dec": True})
    np.testing.assert_allclose(got, SHARED["jumprelu"]["recon"][2], atol=1e-12)
