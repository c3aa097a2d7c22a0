"""The validator reads firing statistics at ``P_tok`` positions only (real and
not a special token: the evaluations' rule), and records the dictionary's
cluster count (``--n-clusters`` carried into the dictionary it builds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from behavioural.beh_helpers import (
    PANEL,
    PROMPTS,
    make_validator,
    validate_args,
    write_cli_inputs,
    write_sae,
)
from polygram import from_sae_lens, load_sae_safetensors
from polygram.behavioural import ValidationReport

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.torch

LAYER = 2


def oracle_acts(model_dir: Path, sae: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Activations at every non-BOS position, one prompt at a time with the
    BOS prepended by hand, residuals from ``output_hidden_states``."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out: dict[int, list[np.ndarray]] = {f: [] for f in PANEL}
    with torch.no_grad():
        for text in PROMPTS:
            ids = [tok.bos_token_id, *tok(text)["input_ids"]]
            hs = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
            x = hs[LAYER][0].numpy()[1:]  # the BOS position is not a P_tok position
            for f in PANEL:
                out[f].append(
                    np.maximum(0.0, (x - sae["b_dec"]) @ sae["W_enc"][:, f] + sae["b_enc"][f])
                )
    return {f: np.concatenate(v) for f, v in out.items()}


def test_bos_positions_never_enter_the_statistics(tiny_model_dir: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "sae.safetensors"
    sae = write_sae(ckpt, enc_bias=3.0)  # every feature fires almost everywhere, BOS included
    v = make_validator(
        ckpt, model_name=str(tiny_model_dir), device="cpu", prepend_bos=True, min_both_fire=1,
        min_firing_rate=0.0, progress=False, layer=LAYER,
    )  # fmt: skip
    rep = v.run()
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    assert rep.n_tokens == sum(len(tok(p)["input_ids"]) for p in PROMPTS)  # BOS not counted
    acts = oracle_acts(tiny_model_dir, sae)
    assert acts[PANEL[0]].shape == (rep.n_tokens,)
    for p in rep.pairs:
        fi, fj = acts[p.i] > 0, acts[p.j] > 0
        assert (p.n_fires_i, p.n_fires_j) == (fi.sum(), fj.sum())
        assert (p.n_both_fire, p.n_either_fire) == ((fi & fj).sum(), (fi | fj).sum())
        assert p.pearson_activation == pytest.approx(
            np.corrcoef(acts[p.i], acts[p.j])[0, 1], abs=1e-4
        )


def test_the_report_records_the_dictionary_cluster_count(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "sae.safetensors"
    write_sae(ckpt)
    records = load_sae_safetensors(ckpt, feature_ids=PANEL)
    for k in (1, 3):
        d, _ = from_sae_lens(records, PANEL, assign_gamma=True, n_clusters=k)
        v = make_validator(
            ckpt, dictionary=d, model_name=str(tiny_model_dir), device="cpu", min_firing_rate=0.0,
            progress=False,
        )  # fmt: skip
        rep = v.run()
        assert rep.n_clusters == k and rep.schema_version == 2
        assert ValidationReport.from_json(rep.to_json()).n_clusters == k


def test_cli_n_clusters_reaches_the_dictionary(tiny_model_dir: Path, tmp_path: Path) -> None:
    from polygram.cli import main

    inputs = write_cli_inputs(tmp_path)
    out = inputs["dir"] / "out" / "report.json"
    for flag, want in ((None, 2), ("3", 3)):
        extra = {} if flag is None else {"n_clusters": flag}
        rc = main(
            validate_args(
                inputs, model=str(tiny_model_dir), device="cpu", min_firing_rate="0", **extra
            )
        )
        assert rc == 0
        assert json.loads(out.read_text())["n_clusters"] == want


def test_cli_n_clusters_is_checked_by_argparse(tmp_path: Path) -> None:
    from polygram.cli import main

    inputs = write_cli_inputs(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(validate_args(inputs, n_clusters="0"))
    assert e.value.code == 2
