"""``write_sae`` (spec 16 §2.4–§2.5): BF16 round-to-nearest-even, per-tensor
dtypes, every output layout (folder, file + sidecar, canonical folder), the
written cfg.json (verbatim + provenance, or a synthesised v6), atomic writes
and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sae_helpers import bf16_value, fingerprint, to_bf16_bits, write_raw
from safetensors import safe_open
from safetensors.numpy import save, save_file

from polygram.errors import CompressionError
from polygram.sae import load_sae, parse_sae_lens_config, write_sae
from polygram.sae import write as write_mod
from polygram.sae.read import read_all_tensors
from polygram.sae.safetensors_write import bf16_bits, write_safetensors

torch = pytest.importorskip("torch")

REF = json.loads(
    (Path(__file__).parents[1] / "data" / "reference_values_16.json").read_text(encoding="utf-8")
)
D_IN, D_SAE = 5, 12


def tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W_enc": rng.standard_normal((D_IN, D_SAE)).astype(np.float32),
        "b_enc": rng.standard_normal(D_SAE).astype(np.float32),
        "W_dec": rng.standard_normal((D_SAE, D_IN)).astype(np.float32),
        "b_dec": rng.standard_normal(D_IN).astype(np.float32),
        "threshold": np.full(D_SAE, 0.1, np.float32),
    }


def v6(**over: Any) -> dict[str, Any]:
    cfg = {
        "architecture": "jumprelu",
        "d_in": D_IN,
        "d_sae": D_SAE,
        "dtype": "bfloat16",
        "metadata": {
            "sae_lens_version": "6.3.0",
            "model_name": "m",
            "hook_name": "blocks.2.hook_resid_pre",
        },
    }
    cfg.update(over)
    return cfg


def bf16_folder(path: Path, cfg: dict[str, Any] | None = None) -> Path:
    t = tensors()
    path.mkdir(parents=True)
    write_raw(
        path / "sae_weights.safetensors",
        {k: ("BF16", v.shape, to_bf16_bits(v).astype("<u2").tobytes()) for k, v in t.items()}
        | {"log_feature_sparsity": ("F64", (D_SAE,), np.zeros(D_SAE).tobytes())},
    )
    (path / "cfg.json").write_text(json.dumps(cfg or v6()))
    return path


def stored(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Every tensor's (dtype, shape, raw bytes), via polygram's header reader."""
    _, header = read_all_tensors(path)
    raw = path.read_bytes()
    return {n: (i.dtype, i.shape, raw[i.start : i.end]) for n, i in header.tensors.items()}


# --------------------------------------------------------------------- BF16
@pytest.mark.parametrize("case", REF["bf16_round_nearest_even"], ids=lambda c: str(c["float32"]))
def test_bf16_round_to_nearest_even_reference(case: dict[str, Any]) -> None:
    bits = bf16_bits(np.array([case["float32"]], np.float32))
    assert f"0x{int(bits[0]):04X}" == case["bf16_bits_hex"]
    assert float(bf16_value(bits)[0]) == case["bf16_value"]


def test_bf16_rounding_matches_torch_and_keeps_specials() -> None:
    x = np.random.default_rng(1).standard_normal(4096).astype(np.float32) * 100
    x[:4] = [np.inf, -np.inf, 0.0, -0.0]
    want = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bf16_bits(x), want)
    nan = bf16_bits(np.array([np.nan], np.float32))
    assert np.isnan(bf16_value(nan)).all()


def test_bf16_file_is_readable_by_safe_open_and_round_trips_bit_exactly(tmp_path: Path) -> None:
    src = bf16_folder(tmp_path / "src")
    sae = load_sae(src)
    out = write_sae(sae, tmp_path / "out")
    assert out.layout == "folder" and out.weights == tmp_path / "out" / "sae_weights.safetensors"
    a, b = stored(src / "sae_weights.safetensors"), stored(out.weights)
    assert a == b  # names, dtypes, shapes and every byte of tensor data
    with safe_open(str(out.weights), framework="pt") as f:
        w = f.get_tensor("W_dec")
        assert w.dtype == torch.bfloat16
        np.testing.assert_array_equal(w.float().numpy(), sae.tensors["W_dec"])


def test_edited_bf16_values_are_rounded_to_nearest_even(tmp_path: Path) -> None:
    sae = load_sae(bf16_folder(tmp_path / "src"))
    w = np.array(sae.tensors["W_dec"])
    w[0, 0] = 1.01171875  # half-way: rounds to the even 0x3F82
    written = write_sae(sae.replace_tensors(W_dec=w), tmp_path / "out")
    back = load_sae(written.path)
    assert back.tensors["W_dec"][0, 0] == np.float32(1.015625)
    assert back.layout["W_dec"].dtype == "BF16"


