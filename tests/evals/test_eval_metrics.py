"""The metric core of polygram.evals against reference_values_16.json
(lm_metrics_tiny, sae_metrics_tiny) and an independent plain-torch loop."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from polygram.errors import EvalError
from polygram.evals import SAEStatistics, ce_loss_score, kl_div_score, ratio

torch = pytest.importorskip("torch")

from eval_oracle import oracle_lm, oracle_sae  # noqa: E402

from polygram.evals.lm_metrics import (  # noqa: E402
    StreamingMean,
    ce_per_token,
    kl_per_token,
    log_softmax_,
)
from polygram.runtime import Batch  # noqa: E402

pytestmark = pytest.mark.torch

REF16 = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "reference_values_16.json").read_text()
)
LM = REF16["lm_metrics_tiny"]
SM = REF16["sae_metrics_tiny"]
KINDS = {"sae": "logits_sae", "zero": "logits_zero_ablation", "mean": "logits_mean_ablation"}


def _t(v: Any, dtype: Any = None) -> torch.Tensor:
    return torch.tensor(v, dtype=dtype)


def _lm_batch() -> tuple[torch.Tensor, torch.Tensor, set[int]]:
    return _t(LM["input_ids"]), _t(LM["attention_mask"]), set(LM["special_ids"])


def position_masks(
    ids: torch.Tensor, am: torch.Tensor, special: set[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """P_tok and P_ce of a right-padded batch, through polygram.runtime's Batch."""
    lengths = tuple(int(n) for n in am.sum(1))
    batch = Batch(ids, am, tuple(range(ids.shape[0])), lengths)
    return batch.token_mask(special), batch.ce_mask(special)


def _positions(mask: torch.Tensor) -> list[list[int]]:
    return [[int(b), int(t)] for b, t in mask.nonzero().tolist()]


# ------------------------------------------------------------------ positions
def test_position_sets_match_the_reference() -> None:
    ids, am, special = _lm_batch()
    tok, ce = position_masks(ids, am, special)
    assert _positions(tok) == LM["kl_positions"]
    assert _positions(ce) == LM["ce_positions"]


def test_padding_is_found_by_the_mask_not_the_token_id() -> None:
    # pad id 0 is also a real token of row 0 (position 1): it must count
    ids, am, special = _lm_batch()
    tok, _ = position_masks(ids, am, special)
    assert bool(tok[0, 1]) and int(ids[0, 1]) == 0
    # a special id at a real position is excluded
    tok2, ce2 = position_masks(ids, am, special | {1})
    assert _positions(tok2) == [[0, 1]] and _positions(ce2) == [[0, 1]]


# --------------------------------------------------------- per-token values
def test_per_token_ce_and_kl_match_the_reference() -> None:
    ids, am, special = _lm_batch()
    tok, ce = position_masks(ids, am, special)
    logp = log_softmax_(_t(LM["logits_clean"]))
    pt = LM["per_token"]
    np.testing.assert_allclose(ce_per_token(logp, ids, ce).numpy(), pt["ce_clean"], rtol=1e-6)
    for kind, key in KINDS.items():
        logq = log_softmax_(_t(LM[key]))
        np.testing.assert_allclose(ce_per_token(logq, ids, ce).numpy(), pt[f"ce_{kind}"], rtol=1e-6)
        if f"kl_{kind}" in pt:
            np.testing.assert_allclose(
                kl_per_token(logp, logq, tok).numpy(), pt[f"kl_{kind}"], rtol=1e-5
            )


def test_aggregates_and_scores_match_the_reference() -> None:
    ids, am, special = _lm_batch()
    tok, ce = position_masks(ids, am, special)
    logp = log_softmax_(_t(LM["logits_clean"]))
    ce_m = {k: StreamingMean() for k in ("clean", *KINDS)}
    kl_m = {k: StreamingMean() for k in ("sae", "zero")}
    ce_m["clean"].add(ce_per_token(logp, ids, ce))
    for kind, key in KINDS.items():
        logq = log_softmax_(_t(LM[key]))
        ce_m[kind].add(ce_per_token(logq, ids, ce))
        if kind in kl_m:
            kl_m[kind].add(kl_per_token(logp, logq, tok))
    c0, cs, cz, cm = (ce_m[k].mean for k in ("clean", "sae", "zero", "mean"))
    assert c0 == pytest.approx(LM["ce_loss_without_sae"], rel=1e-6)
    assert cs == pytest.approx(LM["ce_loss_with_sae"], rel=1e-6)
    assert cz == pytest.approx(LM["ce_loss_with_ablation"], rel=1e-6)
    assert cm == pytest.approx(LM["ce_loss_with_mean_ablation"], rel=1e-6)
    assert ce_loss_score(c0, cs, cz) == pytest.approx(LM["ce_loss_score"], rel=1e-6)
    assert ce_loss_score(c0, cs, cm) == pytest.approx(LM["ce_loss_score_mean_ablation"], rel=1e-6)
    ks, kz = kl_m["sae"].mean, kl_m["zero"].mean
    assert ks == pytest.approx(LM["kl_div_with_sae"], rel=1e-5)
    assert kz == pytest.approx(LM["kl_div_with_ablation"], rel=1e-5)
    assert kl_div_score(ks, kz) == pytest.approx(LM["kl_div_score"], rel=1e-5)
    assert ce_m["clean"].count == 2 and kl_m["sae"].count == 4


