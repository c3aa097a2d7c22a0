"""get_model: the per-process cache, eval mode, masked-LM hosts, dtypes, and
what it refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polygram.errors import HookError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from polygram.runtime import clear_model_cache, get_model, is_masked_lm  # noqa: E402

pytestmark = pytest.mark.torch


def test_cached_per_name_device_dtype(
    tiny_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tiny_model("gpt2")
    clear_model_cache()
    calls: list[dict[str, Any]] = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def counting(*a: Any, **k: Any) -> Any:
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", counting)
    a = get_model(path, device="cpu")
    assert get_model(str(path), device="CPU") is a  # Path or str, any case: one load
    assert len(calls) == 1 and calls[0] == {}  # dtype auto: no dtype argument, no remote code
    half = get_model(path, device="cpu", dtype="float16")
    assert half is not a and half.dtype == "float16" and calls[1] == {"dtype": torch.float16}
    assert a.dtype == "float32" and a.device == "cpu" and not a.masked_lm
    assert not a.model.training and not any(p.requires_grad for p in a.model.parameters())
    assert a.config is a.model.config and a.model_type == "gpt2" and a.name == str(path)
    assert "trust_remote_code" not in json.dumps([repr(c) for c in calls])
    assert clear_model_cache() == 2
    assert get_model(path, device="cpu") is not a and len(calls) == 3


def test_masked_lm_host(tiny_model: Callable[..., Path]) -> None:
    lm = get_model(tiny_model("esm"), device="cpu")
    assert lm.masked_lm and type(lm.model).__name__ == "EsmForMaskedLM"
    assert is_masked_lm(lm.config)


def test_masked_lm_rule() -> None:
    bert = transformers.BertConfig()
    assert is_masked_lm(bert)  # BERT has both classes; not a decoder → masked
    assert not is_masked_lm(transformers.BertConfig(is_decoder=True))
    assert is_masked_lm(transformers.EsmConfig(vocab_size=33))
    assert not is_masked_lm(transformers.GPT2Config())
    assert not is_masked_lm(transformers.LlamaConfig())


def test_refused(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="model_name: got"):
            get_model(bad, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported device 'gpu'"):
        get_model(tiny_model("gpt2"), device="gpu")
    with pytest.raises(ValueError, match="dtype: got 'fp8'"):
        get_model(tiny_model("gpt2"), device="cpu", dtype="fp8")
    transformers.CLIPVisionConfig().save_pretrained(tmp_path)  # neither causal nor masked LM
    with pytest.raises(
        HookError, match="model_type 'clip_vision_model' has neither a causal-LM nor"
    ):
        get_model(tmp_path, device="cpu")
