"""The validator on every SAE source and architecture (spec 16 §1, §2.1,
§2.3): the hook and model from the cfg, the missing-hook error, the warned
model fallback, and a JumpReLU threshold that changes the result (it used to
run as ReLU: byte-identical output)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from behavioural.beh_helpers import PANEL, PROMPTS, panel_dictionary, write_sae
from polygram.behavioural import BehaviouralValidator
from polygram.errors import HookError, PolygramDefaultWarning, SettingsConflictError
from polygram.sae import load_sae

pytestmark = pytest.mark.torch


def folder(path: Path, arrays: dict[str, np.ndarray], cfg: dict[str, Any]) -> Path:
    path.mkdir(parents=True)
    save_file(arrays, path / "sae_weights.safetensors")
    (path / "cfg.json").write_text(json.dumps(cfg))
    return path


def v6(arch: str, model: str, hook: str = "blocks.2.hook_resid_pre") -> dict[str, Any]:
    return {
        "architecture": arch,
        "d_in": 32,
        "d_sae": 16,
        "dtype": "float32",
        "metadata": {"sae_lens_version": "6.2.0", "model_name": model, "hook_name": hook},
    }


def test_hook_and_model_come_from_the_cfg(tmp_path: Path, tiny_model_dir: Path) -> None:
    arrays = write_sae(tmp_path / "raw.safetensors")
    src = folder(tmp_path / "sae", arrays, v6("standard", str(tiny_model_dir)))
    v = BehaviouralValidator(
        panel_dictionary(tmp_path / "raw.safetensors"),
        src,
        PANEL,
        PROMPTS,
        device="cpu",
        min_firing_rate=0.0,
    )
    assert (v.layer, v.hook, v.model_name) == (2, "resid_pre", str(tiny_model_dir))
    v.progress = False
    r = v.run()
    assert r.layer == 2 and r.model_name == str(tiny_model_dir)
    assert r.sae_settings is not None
    assert r.sae_settings["hook_name"] == {"value": "blocks.2.hook_resid_pre", "source": "cfg"}
    assert r.sae_settings["model_name"]["source"] == "cfg"
    with pytest.raises(SettingsConflictError, match="layer=3"):
        BehaviouralValidator(
            panel_dictionary(tmp_path / "raw.safetensors"), src, PANEL, PROMPTS, layer=3
        )


def test_no_hook_anywhere_and_the_warned_model_fallback(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    d = panel_dictionary(ckpt)
    with pytest.raises(HookError, match="no --layer and no cfg hook_name"):
        BehaviouralValidator(d, ckpt, PANEL, PROMPTS, model_name="gpt2")
    with pytest.warns(PolygramDefaultWarning, match=r"no cfg.json for .*: using --model gpt2"):
        v = BehaviouralValidator(d, ckpt, PANEL, PROMPTS, layer=2)
    assert v.model_name == "gpt2" and v.sae.settings.model_name.source == "default"


def test_an_in_memory_sae_is_accepted(tmp_path: Path) -> None:
    arrays = write_sae(tmp_path / "s.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = BehaviouralValidator(
            panel_dictionary(tmp_path / "s.safetensors"),
            load_sae(arrays, layer=2, model_name="m"),
            PANEL,
            PROMPTS,
        )
    assert v.sae.source.display == "<in-memory>" and v.layer == 2


def test_a_jumprelu_threshold_changes_the_validation(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The same weights as ReLU and as JumpReLU with a threshold at the median
    positive pre-activation: fewer firing tokens, so other fire counts (spec 16 §0)."""
    from polygram.runtime import capture_activations, get_model

    arrays = write_sae(tmp_path / "raw.safetensors", enc_bias=0.5)
    d = panel_dictionary(tmp_path / "raw.safetensors")
    model = str(tiny_model_dir)
    kw: dict[str, Any] = {
        "layer": 2,
        "model_name": model,
        "device": "cpu",
        "progress": False,
        "min_firing_rate": 0.0,
    }
    relu = BehaviouralValidator(d, arrays, PANEL, PROMPTS, **kw).run()
    x = capture_activations(get_model(model, "cpu"), "blocks.2.hook_resid_pre", PROMPTS)
    z = (x - arrays["b_dec"]) @ arrays["W_enc"] + arrays["b_enc"]
    theta = np.array([np.median(col[col > 0]) if (col > 0).any() else 0.0 for col in z.T])
    jump = {**arrays, "threshold": theta.astype(np.float32)}
    jr = BehaviouralValidator(d, jump, PANEL, PROMPTS, **kw).run()
    assert jr.sae_settings["architecture"] == {"value": "jumprelu", "source": "inferred"}
    fires = {(p.i, p.j): (p.n_fires_i, p.n_fires_j) for p in relu.pairs}
    jfires = {(p.i, p.j): (p.n_fires_i, p.n_fires_j) for p in jr.pairs}
    assert all(a[0] >= b[0] and a[1] >= b[1] for a, b in zip(fires.values(), jfires.values()))
    assert fires != jfires
