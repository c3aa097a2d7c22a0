"""SAELens folders: cfg.json v6 and pre-v6, shape checks, orientation from config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sae_helpers import fingerprint, saelens_folder

from polygram.errors import OrientationError, SAEFileNotFoundError, SAEFormatError
from polygram.sae import (
    from_sae_lens,
    layer_from_hook,
    load_sae_lens_folder,
    load_sae_safetensors,
    read_sae_lens_config,
)


@pytest.fixture
def decoder() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(12, 5)).astype(np.float32)  # d_sae=12, d_in=5


@pytest.mark.parametrize("v6", [True, False])
def test_round_trip(tmp_path: Path, decoder: np.ndarray, v6: bool) -> None:
    folder = saelens_folder(tmp_path / "sae", decoder, v6=v6)
    before = {p.name: fingerprint(p) for p in folder.iterdir()}
    cfg = read_sae_lens_config(folder)
    assert cfg.format == ("v6" if v6 else "pre-v6")
    assert (cfg.d_sae, cfg.d_in) == (12, 5)
    assert cfg.hook_name == "blocks.10.hook_resid_pre" and cfg.layer == 10
    assert cfg.model_name == ("gpt2" if v6 else "gpt2-small")
    assert cfg.neuronpedia_id == ("gpt2-small/10-res-jb" if v6 else None)
    assert cfg.architecture == ("jumprelu" if v6 else "standard")
    assert cfg.dtype == "float32" and cfg.normalize_activations == "none"
    assert cfg.raw["d_sae"] == 12
    eager = load_sae_lens_folder(folder, names={11: "last"})
    assert list(eager) == list(range(12)) and eager[11].name == "last"
    np.testing.assert_array_equal(np.stack([r.projection for r in eager.values()]), decoder)
    sliced = load_sae_lens_folder(folder, feature_ids=[11, 0])
    assert sliced[11] == eager[11].__class__(11, "feat_11", decoder[11])
    assert load_sae_safetensors(folder, feature_ids=[3]) == load_sae_lens_folder(
        folder, feature_ids=[3]
    )
    assert {p.name: fingerprint(p) for p in folder.iterdir()} == before
    d, rep = from_sae_lens(sliced, [11, 0])
    assert rep.cluster_method == "kmeans" and len(d.features) == 2


def test_config_resolves_transposed_and_refuses_mismatch(
    tmp_path: Path, decoder: np.ndarray
) -> None:
    # dictionary_learning layout: decoder.weight [d_in, d_sae]
    folder = saelens_folder(tmp_path / "dl", decoder.T.copy(), key="decoder.weight")
    np.testing.assert_array_equal(
        np.stack([r.projection for r in load_sae_lens_folder(folder).values()]), decoder
    )
    # a transposed W_dec is set right by the config too
    folder = saelens_folder(tmp_path / "tw", decoder.T.copy(), d_sae=12, d_in=5)
    assert len(load_sae_lens_folder(folder)) == 12
    bad = saelens_folder(tmp_path / "bad", decoder, d_sae=13, d_in=5)
    with pytest.raises(SAEFormatError, match=r"shape \[12, 5\]; cfg.json says d_sae=13, d_in=5"):
        load_sae_lens_folder(bad)
    with pytest.raises(SAEFormatError, match="does not fit orientation='rows'"):
        load_sae_lens_folder(tmp_path / "tw", orientation="rows")


def test_square_decoder_weight_needs_a_hint_even_with_config(tmp_path: Path) -> None:
    sq = np.arange(16, dtype=np.float32).reshape(4, 4)
    folder = saelens_folder(tmp_path / "sq", sq, key="decoder.weight")
    with pytest.raises(OrientationError, match="d_sae = d_in = 4"):
        load_sae_lens_folder(folder)
    recs = load_sae_lens_folder(folder, orientation="columns")
    np.testing.assert_array_equal(recs[1].projection, sq[:, 1])
    # a square W_dec is rows = features (SAELens layout) without any hint
    folder = saelens_folder(tmp_path / "sqw", sq)
    np.testing.assert_array_equal(load_sae_lens_folder(folder)[1].projection, sq[1])


def test_layer_from_hook_and_fallbacks(tmp_path: Path, decoder: np.ndarray) -> None:
    assert layer_from_hook("blocks.3.attn.hook_z") == 3
    assert layer_from_hook("model.blocks.12.hook_resid_post") == 12
    assert layer_from_hook("hook_embed") is None and layer_from_hook(None) is None
    folder = saelens_folder(
        tmp_path / "old", decoder, v6=False, hook="embed", cfg_extra={"hook_layer": 4}
    )
    assert read_sae_lens_config(folder).layer == 4
    folder = saelens_folder(
        tmp_path / "hn", decoder, v6=False, cfg_extra={"hook_name": "blocks.2.hook_mlp_out"}
    )
    assert read_sae_lens_config(folder / "cfg.json").layer == 2


def test_folder_refusals(tmp_path: Path, decoder: np.ndarray) -> None:
    with pytest.raises(SAEFileNotFoundError, match="no such directory"):
        load_sae_lens_folder(tmp_path / "none")
    only_cfg = saelens_folder(tmp_path / "cfg_only", None, d_sae=3, d_in=2)
    with pytest.raises(SAEFileNotFoundError, match="missing sae_weights.safetensors"):
        load_sae_lens_folder(only_cfg)
    no_cfg = saelens_folder(tmp_path / "nocfg", decoder)
    (no_cfg / "cfg.json").unlink()
    with pytest.raises(SAEFileNotFoundError, match="cfg.json"):
        load_sae_lens_folder(no_cfg)
    folder = saelens_folder(tmp_path / "c", decoder)
    for content, match in (
        ("{oops", "invalid JSON"),
        ("[1]", "expected a JSON object"),
        (json.dumps({"d_in": 5}), "d_sae is None; expected a positive integer"),
        (json.dumps({"d_in": 5, "d_sae": 0}), "d_sae is 0"),
        (json.dumps({"d_in": 5, "d_sae": 12, "metadata": []}), "metadata is list"),
        (json.dumps({"d_in": 5, "d_sae": 12, "metadata": {"hook_name": 3}}), "hook_name is 3"),
        (json.dumps({"d_in": 5, "d_sae": 12, "hook_layer": -1}), "hook_layer is -1"),
    ):
        (folder / "cfg.json").write_text(content)
        with pytest.raises(SAEFormatError, match=match) as e:
            load_sae_lens_folder(folder)
        assert "cfg.json" in str(e.value)
