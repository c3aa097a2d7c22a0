"""Helpers for the behavioural tests: a synthetic SAE checkpoint, the tiny
offline GPT-2 of ``examples/tiny_gpt2.py``, and the prompts used with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from polygram import BehaviouralValidator, Dictionary, from_sae_lens, load_sae_safetensors
from polygram.sae import write_toy_sae

D_MODEL = 32
N_SAE = 16
#: not ascending on purpose: pairs like (11, 2) have i > j
PANEL = [11, 2, 7, 5]

PROMPTS = [
    "The cat sat on the mat.",
    "A dog barked at the mailman all night.",
    "Quantum states interfere",
    "sparse features fire together",
]


def write_sae(
    path: Path, *, n_sae: int = N_SAE, d_model: int = D_MODEL, seed: int = 0, enc_bias: float = 0.0
) -> dict[str, np.ndarray]:
    """A standard-normal SAE (SAELens names and layout) written with
    safetensors.numpy; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "W_enc": rng.standard_normal((d_model, n_sae)).astype(np.float32),
        "b_enc": np.full(n_sae, enc_bias, dtype=np.float32),
        "W_dec": rng.standard_normal((n_sae, d_model)).astype(np.float32),
        "b_dec": (0.1 * rng.standard_normal(d_model)).astype(np.float32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(path))
    return arrays


def panel_dictionary(ckpt: Path, panel: list[int] = PANEL) -> Dictionary:
    records = load_sae_safetensors(ckpt, feature_ids=panel)
    dictionary, _ = from_sae_lens(records, panel, assign_gamma=True)
    return dictionary


def make_validator(ckpt: Path, **kw: Any) -> BehaviouralValidator:
    """A validator for ``PANEL`` of ``ckpt`` at layer 2 over ``PROMPTS``; ``kw`` overrides."""
    base: dict[str, Any] = dict(
        dictionary=panel_dictionary(ckpt),
        sae_checkpoint=ckpt,
        feature_ids=PANEL,
        prompts=PROMPTS,
        layer=2,
        model_name="gpt2",
    )
    base.update(kw)
    return BehaviouralValidator(**base)


def write_cli_inputs(tmp_path: Path) -> dict[str, Path]:
    """The three ``polygram validate`` input files for ``PANEL`` (the prompts
    file with a comment, a blank line and padded lines) under ``tmp_path``."""
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    toy = tmp_path / "panel.json"
    records = load_sae_safetensors(ckpt, feature_ids=PANEL)
    write_toy_sae(toy, [records[f] for f in PANEL], description="test panel")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\n\n" + "\n".join(f"  {p}  " for p in PROMPTS) + "\n")
    return {"dictionary": toy, "ckpt": ckpt, "prompts": prompts, "dir": tmp_path}


def validate_args(inputs: dict[str, Path], **over: str) -> list[str]:
    """``polygram validate`` arguments for ``inputs`` at layer 2, output under
    ``dir/out``; ``over`` sets flags (``min_both_fire="2"`` → ``--min-both-fire 2``)."""
    flags = {
        "--dictionary": str(inputs["dictionary"]),
        "--sae-checkpoint": str(inputs["ckpt"]),
        "--feature-ids": ",".join(map(str, PANEL)),
        "--prompts": str(inputs["prompts"]),
        "--layer": "2",
        "--output": str(inputs["dir"] / "out" / "report.json"),
    }
    flags.update({f"--{k.replace('_', '-')}": v for k, v in over.items()})
    out = ["validate"]
    for k, v in flags.items():
        out += [k, v]
    return out
