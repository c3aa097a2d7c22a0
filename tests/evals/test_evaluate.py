"""evaluate / evaluate_many on the tiny random GPT-2 (spec 16 §5, §7.3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from eval_helpers import PROMPTS, exact_sae, oracle_evaluate, random_sae, settings  # noqa: E402

from polygram.errors import EvalError, HookError, PolygramSmallSampleWarning  # noqa: E402
from polygram.evals import EvalOptions, EvalResult, evaluate, evaluate_many  # noqa: E402
from polygram.sae import SAE  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::polygram.errors.PolygramSmallSampleWarning"),
]

D = 32  # examples/tiny_gpt2.py
CPU = EvalOptions(device="cpu", prepend_bos=True)
SCALARS = (
    "ce_loss_without_sae",
    "ce_loss_with_sae",
    "ce_loss_with_ablation",
    "ce_loss_score",
    "kl_div_with_sae",
    "kl_div_with_ablation",
    "kl_div_score",
    "mse",
    "fvu",
    "explained_variance",
    "cossim",
    "l0",
    "l1",
)


def _opts(**kw: Any) -> EvalOptions:
    return EvalOptions(**{"device": "cpu", "prepend_bos": True, **kw})


def test_an_exact_sae_scores_one(tiny_model_dir: Path) -> None:
    r = evaluate(exact_sae(tiny_model_dir, D), PROMPTS, options=_opts(mean_ablation=True))
    assert r.ce_loss_with_sae == pytest.approx(r.ce_loss_without_sae, abs=1e-6)
    assert r.ce_loss_score == pytest.approx(1.0, abs=1e-5)
    assert r.ce_loss_score_mean_ablation == pytest.approx(1.0, abs=1e-5)
    assert r.kl_div_with_sae == pytest.approx(0.0, abs=1e-7)
    assert r.kl_div_score == pytest.approx(1.0, abs=1e-6)
    assert r.explained_variance == pytest.approx(1.0, abs=1e-9)
    assert r.fvu == pytest.approx(0.0, abs=1e-9) and r.mse == pytest.approx(0.0, abs=1e-10)
    assert r.cossim == pytest.approx(1.0, abs=1e-9)
    # f = [relu(x), relu(−x)]: exactly d features per token unless a coordinate is 0
    assert r.l0 == pytest.approx(D, abs=1e-9)
    assert r.n_dead == 0 and r.frac_alive == 1


def test_numbers_agree_with_a_plain_torch_loop(tiny_model_dir: Path) -> None:
    sae = random_sae(tiny_model_dir, D)
    r = evaluate(sae, PROMPTS, options=_opts(batch_size=3))
    want = oracle_evaluate(tiny_model_dir, sae, PROMPTS)
    assert r.n_tokens == want["n_tokens"]
    assert r.ce_loss_without_sae == pytest.approx(want["ce"]["clean"], rel=1e-5)
    assert r.ce_loss_with_sae == pytest.approx(want["ce"]["sae"], rel=1e-5)
    assert r.ce_loss_with_ablation == pytest.approx(want["ce"]["zero"], rel=1e-5)
    assert r.kl_div_with_sae == pytest.approx(want["kl"]["sae"], rel=1e-4, abs=1e-7)
    assert r.kl_div_with_ablation == pytest.approx(want["kl"]["zero"], rel=1e-4, abs=1e-7)
    for k in ("mse", "fvu", "explained_variance", "cossim", "l0", "l1"):
        assert getattr(r, k) == pytest.approx(want["sae"][k], rel=1e-5), k
    assert r.feature_frequency is not None
    np.testing.assert_allclose(r.feature_frequency, want["sae"]["feature_frequency"])
    assert r.feature_frequency.sum() == pytest.approx(r.l0, rel=1e-9)
    assert r.fvu + r.explained_variance == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_batch_size_does_not_change_the_numbers(tiny_model_dir: Path, batch_size: int) -> None:
    sae = random_sae(tiny_model_dir, D)
    ref = evaluate(sae, PROMPTS, options=_opts(batch_size=8))
    got = evaluate(sae, PROMPTS, options=_opts(batch_size=batch_size))
    assert (got.n_tokens, got.n_ce_tokens) == (ref.n_tokens, ref.n_ce_tokens)
    for k in SCALARS:
        assert getattr(got, k) == pytest.approx(getattr(ref, k), rel=1e-4, abs=1e-6), k


def test_evaluate_many_equals_separate_evaluations(tiny_model_dir: Path) -> None:
    a, b = random_sae(tiny_model_dir, D, seed=1), random_sae(tiny_model_dir, D, seed=2)
    many = evaluate_many([a, b], PROMPTS, options=_opts(batch_size=3))
    for sae, r in zip((a, b), many):
        one = evaluate(sae, PROMPTS, options=_opts(batch_size=3))
        for k in SCALARS:
            assert getattr(r, k) == pytest.approx(getattr(one, k), rel=1e-6, abs=1e-9), k
    assert many[0].ce_loss_with_sae != many[1].ce_loss_with_sae


def test_forwards_per_batch(tiny_model_dir: Path) -> None:
    from polygram.runtime import get_model

    model = get_model(str(tiny_model_dir), device="cpu")
    calls = []
    handle = model.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        saes = [random_sae(tiny_model_dir, D, seed=s) for s in range(3)]
        evaluate_many(saes, PROMPTS, model=model, options=_opts(batch_size=3))
        n_batches = math.ceil(len(PROMPTS) / 3)
        assert len(calls) == n_batches * (2 + len(saes))  # clean, zero, one spliced per SAE
        calls.clear()
        evaluate(saes[0], PROMPTS, model=model, options=_opts(batch_size=3, mean_ablation=True))
        assert len(calls) == n_batches * 4  # + the mean-ablated sweep
    finally:
        handle.remove()


def test_max_tokens_stops_after_the_first_whole_batch_reaching_it(tiny_model_dir: Path) -> None:
    sae = random_sae(tiny_model_dir, D)
    full = evaluate(sae, PROMPTS, options=_opts(batch_size=2))
    first2 = evaluate(sae, PROMPTS[:2], options=_opts(batch_size=2))
    cut = evaluate(sae, PROMPTS, options=_opts(batch_size=2, max_tokens=1))
    assert cut.n_tokens == first2.n_tokens < full.n_tokens
    assert cut.ce_loss_with_sae == pytest.approx(first2.ce_loss_with_sae, rel=1e-6)
    assert cut.n_prompts == len(PROMPTS)


def test_splice_special_also_replaces_the_bos_position(tiny_model_dir: Path) -> None:
    sae = random_sae(tiny_model_dir, D)
    plain = evaluate(sae, PROMPTS, options=_opts())
    every = evaluate(sae, PROMPTS, options=_opts(splice_special=True))
    assert every.splice_special and not plain.splice_special
    # the SAE statistics are over P_tok either way; the spliced CE differs
    assert every.explained_variance == pytest.approx(plain.explained_variance, rel=1e-9)
    assert every.ce_loss_with_sae != pytest.approx(plain.ce_loss_with_sae, rel=1e-6)


def test_packing_saelens_rows_of_context_size(tiny_model_dir: Path) -> None:
    sae = random_sae(tiny_model_dir, D)
    r = evaluate(sae, PROMPTS, options=_opts(packing="saelens", context_size=8))
    assert r.packing == "saelens" and r.context_size == 8
    assert r.n_ce_tokens < r.n_tokens


def test_result_records_where_it_ran(tiny_model_dir: Path, tmp_path: Path) -> None:
    r = evaluate(random_sae(tiny_model_dir, D), PROMPTS, options=_opts())
    assert (r.hook_name, r.layer, r.hook_kind) == ("blocks.2.hook_resid_pre", 2, "resid_pre")
    assert r.model_name == str(tiny_model_dir) and r.device == "cpu" and r.dtype == "float32"
    assert r.sae_settings["model_name"] == {"value": str(tiny_model_dir), "source": "cfg"}
    assert r.sae_settings["prepend_bos"] == {"value": True, "source": "explicit"}
    assert r.sae_settings["context_size"]["source"] == "default"
    assert r.sae_source == "<in-memory>" and len(r.sae_sha256) == 64
    back = EvalResult.from_json(r.to_json(tmp_path / "e.json"))
    assert back.to_dict() == r.to_dict()


def test_fewer_than_512_tokens_warn(tiny_model_dir: Path) -> None:
    with pytest.warns(PolygramSmallSampleWarning, match=r"only \d+ evaluated tokens"):
        evaluate(random_sae(tiny_model_dir, D), PROMPTS[:2], options=_opts())


# -------------------------------------------------------------- bad input
def test_empty_prompt_set_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="prompts: empty"):
        evaluate(random_sae(tiny_model_dir, D), [], options=_opts())


def test_a_prompt_that_tokenizes_to_nothing_is_named(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"prompts\[1\]"):
        evaluate(random_sae(tiny_model_dir, D), ["The cat.", ""], options=_opts())


def test_no_evaluated_token_is_an_eval_error(tiny_model_dir: Path) -> None:
    # context_size 1 keeps only the BOS of every prompt: N = 0
    with (
        pytest.raises(EvalError, match=r"N = 0.*2 prompts.*special ids \[0\]"),
        pytest.warns(RuntimeWarning, match="truncated"),
    ):
        evaluate(random_sae(tiny_model_dir, D), PROMPTS[:2], options=_opts(context_size=1))


def test_a_width_mismatch_names_both_widths(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"d_in=16.*blocks.2.hook_resid_pre.*width 32"):
        evaluate(random_sae(tiny_model_dir, 16), PROMPTS, options=_opts())


def test_an_sae_without_a_hook_is_refused(tiny_model_dir: Path) -> None:
    sae = SAE("standard", random_sae(tiny_model_dir, D).tensors)
    with pytest.raises(HookError, match="no --layer and no cfg hook_name"):
        evaluate(sae, PROMPTS, model=str(tiny_model_dir), options=_opts())


def test_saes_that_disagree_on_the_hook_are_refused(tiny_model_dir: Path) -> None:
    a = random_sae(tiny_model_dir, D)
    b = SAE("standard", a.tensors, settings=settings(tiny_model_dir, layer=3))
    with pytest.raises(EvalError, match=r"disagree on hook"):
        evaluate_many([a, b], PROMPTS, options=_opts())


def test_saes_that_disagree_on_the_context_are_refused(tiny_model_dir: Path) -> None:
    a = random_sae(tiny_model_dir, D, context_size=16)
    b = random_sae(tiny_model_dir, D, context_size=32)
    with pytest.raises(EvalError, match=r"disagree on context_size: 16"):
        evaluate_many([a, b], PROMPTS, options=_opts())


def test_an_explicit_model_other_than_the_cfg_warns(tiny_model_dir: Path) -> None:
    sae = SAE("standard", random_sae(tiny_model_dir, D).tensors, settings=settings("some/hub-name"))
    with pytest.warns(RuntimeWarning, match="overrides the SAE cfg's 'some/hub-name'"):
        r = evaluate(sae, PROMPTS, model=str(tiny_model_dir), options=_opts())
    assert r.sae_settings["model_name"]["source"] == "explicit"


def test_a_nan_sae_is_refused_before_any_forward(tiny_model_dir: Path) -> None:
    t = dict(random_sae(tiny_model_dir, D).tensors)
    t["W_dec"] = t["W_dec"].copy()
    t["W_dec"][3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        SAE("standard", t, settings=settings(tiny_model_dir))


# ---------------------------------------------------------------- masked LM
def test_a_masked_lm_has_no_ce_but_kl(tiny_model: Any) -> None:
    model_dir = tiny_model("esm")
    from polygram.runtime import get_model

    m = get_model(str(model_dir), device="cpu")
    d = int(m.config.hidden_size)
    sae = random_sae(model_dir, d, layer=1)
    r = evaluate(sae, ["MKTAYIAK", "MLLSVPLLLG"], model=m, options=_opts(prepend_bos=None))
    assert r.ce_loss_score is None and r.ce_loss_without_sae is None and r.n_ce_tokens == 0
    assert r.kl_div_with_sae is not None and r.kl_div_with_sae >= -1e-6
    assert r.explained_variance is not None and r.n_tokens > 0
    ex = evaluate(
        exact_sae(model_dir, d, layer=1), ["MKTAYIAK"], model=m, options=_opts(prepend_bos=None)
    )
    assert ex.kl_div_with_sae == pytest.approx(0.0, abs=1e-6)


def test_a_saelens_folder_takes_model_and_hook_from_its_cfg(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from polygram.sae import write_sae

    sae = random_sae(tiny_model_dir, D)
    written = write_sae(sae, tmp_path / "sae")
    r = evaluate(tmp_path / "sae", PROMPTS, options=_opts())
    assert r.sae_source == str(tmp_path / "sae") and r.sae_sha256 == written.sha256
    assert r.sae_settings["hook_name"] == {"value": "blocks.2.hook_resid_pre", "source": "cfg"}
    assert r.sae_settings["model_name"] == {"value": str(tiny_model_dir), "source": "cfg"}
    same = evaluate(sae, PROMPTS, options=_opts())
    assert r.ce_loss_with_sae == pytest.approx(same.ce_loss_with_sae, rel=1e-7)
