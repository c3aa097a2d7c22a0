"""The Compressor on every architecture and source (spec 16 §1.6, §2.5, §10):
the per-architecture zero rule, rescaled TopK, merge refused where it would
do nothing, folder / file / memory sources and their outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compression_fixtures import build_report
from safetensors.numpy import load_file, save_file

from polygram.compression import CompressionReport, Compressor
from polygram.errors import CompressionError
from polygram.sae import forward as saef
from polygram.sae import load_sae

REF = json.loads(
    (Path(__file__).parents[1] / "data" / "reference_values_16.json").read_text(encoding="utf-8")
)
SHARED = REF["sae_forward_shared"]
X = np.asarray(SHARED["x"], np.float32)


def shared(arch: str) -> dict[str, np.ndarray]:
    t = {k: np.asarray(SHARED[k], np.float32) for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    if arch == "jumprelu":
        t["threshold"] = np.asarray(SHARED["threshold"], np.float32)
    if arch == "gated":
        del t["b_enc"]
        t.update(
            {k: np.asarray(SHARED["gated"][k], np.float32) for k in ("b_gate", "b_mag", "r_mag")}
        )
    return t


def zero_2(arch: str, **kw: Any) -> tuple[Any, Any]:
    """The shared SAE and its compression with feature 2 zeroed (cluster {2, 3}, rep 3)."""
    sae = load_sae(shared(arch), architecture=arch, **kw)
    report = build_report(4, [(2, 3)], n_fires={0: 1, 1: 1, 2: 1, 3: 9})
    new, plan, _ = Compressor(report, sae).compress()
    assert plan.clusters[0].zeroed == (2,)
    return sae, new


@pytest.mark.parametrize(
    ("arch", "kw", "want"),
    [
        ("standard", {}, "standard_acts"),
        ("jumprelu", {}, "jumprelu_acts"),
        ("topk", {"k": 2}, "topk_k2_acts"),
    ],
)
def test_zero_feature_2_reference(arch: str, kw: dict[str, Any], want: str) -> None:
    src, new = zero_2(arch, **kw)
    ref = SHARED["zero_feature_2"]
    np.testing.assert_allclose(saef.encode(new, X), ref[want], rtol=1e-5, atol=1e-6)
    if arch == "jumprelu":  # the threshold is kept, yet the feature never fires
        np.testing.assert_array_equal(new.tensors["threshold"], src.tensors["threshold"])
    if arch == "topk":
        np.testing.assert_allclose(saef.reconstruct(new, X), ref["topk_k2_recon"], atol=1e-6)


def test_gated_zero_rule_keeps_r_mag() -> None:
    src, new = zero_2("gated")
    assert new.tensors["b_gate"][2] == 0 and new.tensors["b_mag"][2] == 0
    assert not new.tensors["W_enc"][:, 2].any() and not new.tensors["W_dec"][2].any()
    np.testing.assert_array_equal(new.tensors["r_mag"], src.tensors["r_mag"])
    assert (saef.encode(new, X)[:, 2] == 0).all()


def test_rescaled_topk_keeps_the_decoder_row_and_refuses_merge(tmp_path: Path) -> None:
    src, new = zero_2("topk", k=2, rescale_acts_by_decoder_norm=True)
    np.testing.assert_array_equal(new.tensors["W_dec"][2], src.tensors["W_dec"][2])
    assert not new.tensors["W_enc"][:, 2].any() and new.tensors["b_enc"][2] == 0
    assert np.isfinite(saef.reconstruct(new, X)).all()
    assert (saef.encode(new, X)[:, 2] == 0).all()
    report = build_report(4, [(2, 3)])
    res = Compressor(report, src).run(tmp_path / "o.safetensors")
    assert res.report.decoder_row_kept is True
    assert CompressionReport.from_json(res.report.to_json()).decoder_row_kept is True
    with pytest.raises(CompressionError, match="row norm cancels"):
        Compressor(report, src, strategy="merge")


def test_folder_source_gives_a_folder_with_cfg_and_provenance(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    save_file(shared("jumprelu"), folder / "sae_weights.safetensors")
    cfg = {
        "architecture": "jumprelu",
        "d_in": 3,
        "d_sae": 4,
        "dtype": "float32",
        "metadata": {"sae_lens_version": "6.1.0", "hook_name": "blocks.4.hook_resid_post"},
    }
    (folder / "cfg.json").write_text(json.dumps(cfg))
    report = build_report(4, [(2, 3)], n_fires={0: 1, 1: 1, 2: 1, 3: 9})
    with pytest.raises(CompressionError, match="give an output folder"):
        Compressor(report, folder).run(tmp_path / "o.safetensors")
    res = Compressor(report, folder).run(tmp_path / "out")
    assert res.report.output_layout == "folder" and res.output_checkpoint == tmp_path / "out"
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    written = json.loads((out / "cfg.json").read_text())
    prov = written["metadata"].pop("polygram")
    assert written == cfg
    assert prov["tool"] == "polygram compress" and prov["n_features_zeroed"] == 1
    assert prov["source_sha256"] == res.report.source_checkpoint_sha256
    assert set(load_file(str(out / "sae_weights.safetensors"))) == set(shared("jumprelu"))
    assert res.report.sae_settings["hook_name"] == {
        "value": "blocks.4.hook_resid_post",
        "source": "cfg",
    }


def test_memory_source_and_bf16_folder_round_trip(tmp_path: Path) -> None:
    report = build_report(4, [(2, 3)], n_fires={0: 1, 1: 1, 2: 1, 3: 9})
    res = Compressor(report, shared("jumprelu")).run(tmp_path / "m")
    assert res.report.source_checkpoint == "<in-memory>"
    bf16 = load_sae(res.output_checkpoint)
    assert bf16.architecture == "jumprelu"  # the synthesised v6 cfg says so
    assert bf16.settings.architecture.source == "cfg"