def test_log_softmax_is_in_place_for_float32_and_casts_other_dtypes() -> None:
    lg = torch.randn(2, 3, 5)
    assert log_softmax_(lg) is lg
    torch.testing.assert_close(lg.exp().sum(-1), torch.ones(2, 3))
    half = torch.randn(2, 3, 5, dtype=torch.bfloat16)
    out = log_softmax_(half)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.log_softmax(half.float(), -1))


def test_streaming_mean_of_nothing_is_nan() -> None:
    assert math.isnan(StreamingMean().mean)


@st.composite
def _lm_cases(draw: Any) -> tuple[Any, ...]:
    b = draw(st.integers(1, 4))
    t = draw(st.integers(2, 7))
    v = draw(st.integers(2, 9))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, v, (b, t), generator=g)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    am = (torch.arange(t)[None, :] < lengths[:, None]).long()
    ids[:, 0] = v - 1  # a BOS-like special first token, as prepend_bos gives
    special = {v - 1} if draw(st.booleans()) else {v - 1, 0}
    logits = {k: 3 * torch.randn(b, t, v, generator=g) for k in ("clean", "sae", "zero")}
    split = draw(st.integers(1, b))
    return ids, am, special, logits, split


@given(_lm_cases())
def test_streamed_batches_agree_with_a_plain_loop(case: tuple[Any, ...]) -> None:
    ids, am, special, logits, split = case
    want = oracle_lm(ids, am, special, logits["clean"], {"sae": logits["sae"]})
    ce_m = {k: StreamingMean() for k in ("clean", "sae")}
    kl_m = StreamingMean()
    # the rows in two batches (streamed sums), reduced as evaluate does
    for rows in (slice(0, split), slice(split, None)):
        i, m = ids[rows], am[rows]
        if i.shape[0] == 0:
            continue
        tok, ce = position_masks(i, m, special)
        logp = log_softmax_(logits["clean"][rows].clone())
        logq = log_softmax_(logits["sae"][rows].clone())
        ce_m["clean"].add(ce_per_token(logp, i, ce))
        ce_m["sae"].add(ce_per_token(logq, i, ce))
        kl_m.add(kl_per_token(logp, logq, tok))
    assert kl_m.count == len(want["tok_pos"]) and ce_m["clean"].count == len(want["ce_pos"])
    for k in ("clean", "sae"):
        got, exp = ce_m[k].mean, want["ce"][k]
        assert (math.isnan(got) and math.isnan(exp)) or got == pytest.approx(
            exp, rel=1e-5, abs=1e-6
        )
    if kl_m.count:
        assert kl_m.mean == pytest.approx(want["kl"]["sae"], rel=1e-4, abs=1e-6)


# ---------------------------------------------------------------- SAE stats
def _sae_stats(dense: float = 0.1) -> Any:
    s = SAEStatistics(2, 3)
    s.update(np.array(SM["x"]), np.array(SM["x_hat"]), np.array(SM["acts"]))
    return s.finish(dense)


def test_sae_statistics_match_the_reference() -> None:
    m = _sae_stats()
    for k in ("mse", "mse_per_dim", "fvu", "explained_variance", "cossim", "l0", "l1"):
        assert getattr(m, k) == pytest.approx(SM[k], rel=1e-12), k
    np.testing.assert_array_equal(m.feature_frequency, SM["feature_frequency"])
    assert m.n_dead == SM["n_dead"] and m.dead_ids.tolist() == SM["dead_ids"]
    assert m.n_dense == SM["n_dense_threshold_0.1"]
    assert _sae_stats(0.5).n_dense == SM["n_dense_threshold_0.5"]
    assert m.frac_alive == pytest.approx(SM["frac_alive"])
    # the conventional formula, not SAELens 6.18's
    assert m.explained_variance != pytest.approx(SM["explained_variance_saelens_6_18_formula"])


