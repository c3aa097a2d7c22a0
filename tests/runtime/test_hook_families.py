"""Hook identities on a tiny random model of every family (spec 16 §3.2),
each sub-layer checked against an independent recomputation of its MLP from
the block's own modules, plus the three hook modes and the fire-count check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polygram.runtime import (
    HOOK_KINDS,
    LAYOUTS,
    HookPoint,
    LoadedModel,
    capture,
    capture_and_stop,
    forward,
    get_model,
    locate,
    make_batch,
    replace,
    tokenize_prompts,
)

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.torch

FAMILIES = list(LAYOUTS)
PROMPTS = ["The cat sat on the mat.", "A dog"]
PROTEINS = ["MKTAYIAKQRQISFVKSHF", "MKTW"]


def prompts_for(lm: LoadedModel) -> list[str]:
    return PROTEINS if lm.model_type == "esm" else PROMPTS


def run(lm: LoadedModel, hooks: list[HookPoint], *edits: replace) -> tuple[Any, list[Any], Any]:
    """One forward of both prompts as a padded batch with a capture at each
    of ``hooks`` (entered before ``edits``): ``(batch, captured, logits)``."""
    batch = make_batch(tokenize_prompts(lm.tokenizer, prompts_for(lm)), [0, 1])
    caps = [capture(lm, h) for h in hooks]
    for c in caps:
        c.__enter__()
    for e in edits:
        e.__enter__()
    try:
        logits = forward(lm, batch)
    finally:
        for c in [*caps, *edits]:
            c.__exit__(None, None, None)
    return batch, [c.take() for c in caps], logits


def mlp_oracle(model_type: str, block: Any, config: Any, pre: Any, attn: Any) -> Any:
    """What the block's MLP adds, recomputed from its modules: from the
    attention-updated residual (sequential families) or the block input
    (parallel GPT-J / GPT-NeoX)."""
    mid = pre + attn
    if model_type == "gpt2":
        return block.mlp(block.ln_2(mid))
    if model_type == "gptj":
        return block.mlp(block.ln_1(pre))
    if model_type == "gpt_neox":
        src = pre if config.use_parallel_residual else mid
        return block.mlp(block.post_attention_layernorm(src))
    if model_type == "opt":
        return block.fc2(block.activation_fn(block.fc1(block.final_layer_norm(mid))))
    if model_type == "bloom":
        m = block.mlp
        return m.dense_4h_to_h(m.gelu_impl(m.dense_h_to_4h(block.post_attention_layernorm(mid))))
    if model_type in ("llama", "mistral", "qwen2", "gemma"):
        return block.mlp(block.post_attention_layernorm(mid))
    if model_type in ("gemma2", "gemma3_text", "gemma3"):
        return block.post_feedforward_layernorm(block.mlp(block.pre_feedforward_layernorm(mid)))
    if model_type == "esm":
        return block.output.dense(block.intermediate(block.LayerNorm(mid)))
    raise AssertionError(model_type)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request: pytest.FixtureRequest, tiny_model: Callable[..., Path]) -> LoadedModel:
    lm = get_model(tiny_model(request.param), device="cpu")
    assert lm.model_type == request.param
    return lm


def test_resid_post_is_next_resid_pre(family: LoadedModel) -> None:
    _, (post0, pre1), logits = run(family, [HookPoint(0, "resid_post"), HookPoint(1, "resid_pre")])
    assert torch.equal(post0, pre1)  # exactly, pads included
    assert post0.dtype == torch.float32 and post0.shape[:2] == logits.shape[:2]


@pytest.mark.parametrize("layer", [0, 1])
def test_residual_update_is_attn_plus_mlp(family: LoadedModel, layer: int) -> None:
    hooks = [HookPoint(layer, k) for k in HOOK_KINDS]
    batch, (pre, post, attn, mlp), _ = run(family, hooks)
    m = batch.mask
    torch.testing.assert_close((post - pre)[m], (attn + mlp)[m], atol=1e-5, rtol=0)
    block = locate(family, HookPoint(layer)).module
    with torch.no_grad():
        want = mlp_oracle(family.model_type, block, family.config, pre, attn)
    torch.testing.assert_close(mlp[m], want[m], atol=1e-6, rtol=1e-5)
    # neither share is degenerate, so the identity says something
    assert attn[m].abs().max() > 1e-3 and mlp[m].abs().max() > 1e-3


@pytest.mark.parametrize(
    ("model_type", "setting"),
    [
        ("opt", {"do_layer_norm_before": False}),
        ("bloom", {"apply_residual_connection_post_layernorm": True}),
    ],
)
def test_documented_exceptions(
    tiny_model: Callable[..., Path], model_type: str, setting: dict[str, bool]
) -> None:
    lm = get_model(tiny_model(model_type, **setting), device="cpu")
    batch, (pre, post, attn, mlp, pre1), _ = run(
        lm, [*(HookPoint(0, k) for k in HOOK_KINDS), HookPoint(1)]
    )
    assert torch.equal(post, pre1)
    gap = ((post - pre) - (attn + mlp))[batch.mask].abs().max()
    assert gap > 1e-3  # a norm after the residual add (OPT-350m) or a normed residual (BLOOM)


def test_parallel_neox_off(tiny_model: Callable[..., Path]) -> None:
    lm = get_model(tiny_model("gpt_neox", use_parallel_residual=False), device="cpu")
    batch, (pre, post, attn, mlp), _ = run(lm, [HookPoint(1, k) for k in HOOK_KINDS])
    torch.testing.assert_close(
        (post - pre)[batch.mask], (attn + mlp)[batch.mask], atol=1e-5, rtol=0
    )
    block = locate(lm, HookPoint(1)).module
    with torch.no_grad():
        want = mlp_oracle("gpt_neox", block, lm.config, pre, attn)
    torch.testing.assert_close(mlp[batch.mask], want[batch.mask], atol=1e-6, rtol=1e-5)


def test_replace_identity_edit_changes_nothing(family: LoadedModel) -> None:
    _, _, clean = run(family, [])
    for kind in HOOK_KINDS:
        _, _, same = run(family, [], replace(family, HookPoint(0, kind), lambda x: x))
        assert torch.equal(same, clean), kind


def test_replace_zero_attn_rebuilds_the_output(family: LoadedModel) -> None:
    """Zeroing attn_out (a tuple output in most families) leaves the block
    output equal to its input plus what the MLP then adds."""
    zero = replace(family, HookPoint(1, "attn_out"), torch.zeros_like)
    hooks = [HookPoint(1, "resid_pre"), HookPoint(1, "mlp_out"), HookPoint(1, "resid_post")]
    batch, (pre, mlp, post), logits = run(family, hooks, zero)
    torch.testing.assert_close(post[batch.mask], (pre + mlp)[batch.mask], atol=1e-5, rtol=0)
    _, _, clean = run(family, [])
    assert not torch.allclose(logits, clean)


def test_replace_edits_only_where_asked(family: LoadedModel) -> None:
    """An edit at one position of row 0 (mlp_out, incl. OPT's flat fc2) moves
    that position's resid_post by exactly the edit and no earlier position."""
    delta = torch.linspace(-1, 1, family.config.get_text_config().hidden_size)

    def edit(x: Any) -> Any:
        x[0, 2] -= delta
        return x

    hooks = [HookPoint(0, "resid_post")]
    _, (clean,), _ = run(family, hooks)
    _, (edited,), _ = run(family, hooks, replace(family, HookPoint(0, "mlp_out"), edit))
    torch.testing.assert_close(edited[0, 2], clean[0, 2] - delta, atol=1e-5, rtol=0)
    assert torch.equal(edited[:, :2], clean[:, :2]) and torch.equal(edited[1], clean[1])


def test_capture_and_stop(family: LoadedModel) -> None:
    calls: list[int] = []
    blocks = [locate(family, HookPoint(i)).module for i in range(2)]
    handles = [
        b.register_forward_pre_hook(lambda *_, i=i: calls.append(i)) for i, b in enumerate(blocks)
    ]
    try:
        for kind in HOOK_KINDS:
            _, (want,), _ = run(family, [HookPoint(0, kind)])
            calls.clear()
            batch = make_batch(tokenize_prompts(family.tokenizer, prompts_for(family)), [0, 1])
            with capture_and_stop(family, HookPoint(0, kind)) as cap:
                assert forward(family, batch) is None  # no logits
                got = cap.take()
            assert torch.equal(got, want), kind
            assert 1 not in calls, kind  # block 1 never ran
    finally:
        for h in handles:
            h.remove()


def test_bfloat16_model_keeps_its_dtype(tiny_model: Callable[..., Path]) -> None:
    lm = get_model(tiny_model("llama"), device="cpu", dtype="bfloat16")
    assert lm.dtype == "bfloat16"
    half = replace(lm, HookPoint(0, "resid_post"), lambda x: x * 0.5)
    _, (clean,), _ = run(lm, [HookPoint(1, "resid_pre")])
    _, (post,), logits = run(lm, [HookPoint(1, "resid_pre")], half)
    # the edit went back into the bf16 stream (a float32 tensor there would fail the next Linear)
    assert post.dtype == torch.float32 and logits.dtype == torch.float32
    torch.testing.assert_close(post, (clean * 0.5).bfloat16().float(), atol=0, rtol=0)
    assert torch.isfinite(logits).all()


def test_fire_count_is_checked(tiny_model: Callable[..., Path]) -> None:
    from transformers import AutoModelForCausalLM

    path = tiny_model("gpt2")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    lm = get_model(path, device="cpu")
    batch = make_batch(tokenize_prompts(lm.tokenizer, PROMPTS), [0])
    cap = capture(lm, HookPoint(0))
    with pytest.raises(RuntimeError, match=r"fired 0 times since the last take"):
        cap.take()
    model.transformer.h[1] = model.transformer.h[0]  # the same block runs twice
    with capture(model, HookPoint(0)) as twice:
        with pytest.raises(
            RuntimeError, match=r"blocks.0.hook_resid_pre on transformer.h\[0\] fired 2 times"
        ):
            forward(model, batch)
        assert twice is not None
    with (
        replace(model, HookPoint(1, "mlp_out"), lambda x: x),
        pytest.raises(RuntimeError, match="fired 2 times in one forward"),
    ):
        forward(model, batch)