# ------------------------------------------------------------ per-tensor dtype
def test_f32_files_are_byte_identical_to_safetensors_save_file(tmp_path: Path) -> None:
    t = tensors()
    p = tmp_path / "a.safetensors"
    write_safetensors(p, {k: (v, "F32", v.shape) for k, v in t.items()})
    assert p.read_bytes() == save(t)


def test_mixed_stored_dtypes_and_integer_extras_are_kept(tmp_path: Path) -> None:
    t = tensors()
    p = write_raw(
        tmp_path / "mixed.safetensors",
        {
            "W_enc": ("F16", (D_IN, D_SAE), t["W_enc"].astype("<f2").tobytes()),
            "b_enc": ("F64", (D_SAE,), t["b_enc"].astype("<f8").tobytes()),
            "W_dec": ("BF16", (D_SAE, D_IN), to_bf16_bits(t["W_dec"]).astype("<u2").tobytes()),
            "b_dec": ("F32", (D_IN,), t["b_dec"].astype("<f4").tobytes()),
            "threshold": ("F32", (), np.float32(0.1).tobytes()),
            "n_steps": ("I64", (1,), np.int64(99).tobytes()),
            "scale8": ("F8_E4M3", (2,), b"\x38\x40"),
        },
    )
    before = fingerprint(p)
    sae = load_sae(p)
    out = write_sae(sae, tmp_path / "o.safetensors")
    assert stored(p) == stored(out.weights)
    assert fingerprint(p) == before
    # an edit: the 0-d threshold becomes per-feature, an integer-stored tensor F32
    thr = np.array(sae.tensors["threshold"])
    thr[3] = 0.0
    edited = write_sae(sae.replace_tensors(threshold=thr), tmp_path / "e.safetensors")
    s = stored(edited.weights)
    assert s["threshold"][:2] == ("F32", (D_SAE,))
    assert s["scale8"] == ("F8_E4M3", (2,), b"\x38\x40")


def test_integer_stored_canonical_tensor_becomes_f32_once_edited(tmp_path: Path) -> None:
    t = tensors()
    t["b_dec"] = np.arange(D_IN, dtype=np.int32)
    sae = load_sae({k: v for k, v in t.items() if k != "threshold"})
    assert sae.layout["b_dec"].dtype == "I32"
    new = sae.replace_tensors(b_dec=np.full(D_IN, 0.5))
    assert new.layout["b_dec"].dtype == "F32"
    out = write_sae(new, tmp_path / "x.safetensors")
    assert stored(out.weights)["b_dec"][0] == "F32"


# ----------------------------------------------------------------- layouts
def test_folder_in_folder_out_cfg_verbatim_plus_provenance(tmp_path: Path) -> None:
    src = bf16_folder(tmp_path / "src")
    (src / "activation_scaler.json").write_text('{"scaling_factor": 1.0}')
    (src / "sparsity.safetensors").write_bytes(b"stale")
    sae = load_sae(src)
    out = write_sae(
        sae, tmp_path / "out", provenance={"tool": "polygram compress", "n_features_zeroed": 3}
    )
    names = sorted(p.name for p in out.path.iterdir())
    assert names == ["activation_scaler.json", "cfg.json", "sae_weights.safetensors"]
    cfg = json.loads(out.cfg.read_text())
    prov = cfg["metadata"].pop("polygram")
    assert cfg == v6()
    assert prov["tool"] == "polygram compress" and prov["n_features_zeroed"] == 3
    assert prov["n_features_regrown"] == 0 and prov["source"] == str(src)
    assert prov["source_sha256"] == sae.source_sha256() and "polygram_version" in prov
    assert stored(out.weights) == stored(src / "sae_weights.safetensors")
    again = load_sae(out.path)
    assert again.settings.to_dict() == sae.settings.to_dict()


def test_pre_v6_cfg_gets_a_top_level_provenance(tmp_path: Path) -> None:
    cfg = {
        "d_in": D_IN,
        "d_sae": D_SAE,
        "architecture": "jumprelu",
        "hook_point": "blocks.1.hook_resid_pre",
    }
    src = bf16_folder(tmp_path / "src", cfg)
    out = write_sae(load_sae(src), tmp_path / "out")
    doc = json.loads(out.cfg.read_text())
    assert doc.pop("polygram_provenance")["tool"] == "polygram"
    assert doc == cfg and parse_sae_lens_config(doc).format == "pre-v6"