def test_sae_statistics_stream_over_batches_like_one_batch() -> None:
    s = SAEStatistics(2, 3)
    x, xh, a = (torch.tensor(SM[k]) for k in ("x", "x_hat", "acts"))
    for rows in (slice(0, 1), slice(1, 1), slice(1, 4)):
        s.update(x[rows], xh[rows], a[rows])
    m = s.finish()
    assert m.n_tokens == 4
    assert m.fvu == pytest.approx(SM["fvu"], rel=1e-12)
    assert m.cossim == pytest.approx(SM["cossim"], rel=1e-12)


@given(
    st.integers(1, 40),
    st.integers(1, 6),
    st.integers(1, 9),
    st.integers(0, 2**31 - 1),
    st.integers(1, 5),
)
def test_sae_statistics_agree_with_the_textbook_oracle(
    n: int, d: int, d_sae: int, seed: int, n_batches: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * 3 + 1
    x_hat = x + 0.5 * torch.randn(n, d, generator=g)
    acts = torch.relu(torch.randn(n, d_sae, generator=g))
    s = SAEStatistics(d, d_sae)
    for chunk in torch.arange(n).tensor_split(n_batches):
        s.update(x[chunk], x_hat[chunk], acts[chunk])
    m = s.finish()
    want = oracle_sae(x, x_hat, acts)
    for k in ("mse", "cossim", "l0"):
        assert getattr(m, k) == pytest.approx(want[k], rel=1e-9, abs=1e-12), k
    assert m.l1 == pytest.approx(want["l1"], rel=1e-6)  # per-token sums are float32
    if n > 1:
        assert m.fvu == pytest.approx(want["fvu"], rel=1e-6)
    np.testing.assert_allclose(m.feature_frequency, want["feature_frequency"], rtol=1e-12)
    # the identities the real tier relies on
    assert m.feature_frequency.sum() == pytest.approx(m.l0, rel=1e-12)
    if math.isfinite(m.fvu):
        assert m.fvu + m.explained_variance == pytest.approx(1.0, abs=1e-12)


def test_exact_reconstruction_has_ev_one_and_cosine_one() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    s = SAEStatistics(2, 1)
    s.update(x, x, torch.ones(3, 1))
    m = s.finish()
    assert m.mse == 0 and m.fvu == 0 and m.explained_variance == 1
    assert m.cossim == pytest.approx(1.0)


def test_constant_activations_have_undefined_fvu() -> None:
    # Σ‖x − x̄‖² = 0: FVU and EV are NaN, never inf
    x = torch.ones(3, 2)
    s = SAEStatistics(2, 1)
    s.update(x, x * 0.5, torch.zeros(3, 1))
    m = s.finish()
    assert math.isnan(m.fvu) and math.isnan(m.explained_variance)
    assert m.n_dead == 1 and m.frac_alive == 0


def test_zero_vectors_have_cosine_zero() -> None:
    s = SAEStatistics(2, 1)
    s.update(torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.zeros(2, 1))
    assert s.finish().cossim == 0


def test_sae_statistics_refuse_bad_shapes_and_no_tokens() -> None:
    s = SAEStatistics(2, 3)
    with pytest.raises(EvalError, match=r"expected \(1, 2\) twice and \(1, 3\)"):
        s.update(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 4)))
    with pytest.raises(EvalError, match="N = 0"):
        s.finish()


# ------------------------------------------------------------------- ratios
@pytest.mark.parametrize("den", [0.0, 1e-12, -1e-12, 5e-13])
def test_a_denominator_within_1e_12_of_zero_is_nan(den: float) -> None:
    assert math.isnan(ratio(1.0, den))


def test_ratio_of_non_finite_values_is_nan() -> None:
    assert math.isnan(ratio(math.inf, 1.0)) and math.isnan(ratio(1.0, math.nan))
    assert ratio(1.0, 2e-12) == pytest.approx(5e11)


def test_scores_are_one_when_splicing_costs_nothing() -> None:
    assert ce_loss_score(2.0, 2.0, 5.0) == 1.0
    assert kl_div_score(0.0, 0.3) == 1.0
    assert math.isnan(ce_loss_score(2.0, 2.5, 2.0))
    assert math.isnan(kl_div_score(0.0, 0.0))
