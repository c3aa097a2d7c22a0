"""BehaviouralValidator without torch: constructor checks (incl. the runtime
options), predict(), the missing-extra error.  Device resolution and block
lookup are tested with the runtime (tests/runtime)."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import polygram
from behavioural.beh_helpers import PANEL, make_validator, panel_dictionary, write_sae
from polygram.behavioural import BehaviouralValidator
from polygram.errors import HookError, SAEFileNotFoundError
from polygram.runtime import require_torch

make = make_validator


def test_exported_top_level() -> None:
    assert polygram.BehaviouralValidator is BehaviouralValidator


def test_defaults(sae_ckpt: Path) -> None:
    v = make(sae_ckpt, prompts=("a", "b"))
    assert v.model_name == "gpt2"
    assert (v.polygram_overlap_threshold, v.jaccard_threshold, v.min_firing_rate) == (
        0.7,
        0.30,
        0.01,
    )
    assert v.min_both_fire == 5 and v.allow_layer_zero is False and v.device is None
    assert v.sae_checkpoint == sae_ckpt and isinstance(v.sae_checkpoint, Path)
    assert v.prompts == ["a", "b"] and v.feature_ids == PANEL
    assert v._decoder_rows_cache is None


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"feature_ids": [11, 2, 7]}, "length 3 does not match"),
        ({"polygram_overlap_threshold": 1.5}, "polygram_overlap_threshold"),
        ({"jaccard_threshold": -0.1}, "jaccard_threshold"),
        ({"min_firing_rate": math.nan}, "min_firing_rate"),
        ({"jaccard_threshold": True}, "jaccard_threshold"),
        ({"min_both_fire": 0}, "min_both_fire"),
        ({"min_both_fire": 2.5}, "min_both_fire"),
        ({"layer": -1}, "must be"),
        ({"prompts": []}, "prompts"),
        ({"prompts": "one string"}, "prompts"),
        ({"prompts": ["ok", ""]}, "prompts"),
        ({"feature_ids": [11, 2, 7, 7]}, "repeated"),
    ],
)
def test_constructor_errors(sae_ckpt: Path, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(sae_ckpt, **kw)


def test_missing_checkpoint(sae_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(SAEFileNotFoundError, match="no such file"):
        make(sae_ckpt, sae_checkpoint=tmp_path / "nope.safetensors")
    with pytest.raises(SAEFileNotFoundError, match="missing cfg.json"):
        make(sae_ckpt, sae_checkpoint=tmp_path)  # a directory must be a SAELens folder


def test_check_order(sae_ckpt: Path, tmp_path: Path) -> None:
    # the length check comes before the threshold check, which comes before
    # the layer check, which comes before the prompts/checkpoint checks
    with pytest.raises(ValueError, match="does not match"):
        make(sae_ckpt, feature_ids=[1], jaccard_threshold=2.0)
    with pytest.raises(ValueError, match="jaccard_threshold"):
        make(sae_ckpt, jaccard_threshold=2.0, layer=-1)
    with pytest.raises(ValueError, match="must be"):
        make(sae_ckpt, layer=-1, prompts=[])
    with pytest.raises(ValueError, match="prompts"):
        make(sae_ckpt, prompts=[], sae_checkpoint=tmp_path / "x")


def test_more_than_eight_features(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    from polygram import Dictionary, Feature, HEA_Rung2

    # an encoding with a larger cap than rung-1 MPS is held to its own cap
    feats = [Feature(f"f{k}", "c", beta=0.1 * k) for k in range(9)]
    enc = HEA_Rung2(depth=1, n_qubits=4)
    d = Dictionary("Wide", feats, {"c": [f.name for f in feats]}, enc)
    v = BehaviouralValidator(d, ckpt, list(range(9)), ["x"], layer=1, model_name="gpt2")
    assert len(v.feature_ids) == 9


def test_layer_zero(sae_ckpt: Path) -> None:
    with pytest.raises(ValueError) as e:
        make(sae_ckpt, layer=0)
    text = str(e.value)
    assert "structural dead zone" in text
    assert "docs/research/deeper-layer-ablation-probe.md" in text
    assert "allow_layer_zero=True" in text
    with pytest.warns(RuntimeWarning, match="structural dead zone"):
        v = make(sae_ckpt, layer=0, allow_layer_zero=True)
    assert v.layer == 0
    make(sae_ckpt, layer=1)  # silent (warnings are errors in this suite)


def test_layer_zero_note_exists() -> None:
    root = Path(__file__).resolve().parents[2]
    assert (root / "docs" / "research" / "deeper-layer-ablation-probe.md").is_file()


def test_predict(sae_ckpt: Path) -> None:
    arrays = write_sae(sae_ckpt)
    v = make(sae_ckpt)
    pairs = v.predict()
    assert len(pairs) == 6
    order = [(PANEL[a], PANEL[b]) for a in range(4) for b in range(a + 1, 4)]
    assert [(p.i, p.j) for p in pairs] == order
    assert any(p.i > p.j for p in pairs)
    gram = np.abs(v.dictionary.gram()) ** 2
    w = arrays["W_dec"].astype(np.float64)
    for p in pairs:
        a, b = PANEL.index(p.i), PANEL.index(p.j)
        assert p.polygram_overlap == pytest.approx(gram[a, b], abs=1e-15)
        wi, wj = w[p.i], w[p.j]
        cos2 = float(wi @ wj) ** 2 / (float(wi @ wi) * float(wj @ wj))
        assert p.decoder_overlap == pytest.approx(cos2, rel=1e-12)
        assert 0.0 <= p.decoder_overlap <= 1.0 and 0.0 <= p.polygram_overlap <= 1.0 + 1e-12
        for name in (
            "jaccard",
            "pearson_activation",
            "kl_ablate_i",
            "kl_ablate_j",
            "kl_ratio_paired",
            "kl_log_ratio_abs",
        ):
            assert math.isnan(getattr(p, name))
        assert (p.n_fires_i, p.n_fires_j, p.n_both_fire, p.n_either_fire) == (0, 0, 0, 0)
        assert p.gate_pass is False
    assert v._decoder_rows_cache is not None and v._decoder_rows_cache.shape == (4, 32)


def test_predict_zero_decoder_row(tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    arrays = write_sae(ckpt)
    arrays["W_dec"][2] = 0.0
    from safetensors.numpy import save_file

    save_file(arrays, str(ckpt))
    v = BehaviouralValidator(
        panel_dictionary(ckpt, [2, 3]), ckpt, [2, 3], ["x"], layer=1, model_name="gpt2"
    )
    assert v.predict()[0].decoder_overlap == 0.0


def test_predict_does_not_import_torch(sae_ckpt: Path) -> None:
    # a fresh interpreter, since this test session may have imported torch
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from beh_helpers import PANEL, PROMPTS, panel_dictionary
        from polygram import BehaviouralValidator
        ckpt = Path({str(sae_ckpt)!r})
        v = BehaviouralValidator(panel_dictionary(ckpt), ckpt, PANEL, PROMPTS, layer=2, model_name="gpt2")
        assert len(v.predict()) == 6
        bad = [m for m in ("torch", "transformers") if m in sys.modules]
        assert not bad, bad
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r"polygram\[behavioural\]"):
        require_torch()


def test_validate_without_torch(monkeypatch: pytest.MonkeyPatch, sae_ckpt: Path) -> None:
    v = make(sae_ckpt)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"\[behavioural\]"):
        v.validate()


def test_unknown_device_name_is_refused_at_construction(sae_ckpt: Path) -> None:
    """Only the name is checked here (torch-free); availability waits for validate()."""
    with pytest.raises(ValueError, match="unsupported device 'tpu'"):
        make_validator(sae_ckpt, device="tpu")
    assert make_validator(sae_ckpt, device="CPU").device == "CPU"  # normalised only when resolved
    assert make_validator(sae_ckpt, device="cuda:1").device == "cuda:1"  # checked at validate()
    with pytest.raises(ValueError, match="unsupported device 'cuda:x'"):
        make_validator(sae_ckpt, device="cuda:x")


def test_runtime_options(sae_ckpt: Path) -> None:
    v = make_validator(sae_ckpt)
    assert (v.batch_size, v.dtype, v.context_size, v.prepend_bos, v.hook, v.block_path) == (
        8, "auto", None, None, "resid_pre", None,
    )  # fmt: skip
    v = make_validator(sae_ckpt, batch_size=3, dtype="BFloat16", context_size=16, hook="mlp_out")
    assert (v.batch_size, v.dtype, v.context_size, v.hook) == (3, "bfloat16", 16, "mlp_out")
    for kw, needle in (
        ({"batch_size": 0}, "batch_size: got 0"),
        ({"batch_size": True}, "batch_size: got True"),
        ({"context_size": 0}, "context_size: got 0"),
        ({"context_size": 2.5}, "context_size: got 2.5"),
        ({"dtype": "fp8"}, "dtype: got 'fp8'"),
        ({"prepend_bos": "yes"}, "prepend_bos: got 'yes'"),
    ):
        with pytest.raises(ValueError, match=needle):
            make_validator(sae_ckpt, **kw)
    with pytest.raises(HookError, match="hook: got 'resid_mid'; expected one of resid_pre"):
        make_validator(sae_ckpt, hook="resid_mid")


def test_layer_zero_rule_is_for_resid_pre_only(sae_ckpt: Path) -> None:
    with pytest.raises(ValueError, match="structural dead zone"):
        make_validator(sae_ckpt, layer=0)
    for kind in ("resid_post", "attn_out", "mlp_out"):  # block 0's output / sub-layers: fine
        assert make_validator(sae_ckpt, layer=0, hook=kind).layer == 0
