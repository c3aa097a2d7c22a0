"""validate() at every hook kind, batched (3 prompts per forward, padded),
against a plain-torch oracle that hooks GPT-2's modules directly, one
unpadded prompt at a time, and ablates with its own forward hook."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from behavioural.beh_helpers import PANEL, panel_dictionary, write_sae
from polygram.behavioural import BehaviouralValidator, ValidationReport

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.torch

LAYER = 1
PROMPTS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman all night long.",
    "Quantum",
    "sparse features fire together when their phases differ",
    "the quick brown fox",
]


def module_of(model: Any, kind: str) -> Any:
    block = model.transformer.h[LAYER]
    return {"resid_post": block, "attn_out": block.attn, "mlp_out": block.mlp}[kind]


def first(output: Any) -> Any:
    return output[0] if isinstance(output, tuple) else output


class Oracle:
    def __init__(self, model_dir: Path, sae: dict[str, np.ndarray], kind: str) -> None:
        tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
        module = module_of(model, kind)
        self.acts: dict[int, list[np.ndarray]] = {f: [] for f in PANEL}
        self.kl: dict[int, list[np.ndarray]] = {f: [] for f in PANEL}
        with torch.no_grad():
            for text in PROMPTS:
                ids = tok(text, return_tensors="pt")["input_ids"]
                seen: list[Any] = []
                h = module.register_forward_hook(
                    lambda _m, _i, o, s=seen: s.append(first(o).clone())
                )
                try:
                    base = torch.log_softmax(model(ids).logits[0].double(), -1)
                finally:
                    h.remove()
                x = seen[0][0].numpy()
                for f in PANEL:
                    a = np.maximum(0.0, (x - sae["b_dec"]) @ sae["W_enc"][:, f] + sae["b_enc"][f])
                    kl = np.zeros(len(a))
                    fire = np.flatnonzero(a > 0)
                    if fire.size:
                        delta = torch.from_numpy(np.outer(a[fire], sae["W_dec"][f])).float()
                        kl[fire] = self._ablated(model, module, ids, fire, delta, base)
                    self.acts[f].append(a)
                    self.kl[f].append(kl)

    @staticmethod
    def _ablated(model: Any, module: Any, ids: Any, fire: np.ndarray, delta: Any, base: Any) -> Any:
        def edit(_m: Any, _i: Any, output: Any) -> Any:
            h = first(output).clone()
            h[0, torch.from_numpy(fire)] -= delta
            return (h, *output[1:]) if isinstance(output, tuple) else h

        handle = module.register_forward_hook(edit)
        try:
            logits = model(ids).logits[0].double()
        finally:
            handle.remove()
        log_q = torch.log_softmax(logits[fire], -1)
        kl = torch.nn.functional.kl_div(log_q, base[fire], log_target=True, reduction="none")
        return kl.sum(-1).clamp_min(0).numpy()


@pytest.fixture(scope="module")
def sae(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("hooks") / "sae.safetensors"
    return path, write_sae(path, enc_bias=0.02)


@pytest.mark.parametrize("kind", ["resid_post", "attn_out", "mlp_out"])
def test_every_hook_kind_matches_the_oracle(
    tiny_model_dir: Path, sae: tuple[Path, dict[str, np.ndarray]], kind: str
) -> None:
    path, arrays = sae
    v = BehaviouralValidator(
        panel_dictionary(path), path, PANEL, PROMPTS, layer=LAYER, model_name=str(tiny_model_dir),
        device="cpu", hook=kind, batch_size=3, min_firing_rate=0.0, min_both_fire=2,
        progress=False,
    )  # fmt: skip
    report: ValidationReport = v.run()
    oracle = Oracle(tiny_model_dir, arrays, kind)
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    assert report.n_tokens == sum(len(tok(p)["input_ids"]) for p in PROMPTS)
    some_kl = False
    for p in report.pairs:
        ai, aj = np.concatenate(oracle.acts[p.i]), np.concatenate(oracle.acts[p.j])
        fi, fj = ai > 0, aj > 0
        assert (p.n_fires_i, p.n_fires_j, p.n_both_fire) == (fi.sum(), fj.sum(), (fi & fj).sum())
        for fire, f, got in ((fi, p.i, p.kl_ablate_i), (fj, p.j, p.kl_ablate_j)):
            want = np.concatenate(oracle.kl[f])
            if fire.any():
                assert got == pytest.approx(want[fire].mean(), rel=1e-3, abs=1e-7)
                some_kl = some_kl or got > 1e-6
            else:
                assert math.isnan(got)
    assert some_kl