def test_file_in_file_out_with_sidecar(tmp_path: Path) -> None:
    t = tensors()
    src = tmp_path / "in.safetensors"
    save_file(
        {
            "encoder.weight": t["W_enc"].T.copy(),
            "encoder.bias": t["b_enc"],
            "decoder.weight": t["W_dec"].T.copy(),
            "decoder.bias": t["b_dec"],
            "threshold": t["threshold"],
        },
        src,
    )
    sae = load_sae(src)
    out = write_sae(sae, tmp_path / "out" / "sae.c.safetensors")
    assert out.layout == "file" and out.cfg == tmp_path / "out" / "sae.c.cfg.json"
    assert stored(out.weights) == stored(src)  # nn.Linear names and orientation kept
    cfg = json.loads(out.cfg.read_text())
    assert cfg["architecture"] == "jumprelu" and cfg["dtype"] == "float32"
    assert cfg["metadata"]["sae_lens_version"] == "6.0.0"
    back = load_sae(out.weights)
    assert back.cfg is not None and back.architecture == "jumprelu"
    assert back.settings.architecture.source == "cfg"


def test_file_or_memory_to_a_folder_is_canonical(tmp_path: Path) -> None:
    t = tensors()
    src = tmp_path / "lin.safetensors"
    save_file({"decoder.weight": t["W_dec"].T.copy(), "W_enc": t["W_enc"], "b_enc": t["b_enc"],
               "b_dec": t["b_dec"]}, src)  # fmt: skip
    out = write_sae(load_sae(src), tmp_path / "canon")
    assert out.layout == "folder"
    s = stored(out.weights)
    assert sorted(s) == ["W_dec", "W_enc", "b_dec", "b_enc"] and s["W_dec"][1] == (D_SAE, D_IN)
    mem = write_sae(load_sae(t, layer=4, model_name="m"), tmp_path / "mem")
    cfg = json.loads(mem.cfg.read_text())
    assert cfg["metadata"]["hook_name"] == "blocks.4.hook_resid_pre"
    assert cfg["metadata"]["model_name"] == "m" and cfg["reshape_activations"] == "none"
    assert load_sae(mem.path).architecture == "jumprelu"


def test_synthesised_topk_cfg_loads_back(tmp_path: Path) -> None:
    t = {k: v for k, v in tensors().items() if k != "threshold"}
    sae = load_sae(t, architecture="topk", k=3, rescale_acts_by_decoder_norm=True)
    out = write_sae(sae, tmp_path / "k.safetensors")
    cfg = json.loads(out.cfg.read_text())
    assert (cfg["architecture"], cfg["k"], cfg["rescale_acts_by_decoder_norm"]) == ("topk", 3, True)
    assert cfg["metadata"]["polygram"]["source"] == "<in-memory>"
    back = load_sae(out.weights)
    assert (back.architecture, back.k, back.rescale_acts_by_decoder_norm) == ("topk", 3, True)


# ---------------------------------------------------------------- refusals
def test_outputs_that_resolve_to_the_source_are_refused(tmp_path: Path) -> None:
    src = bf16_folder(tmp_path / "src")
    sae = load_sae(src)
    for bad in (src, src / ".." / "src"):
        with pytest.raises(CompressionError, match="never rewritten in place"):
            write_sae(sae, bad)
    with pytest.raises(CompressionError, match="give an output folder"):
        write_sae(sae, tmp_path / "x.safetensors")
    f = tmp_path / "f.safetensors"
    save_file(tensors(), f)
    with pytest.raises(CompressionError, match="never rewritten in place"):
        write_sae(load_sae(f), f)
    with pytest.raises(CompressionError, match="never rewritten in place"):
        write_sae(load_sae(f), tmp_path)  # the folder holding the source weights


def test_a_foreign_non_empty_output_folder_is_refused(tmp_path: Path) -> None:
    sae = load_sae(bf16_folder(tmp_path / "src"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CompressionError, match=r"holds other files \(notes.txt\)"):
        write_sae(sae, out)
    (out / "notes.txt").unlink()
    write_sae(sae, out)
    write_sae(sae, out)  # an earlier polygram output may be replaced


def test_weights_first_cfg_last_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sae = load_sae(bf16_folder(tmp_path / "src"))

    def boom(*a: Any, **k: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(write_mod, "write_safetensors", boom)
    with pytest.raises(OSError, match="disk full"):
        write_sae(sae, tmp_path / "out")
    assert not (tmp_path / "out" / "cfg.json").exists()
    monkeypatch.undo()
    out = write_sae(sae, tmp_path / "out")
    assert sorted(p.name for p in out.path.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
