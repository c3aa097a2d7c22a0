"""``forward.output_scale`` (ρ(x) of spec 16 §1.4) and ``forward.encoder_input``
(x' of §1.2), against closed forms and the forward they are part of."""

from __future__ import annotations

import numpy as np
import pytest

from polygram.sae import forward as saef
from tests.compression.fold_helpers import NORMALIZATIONS, random_sae


def rho_closed_form(mode: str, x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    if mode == "none":
        return np.ones(len(x))
    if mode == "expected_average_only_in":
        return np.full(len(x), 1 / 0.7)
    if mode == "constant_norm_rescale":
        return np.linalg.norm(x, axis=1) / np.sqrt(x.shape[1])
    return (x - x.mean(axis=1, keepdims=True)).std(axis=1, ddof=1)


@pytest.mark.parametrize("mode", NORMALIZATIONS)
def test_output_scale_is_rho_and_scales_contributions(mode: str) -> None:
    rng = np.random.default_rng(0)
    sae = random_sae(rng, "standard", 5, 6, normalize=mode)
    x = rng.normal(size=(2, 7, 5)).astype(np.float32)
    rho = saef.output_scale(sae, x)
    assert rho.shape == (2, 7) and rho.dtype == np.float32
    np.testing.assert_allclose(rho.reshape(-1), rho_closed_form(mode, x.reshape(-1, 5)), rtol=1e-5)
    f = np.abs(rng.normal(size=(2, 7))).astype(np.float32)
    got = saef.contribution(sae, f, 3, x)
    np.testing.assert_allclose(
        got, (f * rho)[..., None] * sae.tensors["W_dec"][3], rtol=1e-5, atol=1e-7
    )


def test_output_scale_torch_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    sae = random_sae(rng, "jumprelu", 4, 5, normalize="layer_norm")
    x = rng.normal(size=(9, 4)).astype(np.float32)
    got = saef.output_scale(sae, torch.from_numpy(x))
    assert isinstance(got, torch.Tensor) and got.shape == (9,)
    np.testing.assert_allclose(got.numpy(), saef.output_scale(sae, x), rtol=1e-6)


def test_output_scale_refuses_a_bad_width() -> None:
    sae = random_sae(np.random.default_rng(2), "standard", 4, 5)
    with pytest.raises(ValueError, match=r"output_scale: x: shape \[3, 2\]"):
        saef.output_scale(sae, np.zeros((3, 2), np.float32))


@pytest.mark.parametrize("mode", NORMALIZATIONS)
@pytest.mark.parametrize("arch", ["standard", "jumprelu", "topk", "gated"])
def test_encoder_input_is_what_the_encoder_multiplies(arch: str, mode: str) -> None:
    rng = np.random.default_rng(3)
    sae = random_sae(rng, arch, 5, 6, normalize=mode)
    x = rng.normal(size=(11, 5)).astype(np.float32)
    xp = saef.encoder_input(sae, x)
    assert xp.shape == x.shape
    if arch in ("standard", "topk"):
        z = xp @ sae.tensors["W_enc"] + sae.tensors["b_enc"]
        f = saef.encode(sae, x)
        fired = f > 0
        np.testing.assert_allclose(f[fired], z[fired], rtol=1e-5, atol=1e-6)
        if arch == "standard":
            assert (z[~fired] <= 1e-6).all()
    elif arch == "jumprelu":
        z = xp @ sae.tensors["W_enc"] + sae.tensors["b_enc"]
        want = np.where(z > sae.tensors["threshold"], np.maximum(z, 0), 0)
        np.testing.assert_allclose(saef.encode(sae, x), want, rtol=1e-5, atol=1e-6)
    else:
        h = xp @ sae.tensors["W_enc"]
        gate = h + sae.tensors["b_gate"] > 0
        mag = np.maximum(h * np.exp(sae.tensors["r_mag"]) + sae.tensors["b_mag"], 0)
        np.testing.assert_allclose(saef.encode(sae, x), gate * mag, rtol=1e-5, atol=1e-6)


def test_encoder_input_without_b_dec() -> None:
    rng = np.random.default_rng(4)
    t = dict(random_sae(rng, "standard", 3, 4).tensors)
    from polygram.sae import SAE

    sae = SAE(architecture="standard", tensors=t, apply_b_dec_to_input=False)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(saef.encoder_input(sae, x), x)
