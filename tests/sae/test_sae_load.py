"""``load_sae`` (spec 16 §2.1–§2.3, §9; spec 18 §4): every source, cfg v6 and
pre-v6, aliases and orientation, inference without a cfg, settings
precedence and conflicts, the refusals, partial loads and the memory bound."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sae_helpers import bf16_value, fingerprint, to_bf16_bits, write_raw
from safetensors.numpy import save_file

from polygram.errors import (
    HookError,
    OrientationError,
    PolygramDefaultWarning,
    SAEFileNotFoundError,
    SAEFormatError,
    SettingsConflictError,
    UnsupportedSAEError,
)
from polygram.sae import SAE, load_sae, parse_sae_lens_config
from polygram.sae.read import read_all_tensors

D_IN, D_SAE = 5, 12


def tensors(seed: int = 0, **extra: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = {
        "W_enc": rng.standard_normal((D_IN, D_SAE)).astype(np.float32),
        "b_enc": rng.standard_normal(D_SAE).astype(np.float32),
        "W_dec": rng.standard_normal((D_SAE, D_IN)).astype(np.float32),
        "b_dec": rng.standard_normal(D_IN).astype(np.float32),
    }
    t.update(extra)
    return t


def v6_cfg(**over: Any) -> dict[str, Any]:
    meta = {
        "sae_lens_version": "6.5.0",
        "model_name": "gpt2",
        "hook_name": "blocks.6.hook_resid_pre",
        "hook_head_index": None,
        "context_size": 128,
        "prepend_bos": True,
    }
    meta.update(over.pop("metadata", {}))
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32"}
    cfg.update(over)
    cfg["metadata"] = meta
    return cfg


def folder(path: Path, t: dict[str, np.ndarray], cfg: dict[str, Any] | None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    save_file(t, path / "sae_weights.safetensors")
    if cfg is not None:
        (path / "cfg.json").write_text(json.dumps(cfg))
    return path


def quiet(**kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_sae(**kw)


# ------------------------------------------------------------------ sources
def test_an_sae_is_returned_as_is() -> None:
    sae = load_sae(tensors())
    assert load_sae(sae) is sae


def test_memory_mapping_canonical_and_alias_names() -> None:
    t = tensors(1)
    sae = load_sae(t)
    assert sae.source.kind == "memory" and sae.source.display == "<in-memory>"
    assert sae.architecture == "standard" and sae.settings.architecture.source == "inferred"
    lin = load_sae(
        {
            "encoder.weight": t["W_enc"].T,
            "encoder.bias": t["b_enc"],
            "decoder.weight": t["W_dec"].T,
            "decoder.bias": t["b_dec"],
        }
    )
    for k in t:
        np.testing.assert_array_equal(lin.tensors[k], t[k])
    assert lin.layout["W_dec"].transposed and lin.layout["W_dec"].name == "decoder.weight"
    low = load_sae(
        {"w_enc": t["W_enc"], "b_enc": t["b_enc"], "w_dec": t["W_dec"], "b_dec": t["b_dec"]}
    )
    np.testing.assert_array_equal(low.tensors["W_dec"], t["W_dec"])


def test_first_alias_wins_and_the_rest_stay_in_extra() -> None:
    t = tensors(2)
    other = tensors(3)["W_dec"]
    sae = load_sae({**t, "dec": other})
    np.testing.assert_array_equal(sae.tensors["W_dec"], t["W_dec"])
    np.testing.assert_array_equal(sae.extra["dec"], other)


def test_memory_with_cfg_dict_config_or_path(tmp_path: Path) -> None:
    cfg = v6_cfg(architecture="jumprelu")
    t = tensors(threshold=np.full(D_SAE, 0.1, np.float32))
    for c in (cfg, parse_sae_lens_config(cfg)):
        sae = load_sae(t, cfg=c)
        assert sae.architecture == "jumprelu" and sae.settings.architecture.source == "cfg"
        assert sae.settings.hook_name == "blocks.6.hook_resid_pre"
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    assert load_sae(t, cfg=p).cfg.path == p


def test_saelens_folder_with_activation_scaler(tmp_path: Path) -> None:
    cfg = v6_cfg(normalize_activations="expected_average_only_in")
    f = folder(tmp_path / "sae", tensors(), cfg)
    with pytest.raises(UnsupportedSAEError, match="norm_scaling_factor"):
        load_sae(f)
    (f / "activation_scaler.json").write_text(json.dumps({"scaling_factor": 2.5}))
    before = {p.name: fingerprint(p) for p in f.iterdir()}
    sae = load_sae(f)
    assert sae.norm_scaling_factor == 2.5
    assert sae.settings.norm_scaling_factor.source == "cfg"
    assert load_sae(f, norm_scaling_factor=4.0).settings.norm_scaling_factor.to_dict() == {
        "value": 4.0,
        "source": "explicit",
    }
    assert sae.source.kind == "folder" and sae.source.scaler_path == f / "activation_scaler.json"
    assert {p.name: fingerprint(p) for p in f.iterdir()} == before  # read-only


def test_folder_parts_missing(tmp_path: Path) -> None:
    f = folder(tmp_path / "nocfg", tensors(), None)
    with pytest.raises(SAEFileNotFoundError, match="missing cfg.json"):
        load_sae(f)
    g = tmp_path / "noweights"
    g.mkdir()
    (g / "cfg.json").write_text(json.dumps(v6_cfg()))
    with pytest.raises(SAEFileNotFoundError, match="missing sae_weights.safetensors"):
        load_sae(g)


def test_file_with_sidecar_and_weights_beside_cfg(tmp_path: Path) -> None:
    p = tmp_path / "sae.c.safetensors"
    save_file(tensors(), p)
    bare = load_sae(p)
    assert bare.cfg is None and bare.source.kind == "file"
    (tmp_path / "sae.c.cfg.json").write_text(json.dumps(v6_cfg()))
    side = load_sae(p)
    assert side.cfg is not None and side.source.cfg_path == tmp_path / "sae.c.cfg.json"
    f = folder(tmp_path / "f", tensors(), v6_cfg())
    via_file = load_sae(f / "sae_weights.safetensors")
    assert via_file.source.kind == "folder" and via_file.source.path == f


def test_toy_json_missing_and_wrong_type(tmp_path: Path) -> None:
    toy = tmp_path / "toy.json"
    toy.write_text("{}")
    with pytest.raises(SAEFormatError, match="decoder rows only"):
        load_sae(toy)
    with pytest.raises(SAEFileNotFoundError, match="no such file"):
        load_sae(tmp_path / "nope.safetensors")
    with pytest.raises(TypeError, match="expected an SAE"):
        load_sae(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown override"):
        load_sae(tensors(), layers=3)


def test_bf16_f16_f64_are_decoded_exactly(tmp_path: Path) -> None:
    t = tensors(4)
    bits = to_bf16_bits(t["W_dec"])
    p = write_raw(
        tmp_path / "mixed.safetensors",
        {
            "W_enc": ("F16", (D_IN, D_SAE), t["W_enc"].astype("<f2").tobytes()),
            "b_enc": ("F64", (D_SAE,), t["b_enc"].astype("<f8").tobytes()),
            "W_dec": ("BF16", (D_SAE, D_IN), bits.astype("<u2").tobytes()),
            "b_dec": ("F32", (D_IN,), t["b_dec"].astype("<f4").tobytes()),
            "step": ("I64", (), np.int64(7).tobytes()),
        },
    )
    sae = load_sae(p)
    np.testing.assert_array_equal(sae.tensors["W_dec"], bf16_value(bits))
    np.testing.assert_array_equal(
        sae.tensors["W_enc"], t["W_enc"].astype(np.float16).astype(np.float32)
    )
    assert sae.tensors["b_enc"].dtype == np.float64  # F64 stays F64
    assert [sae.layout[k].dtype for k in ("W_enc", "b_enc", "W_dec", "b_dec")] == [
        "F16",
        "F64",
        "BF16",
        "F32",
    ]
    assert sae.extra["step"].dtype == np.int64 and int(sae.extra["step"]) == 7
    assert sae.stored_dtype == "BF16"


# ------------------------------------------------------- cfg v6 and pre-v6
def test_v6_fields() -> None:
    c = parse_sae_lens_config(
        v6_cfg(
            architecture="topk", k=8, rescale_acts_by_decoder_norm=True, apply_b_dec_to_input=False
        )
    )
    assert c.format == "v6" and c.architecture == "topk" and c.k == 8
    assert c.rescale_acts_by_decoder_norm and not c.apply_b_dec_to_input
    assert (c.hook_name, c.layer, c.model_name, c.context_size, c.prepend_bos) == (
        "blocks.6.hook_resid_pre",
        6,
        "gpt2",
        128,
        True,
    )
    bare = parse_sae_lens_config({"d_in": 2, "d_sae": 3, "metadata": {}})
    assert bare.format == "v6" and bare.prepend_bos is None and bare.architecture is None


def test_version_decides_the_format() -> None:
    top = parse_sae_lens_config({"d_in": 2, "d_sae": 3, "sae_lens_version": "6.0.0-rc.0"})
    assert top.format == "v6"
    old = parse_sae_lens_config(
        {"d_in": 2, "d_sae": 3, "sae_lens_version": "5.9.1", "metadata": {}, "model_name": "m"}
    )
    assert old.format == "pre-v6" and old.model_name == "m"


def test_pre_v6_fields() -> None:
    c = parse_sae_lens_config(
        {
            "d_in": 2,
            "d_sae": 3,
            "hook_point": "blocks.4.hook_mlp_out",
            "model_name": "pythia-70m",
            "context_size": 64,
            "activation_fn_str": "topk",
            "activation_fn_kwargs": {"k": 2},
            "normalize_activations": True,
        }
    )
    assert c.format == "pre-v6" and c.architecture == "topk" and c.k == 2
    assert (c.hook_name, c.layer, c.model_name, c.context_size) == (
        "blocks.4.hook_mlp_out",
        4,
        "pythia-70m",
        64,
    )
    assert c.prepend_bos is True and c.normalize_activations is True
    plain = parse_sae_lens_config({"d_in": 2, "d_sae": 3, "hook_point_layer": 7})
    assert plain.architecture == "standard" and plain.layer == 7 and plain.hook_name is None


def test_pre_v6_boolean_normalize_maps_to_a_mode() -> None:
    t = tensors()
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "normalize_activations": True}
    sae = load_sae(t, cfg=cfg, norm_scaling_factor=2.0)
    assert sae.normalize_activations == "expected_average_only_in"
    cfg["normalize_activations"] = False
    assert load_sae(t, cfg=cfg).normalize_activations == "none"


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"d_in": 5}, "d_sae is None"),
        ({"d_in": 5, "d_sae": 12, "k": 2.5, "metadata": {}}, "k is 2.5"),
        ({"d_in": 5, "d_sae": 12, "activation_fn_kwargs": {"k": "2"}}, "k is '2'"),
        ({"d_in": 5, "d_sae": 12, "apply_b_dec_to_input": "yes"}, "apply_b_dec_to_input is 'yes'"),
        ({"d_in": 5, "d_sae": 12, "context_size": 0}, "context_size is 0"),
        ({"d_in": 5, "d_sae": 12, "prepend_bos": 1}, "prepend_bos is 1"),
    ],
)
def test_bad_cfg_fields(cfg: dict[str, Any], match: str) -> None:
    with pytest.raises(SAEFormatError, match=match):
        parse_sae_lens_config(cfg)


def test_non_json_cfg(tmp_path: Path) -> None:
    f = folder(tmp_path / "f", tensors(), None)
    (f / "cfg.json").write_text("{oops")
    with pytest.raises(SAEFormatError, match="invalid JSON") as e:
        load_sae(f)
    assert "cfg.json" in str(e.value)


def test_v6_cfg_needs_an_architecture() -> None:
    cfg = v6_cfg()
    del cfg["architecture"]
    with pytest.raises(SAEFormatError, match="needs an architecture"):
        load_sae(tensors(), cfg=cfg)
    assert load_sae(tensors(), cfg=cfg, architecture="standard").architecture == "standard"


# --------------------------------------------------------- orientation, shapes
def test_cfg_settles_a_transposed_canonical_decoder() -> None:
    t = tensors(5)
    sae = load_sae({**t, "W_dec": t["W_dec"].T}, cfg=v6_cfg())
    np.testing.assert_array_equal(sae.tensors["W_dec"], t["W_dec"])
    with pytest.raises(SAEFormatError, match=r"W_enc \('W_enc'\) has shape \[12, 5\]"):
        load_sae({**t, "W_enc": t["W_enc"].T})  # without a cfg a canonical name is not guessed


@pytest.mark.parametrize("name", ["encoder.weight", "decoder.weight"])
def test_square_nn_linear_is_refused(name: str) -> None:
    sq = np.eye(4, dtype=np.float32)
    t = {"W_enc": sq, "b_enc": np.zeros(4), "W_dec": sq, "b_dec": np.zeros(4)}
    t[name] = t.pop("W_enc" if name.startswith("enc") else "W_dec")
    with pytest.raises(OrientationError, match="square"):
        load_sae(t)


def test_shapes_that_disagree_with_the_cfg() -> None:
    with pytest.raises(SAEFormatError, match=r"cfg.json says d_sae=13, d_in=5"):
        load_sae(tensors(), cfg=v6_cfg(d_sae=13))
    t = tensors()
    t["b_dec"] = np.zeros(4, np.float32)
    with pytest.raises(SAEFormatError, match=r"b_dec \('b_dec'\) has shape \[4\]; cfg.json says"):
        load_sae(t, cfg=v6_cfg())


# --------------------------------------------------------- inference, no cfg
def test_architecture_inference_without_cfg() -> None:
    thr = load_sae(tensors(threshold=np.full(D_SAE, 0.2, np.float32)))
    assert thr.architecture == "jumprelu" and thr.settings.architecture.source == "inferred"
    t = tensors()
    gated = load_sae(
        {k: v for k, v in t.items() if k != "b_enc"}
        | {"b_gate": t["b_enc"], "b_mag": t["b_enc"], "r_mag": np.zeros(D_SAE, np.float32)}
    )
    assert gated.architecture == "gated"
    topk = load_sae(tensors(k=np.array(3, np.int64)))
    assert topk.architecture == "topk" and topk.k == 3 and topk.settings.k.source == "inferred"
    assert "k" in topk.extra  # kept to be written back
    with pytest.raises(SAEFormatError, match="pass --architecture"):
        load_sae(tensors(k=np.array(3), threshold=np.zeros(D_SAE, np.float32)))
    assert (
        load_sae(
            tensors(k=np.array(3), threshold=np.zeros(D_SAE, np.float32)), architecture="jumprelu"
        ).architecture
        == "jumprelu"
    )


def test_scalar_threshold_is_broadcast() -> None:
    sae = load_sae(tensors(threshold=np.array(0.25, np.float32)))
    assert sae.tensors["threshold"].shape == (D_SAE,) and (sae.tensors["threshold"] == 0.25).all()
    assert sae.layout["threshold"].shape == ()


def test_tensor_of_another_architecture_goes_to_extra_with_one_warning() -> None:
    t = tensors(threshold=np.full(D_SAE, 0.2, np.float32))
    with pytest.warns(UserWarning, match=r"\['threshold'\] do not belong to the standard") as rec:
        sae = load_sae(t, cfg=v6_cfg())
    assert len(rec) == 1
    assert "threshold" in sae.extra and "threshold" not in sae.tensors


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("cfg_over", "error", "match"),
    [
        ({"architecture": "skip_transcoder"}, UnsupportedSAEError, "skip_transcoder"),
        ({"architecture": "matryoshka_batchtopk"}, UnsupportedSAEError, "save the inference model"),
        ({"architecture": "topk"}, SAEFormatError, r"k is None.*d_sae=12"),
        ({"architecture": "topk", "k": 0}, SAEFormatError, r"k is 0.*\[1, d_sae=12\]"),
        ({"architecture": "topk", "k": 13}, SAEFormatError, r"k is 13"),
        ({"architecture": "jumprelu"}, SAEFormatError, r"needs tensor 'threshold' \(aliases tried"),
        ({"normalize_activations": "whiten"}, UnsupportedSAEError, "normalize_activations 'whiten'"),
        ({"reshape_activations": "hook_z"}, UnsupportedSAEError, "reshape_activations is 'hook_z'"),
        ({"metadata": {"hook_name": "blocks.3.attn.hook_z"}}, UnsupportedSAEError, "hook_z"),
        ({"metadata": {"hook_head_index": 2}}, UnsupportedSAEError, "hook_head_index is 2"),
    ],
)  # fmt: skip
def test_refusals_name_field_and_value(
    cfg_over: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        load_sae(tensors(), cfg=v6_cfg(**cfg_over))


def test_missing_tensor_names_aliases_and_keys() -> None:
    t = tensors()
    del t["b_enc"]
    with pytest.raises(
        SAEFormatError,
        match=r"needs tensor 'b_enc' \(aliases tried: b_enc, encoder.bias\); the SAE holds W_dec, W_enc, b_dec",
    ):
        load_sae(t)
    with pytest.raises(SAEFormatError, match="no W_dec tensor: tried aliases 'W_dec', 'w_dec'"):
        load_sae({"W_enc": t["W_enc"]})


def test_scaling_factor_tensor() -> None:
    ones = load_sae(tensors(scaling_factor=np.ones(D_SAE, np.float32)))
    assert "scaling_factor" in ones.extra
    with pytest.raises(UnsupportedSAEError, match="finetuning scaling factor"):
        load_sae(tensors(scaling_factor=np.full(D_SAE, 2.0, np.float32)))


def test_explicit_k_and_architecture_types() -> None:
    with pytest.raises(SAEFormatError, match="k: got '3'"):
        load_sae(tensors(), k="3")
    with pytest.raises(UnsupportedSAEError, match="architecture 'relu'"):
        load_sae(tensors(), architecture="relu")
    assert load_sae(tensors(), architecture="topk", k=4).k == 4


# ---------------------------------------------------- settings (spec 16 §2.3)
def test_precedence_explicit_cfg_default() -> None:
    sae = load_sae(tensors(), cfg=v6_cfg())
    d = sae.settings.to_dict()
    assert d["model_name"] == {"value": "gpt2", "source": "cfg"}
    assert d["hook_name"] == {"value": "blocks.6.hook_resid_pre", "source": "cfg"}
    assert d["layer"] == {"value": 6, "source": "cfg"}
    assert d["hook_kind"] == {"value": "resid_pre", "source": "cfg"}
    assert d["context_size"] == {"value": 128, "source": "cfg"}
    assert d["architecture"] == {"value": "standard", "source": "cfg"}
    bare = load_sae(tensors(), layer=3, hook="mlp_out", model_name="m", context_size=9)
    b = bare.settings.to_dict()
    assert b["hook_name"] == {"value": "blocks.3.hook_mlp_out", "source": "explicit"}
    assert b["model_name"]["source"] == b["context_size"]["source"] == "explicit"
    assert b["prepend_bos"] == {"value": None, "source": "default"}
    by_name = load_sae(tensors(), hook_name="blocks.2.hook_resid_post")
    assert (by_name.settings.layer.value, by_name.settings.hook_kind.value) == (2, "resid_post")
    assert load_sae(tensors(), layer=3).settings.hook_name == "blocks.3.hook_resid_pre"


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"layer": 5}, r"layer=5 \(--layer\) disagrees with the cfg's 'blocks.6.hook_resid_pre'"),
        ({"hook": "mlp_out"}, r"hook='mlp_out' \(--hook\) disagrees"),
        ({"hook_name": "blocks.7.hook_resid_pre"}, r"layer=7 \(--hook-name\) disagrees"),
        ({"architecture": "topk", "k": 3}, r"architecture='topk' \(--architecture\) disagrees"),
        ({"apply_b_dec_to_input": False}, "apply_b_dec_to_input=False"),
    ],
)
def test_conflicts_with_the_cfg(over: dict[str, Any], match: str) -> None:
    with pytest.raises(SettingsConflictError, match=match) as e:
        load_sae(tensors(), cfg=v6_cfg(), **over)
    assert "<in-memory cfg>" in str(e.value)


def test_k_conflict_names_the_cfg_path(tmp_path: Path) -> None:
    f = folder(tmp_path / "t", tensors(), v6_cfg(architecture="topk", k=4))
    with pytest.raises(
        SettingsConflictError, match=r"k=5 \(--k\) disagrees with the cfg's 4 in .*cfg.json"
    ):
        load_sae(f, k=5)
    assert load_sae(f, k=4, layer=6).settings.k.source == "explicit"


def test_run_settings_win_with_a_runtime_warning() -> None:
    with pytest.warns(RuntimeWarning, match="model_name='local/dir' overrides the cfg's 'gpt2'"):
        sae = load_sae(tensors(), cfg=v6_cfg(), model_name="local/dir")
    assert sae.settings.model_name.to_dict() == {"value": "local/dir", "source": "explicit"}
    with pytest.warns(RuntimeWarning, match="prepend_bos=False overrides"):
        assert (
            load_sae(tensors(), cfg=v6_cfg(), prepend_bos=False).settings.prepend_bos.value is False
        )
    with pytest.warns(RuntimeWarning, match="context_size=64 overrides"):
        load_sae(tensors(), cfg=v6_cfg(), context_size=64)


def test_cfg_hook_outside_the_grammar() -> None:
    cfg = v6_cfg(metadata={"hook_name": "blocks.3.hook_resid_mid"})
    sae = load_sae(tensors(), cfg=cfg)  # decoder-only work needs no hook
    with pytest.raises(HookError, match="hook_resid_mid"):
        sae.settings.require_hook("validate")
    with pytest.warns(RuntimeWarning, match="ignoring the cfg hook_name 'blocks.3.hook_resid_mid'"):
        explicit = load_sae(tensors(), cfg=cfg, layer=3)
    assert explicit.settings.require_hook("validate") == (3, "resid_pre")
    with pytest.raises(HookError, match="blocks.<L>.hook_<kind>"):
        load_sae(tensors(), hook_name="hook_embed")


def test_no_hook_and_the_warned_fallbacks() -> None:
    sae = load_sae(tensors())
    with pytest.raises(HookError, match="no --layer and no cfg hook_name"):
        sae.settings.require_hook("validate")
    with pytest.warns(
        PolygramDefaultWarning,
        match=r"no cfg.json for <in-memory>: using --model gpt2 --layer 10 \(blocks.10.hook_resid_pre\)",
    ):
        s = sae.settings.with_fallbacks("Regrower", sae.source.display, has_cfg=False)
    assert s.to_dict()["model_name"] == {"value": "gpt2", "source": "default"}
    assert s.require_hook("x") == (10, "resid_pre")
    cfg = v6_cfg()
    del cfg["metadata"]["model_name"]
    with pytest.warns(PolygramDefaultWarning, match="gives no model_name: using --model gpt2 \\("):
        load_sae(tensors(), cfg=cfg).settings.with_fallbacks("EpochCompressor", "s", has_cfg=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = load_sae(tensors(), cfg=v6_cfg()).settings
        assert full.with_fallbacks("x", "s", has_cfg=True) == full  # nothing to fall back on


def test_reloading_an_sae_with_overrides_re_resolves(tmp_path: Path) -> None:
    f = folder(tmp_path / "s", tensors(), v6_cfg())
    sae = load_sae(f)
    with pytest.raises(SettingsConflictError):
        load_sae(sae, layer=2)
    again = load_sae(sae, model_name="gpt2", context_size=128)
    assert again.settings.model_name.source == "explicit" and again.source is sae.source
    np.testing.assert_array_equal(again.tensors["W_enc"], sae.tensors["W_enc"])
    arch = load_sae(load_sae(tensors()), architecture="topk", k=2)
    assert arch.architecture == "topk" and arch.k == 2


# ------------------------------------------------------------------ partial
def test_partial_accepts_a_decoder_only_checkpoint(tmp_path: Path) -> None:
    t = tensors()
    p = tmp_path / "dec.safetensors"
    save_file({"W_dec": t["W_dec"], "b_dec": t["b_dec"]}, p)
    with pytest.raises(SAEFormatError, match="needs tensor 'W_enc'"):
        load_sae(p)
    sae = load_sae(p, partial=True)
    assert sae.partial and set(sae.tensors) == {"W_dec", "b_dec"}
    assert (sae.d_in, sae.d_sae) == (D_IN, D_SAE)
    with pytest.raises(SAEFormatError, match="no W_dec tensor"):
        load_sae({"W_enc": t["W_enc"]}, partial=True)


# ------------------------------------------------------------ memory bound
def test_a_header_declaring_a_huge_shape_never_allocates(tmp_path: Path) -> None:
    header = json.dumps(
        {"W_dec": {"dtype": "F32", "shape": [1 << 40, 1 << 20], "data_offsets": [0, 16]}}
    ).encode()
    p = tmp_path / "huge.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(SAEFormatError, match="huge.safetensors"):
        load_sae(p)


def test_the_memory_budget_is_checked_before_reading(tmp_path: Path) -> None:
    p = tmp_path / "s.safetensors"
    save_file(tensors(), p)
    with pytest.raises(SAEFormatError, match=r"needs 548 bytes, over the memory budget of 100"):
        read_all_tensors(p, budget=100)


def test_safetensors_errors_are_wrapped_naming_the_file(tmp_path: Path) -> None:
    # offsets that leave a gap: polygram's own checks pass, safetensors' parser refuses
    p = write_raw(
        tmp_path / "gap.safetensors",
        {"W_dec": ("F32", (1, 1), b"\0" * 4)},
    )
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    doc = json.loads(raw[8 : 8 + n])
    doc["W_dec"]["data_offsets"] = [4, 8]
    h = json.dumps(doc).encode()
    h += b" " * (-len(h) % 8)
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"\0" * 8)
    with pytest.raises(SAEFormatError, match=r"gap.safetensors.*not a valid safetensors file"):
        load_sae(p)


def test_a_load_of_an_sae_object_keeps_its_cache_private() -> None:
    sae = load_sae(tensors())
    assert isinstance(sae, SAE) and sae._cache == {}
