"""HookPoint names (the TransformerLens grammar) and locating hook points in
models: the table, its errors and the block_path escape hatch."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polygram.errors import HookError
from polygram.runtime import HOOK_KINDS, LAYOUTS, HookPoint, as_hook_point, locate, n_layers


@given(st.integers(0, 10_000), st.sampled_from(HOOK_KINDS))
def test_name_round_trip(layer: int, kind: str) -> None:
    hp = HookPoint(layer, kind)
    assert hp.name == f"blocks.{layer}.hook_{kind}" == str(hp)
    assert HookPoint.parse(hp.name) == hp
    assert as_hook_point(hp.name) == hp and as_hook_point(hp) is hp


def test_default_kind_and_order() -> None:
    assert HookPoint(3) == HookPoint(3, "resid_pre")
    assert sorted([HookPoint(2, "mlp_out"), HookPoint(1, "resid_pre")])[0].layer == 1


@pytest.mark.parametrize(
    "name",
    [
        "blocks.3.hook_resid_mid",
        "blocks.3.attn.hook_z",
        "blocks.3.hook_z",
        "hook_embed",
        "ln_final.hook_normalized",
        "blocks.-1.hook_resid_pre",
        "blocks.x.hook_resid_pre",
        "blocks.3.hook_resid_pre ",
        "Blocks.3.hook_resid_pre",
        "",
    ],
)
def test_parse_refuses_names_outside_the_grammar(name: str) -> None:
    with pytest.raises(HookError, match=r"resid_pre, resid_post, attn_out, mlp_out") as e:
        HookPoint.parse(name)
    assert repr(name) in str(e.value)
    assert isinstance(e.value, ValueError)


def test_constructor_refuses() -> None:
    with pytest.raises(HookError, match="hook kind: got 'resid_mid'"):
        HookPoint(1, "resid_mid")
    for bad in (-1, True, 1.5, "2"):
        with pytest.raises(HookError, match=r"layer: got .*integer >= 0"):
            HookPoint(bad)  # type: ignore[arg-type]
    with pytest.raises(HookError):
        HookPoint.parse(7)


def test_table_covers_the_spec_rows() -> None:
    assert set(LAYOUTS) == {
        "gpt2", "gptj", "gpt_neox", "opt", "bloom", "llama", "mistral", "qwen2", "gemma",
        "gemma2", "gemma3_text", "gemma3", "esm",
    }  # fmt: skip
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    from tiny_models import TINY_MODEL_TYPES

    assert set(TINY_MODEL_TYPES) == set(LAYOUTS)  # every row has a tiny model


# --- located in real (tiny) models -------------------------------------------------------

torch_only = pytest.mark.torch


def _model(tiny_model: Callable[..., Path], model_type: str, **kw: object) -> object:
    pytest.importorskip("torch")
    from polygram.runtime import get_model

    return get_model(tiny_model(model_type, **kw), device="cpu")


@torch_only
def test_unsupported_model_type_lists_the_supported(tiny_model: Callable[..., Path]) -> None:
    lm = _model(tiny_model, "gpt2")
    stranger = SimpleNamespace(config=SimpleNamespace(model_type="phi3"))
    with pytest.raises(HookError, match=r"model_type 'phi3' \(SimpleNamespace\) is not supported"):
        locate(stranger, HookPoint(0))
    with pytest.raises(HookError, match="supported: gpt2, gptj, gpt_neox, opt, bloom, llama"):
        locate(stranger, "blocks.0.hook_mlp_out")
    assert locate(lm, "blocks.1.hook_resid_post").path == "transformer.h[1]"


@torch_only
def test_layer_out_of_range(tiny_model: Callable[..., Path]) -> None:
    lm = _model(tiny_model, "llama")
    assert n_layers(lm) == 2
    for kind in HOOK_KINDS:
        with pytest.raises(IndexError, match=r"layer: 2 is out of range .* has 2 blocks"):
            locate(lm, HookPoint(2, kind))


@torch_only
def test_paths_per_family(tiny_model: Callable[..., Path]) -> None:
    want = {
        "opt": ("model.decoder.layers[1]", "model.decoder.layers[1].fc2"),
        "bloom": ("transformer.h[1]", "transformer.h[1].mlp.dense_4h_to_h"),
        "gemma2": ("model.layers[1]", "model.layers[1].post_feedforward_layernorm"),
        "gemma3": ("model.language_model.layers[1]", "model.language_model.layers[1].post_feedforward_layernorm"),
        "esm": ("esm.encoder.layer[1]", "esm.encoder.layer[1].output.dense"),
    }  # fmt: skip
    for model_type, (block, mlp) in want.items():
        lm = _model(tiny_model, model_type)
        site = locate(lm, HookPoint(1, "resid_pre"))
        assert site.pre and site.path == block
        post = locate(lm, HookPoint(1, "mlp_out"))
        assert not post.pre and post.path == mlp
        assert post.flat is (model_type == "opt")


@torch_only
def test_bloom_slow_but_exact_is_refused(tiny_model: Callable[..., Path]) -> None:
    lm = _model(tiny_model, "bloom", pretraining_tp=2, slow_but_exact=True)
    for kind in ("attn_out", "mlp_out"):
        with pytest.raises(HookError, match=r"pretraining_tp=2 and slow_but_exact=True"):
            locate(lm, HookPoint(0, kind))
    assert locate(lm, HookPoint(0, "resid_post")).path == "transformer.h[0]"
    # the same TP without slow_but_exact calls the Linear: hookable
    ok = _model(tiny_model, "bloom", pretraining_tp=2, slow_but_exact=False)
    assert locate(ok, HookPoint(0, "attn_out")).path == "transformer.h[0].self_attention.dense"


@torch_only
def test_block_path_escape_hatch(tiny_model: Callable[..., Path]) -> None:
    lm = _model(tiny_model, "llama")
    model = lm.model  # type: ignore[attr-defined]
    # an "unlisted" model: the same object under an unknown model_type
    stranger = SimpleNamespace(config=SimpleNamespace(model_type="phi3"), model=model.model)
    site = locate(stranger, HookPoint(1, "resid_post"), block_path="model.layers")
    assert site.module is model.model.layers[1] and site.path == "model.layers[1]"
    with pytest.raises(HookError, match="not supported"):
        locate(stranger, HookPoint(1, "attn_out"), block_path="model.layers")
    with pytest.raises(HookError, match=r"block_path 'model.blocks': .* no such attribute"):
        locate(stranger, HookPoint(0), block_path="model.blocks")
    with pytest.raises(HookError, match=r"block_path 'model.norm': \w*RMSNorm is not a list"):
        locate(stranger, HookPoint(0), block_path="model.norm")
    with pytest.raises(IndexError, match="has 2 blocks"):
        locate(stranger, HookPoint(5), block_path="model.layers")
