"""validate() end to end on a tiny random GPT-2, against an independent
recomputation: residuals from ``output_hidden_states``, activations in
numpy, ablation applied by a forward hook on the *previous* block's output
(not the validator's pre-hook), KL by ``torch.nn.functional.kl_div``, one
unpadded prompt at a time (the validator batches 8 prompts per forward)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from behavioural.beh_helpers import PANEL, PROMPTS, panel_dictionary, write_sae
from polygram.behavioural import BehaviouralValidator, ValidationReport, sweeps
from polygram.behavioural.stats import summarise
from polygram.runtime import HookPoint, capture_activations, clear_model_cache, get_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.torch

LAYER = 2
MIN_BOTH = 2


class Run:
    """One validator run plus everything the oracle needs."""

    def __init__(self, model_dir: Path, tmp: Path) -> None:
        self.model_dir = model_dir
        self.ckpt = tmp / "sae.safetensors"
        self.sae = write_sae(self.ckpt)
        self.validator = BehaviouralValidator(
            panel_dictionary(self.ckpt),
            self.ckpt,
            PANEL,
            PROMPTS,
            layer=LAYER,
            model_name=str(model_dir),
            min_both_fire=MIN_BOTH,
            device="cpu",
        )
        self.forwards = 0
        self.loads = 0
        self.sweeps: list[int] = []
        self._handles: list[Any] = []
        self.report = self._run(self.validator)
        self.report_again = self._run(self.validator)  # the cached model: no second load
        for h in self._handles:
            h.remove()

    def _run(self, validator: BehaviouralValidator) -> ValidationReport:
        orig_load = transformers.AutoModelForCausalLM.from_pretrained
        orig_sweep = sweeps._sweep

        def counting_load(*a: Any, **k: Any) -> Any:
            model = orig_load(*a, **k)
            self.loads += 1

            def count(*_: Any) -> None:
                self.forwards += 1

            self._handles.append(model.register_forward_pre_hook(count))
            return model

        def counting_sweep(
            lm: Any, ablate: Any, tokens: Any, prompts: Any, k: int, *rest: Any
        ) -> Any:
            self.sweeps.append(k)
            return orig_sweep(lm, ablate, tokens, prompts, k, *rest)

        if not self.loads:
            clear_model_cache()  # so the first run loads (and counts) the model
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(transformers.AutoModelForCausalLM, "from_pretrained", counting_load)
            mp.setattr(sweeps, "_sweep", counting_sweep)
            with pytest.warns(RuntimeWarning, match=r"feature 5 fires on 0 of the \d+ tokens"):
                report = validator.run()
        return report


def quiet(v: BehaviouralValidator, **kw: Any) -> BehaviouralValidator:
    """``v`` without the firing-rate warning (feature 5 never fires) and progress."""
    return replace(v, min_firing_rate=0.0, progress=False, **kw)


@pytest.fixture(scope="module")
def run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(tiny_model_dir, tmp_path_factory.mktemp("validate"))


class Oracle:
    """Independent recomputation of activations and ablation KL."""

    def __init__(self, r: Run) -> None:
        tok = transformers.AutoTokenizer.from_pretrained(r.model_dir)
        model = transformers.AutoModelForCausalLM.from_pretrained(r.model_dir).eval()
        w_enc, b_enc = r.sae["W_enc"], r.sae["b_enc"]
        w_dec, b_dec = r.sae["W_dec"], r.sae["b_dec"]
        self.acts: dict[int, list[np.ndarray]] = {f: [] for f in PANEL}
        self.kl: dict[int, list[np.ndarray]] = {f: [] for f in PANEL}
        self.prompts_firing = {f: 0 for f in PANEL}
        with torch.no_grad():
            for text in PROMPTS:
                ids = tok(text, return_tensors="pt")["input_ids"]
                out = model(ids, output_hidden_states=True)
                x = out.hidden_states[LAYER][0].numpy()  # input of block LAYER
                base = torch.log_softmax(out.logits[0].double(), dim=-1)
                for f in PANEL:
                    a = np.maximum(0.0, (x - b_dec) @ w_enc[:, f] + b_enc[f]).astype(np.float32)
                    self.acts[f].append(a)
                    kl = np.zeros(len(a))
                    fire = np.flatnonzero(a > 0)
                    if fire.size:
                        self.prompts_firing[f] += 1
                        delta = torch.from_numpy(np.outer(a[fire], w_dec[f]))
                        kl[fire] = self._ablated_kl(model, ids, fire, delta, base)
                    self.kl[f].append(kl)

    @staticmethod
    def _ablated_kl(model: Any, ids: Any, fire: np.ndarray, delta: Any, base: Any) -> np.ndarray:
        def edit(_m: Any, _inp: Any, output: Any) -> Any:
            h = output[0] if isinstance(output, tuple) else output
            h = h.clone()
            h[0, torch.from_numpy(fire)] -= delta.to(h.dtype)
            return (h, *output[1:]) if isinstance(output, tuple) else h

        handle = model.transformer.h[LAYER - 1].register_forward_hook(edit)
        try:
            logits = model(ids).logits[0].double()
        finally:
            handle.remove()
        log_q = torch.log_softmax(logits[fire], dim=-1)
        log_p = base[fire]
        kl = torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="none")
        return np.asarray(kl.sum(-1).clamp_min(0).numpy())

    def act(self, f: int) -> np.ndarray:
        return np.concatenate(self.acts[f])

    def kls(self, f: int) -> np.ndarray:
        return np.concatenate(self.kl[f])


@pytest.fixture(scope="module")
def oracle(run: Run) -> Oracle:
    return Oracle(run)


def test_forward_budget(run: Run, oracle: Oracle) -> None:
    # one sweep per feature, never one per pair (two runs)
    assert run.sweeps == list(range(len(PANEL))) * 2
    # one model load for both runs; per run: ⌈P/8⌉ baseline forwards and ⌈P_k/8⌉ per
    # sweep, where P_k counts the prompts where feature k fires
    assert run.loads == 1
    per_run = math.ceil(len(PROMPTS) / 8) + sum(
        math.ceil(n / 8) for n in oracle.prompts_firing.values()
    )
    assert run.forwards == 2 * per_run
    assert oracle.prompts_firing[5] == 0  # feature 5 never fires: no forward for it
    assert run.report_again == run.report


def test_batch_size_1_runs_the_old_budget_and_agrees(run: Run, oracle: Oracle) -> None:
    """batch_size=1 is 0.0.1's loop (one forward per prompt and per firing
    prompt); its report agrees with the batched one to float precision."""
    v = quiet(run.validator, batch_size=1)
    model = get_model(str(run.model_dir), "cpu").model
    count: list[int] = []
    handle = model.register_forward_pre_hook(lambda *_: count.append(1))
    try:
        rep = v.run()
    finally:
        handle.remove()
    assert len(count) == len(PROMPTS) + sum(oracle.prompts_firing.values())
    assert rep.n_tokens == run.report.n_tokens
    for one, eight in zip(rep.pairs, run.report.pairs, strict=True):
        assert (one.i, one.j, one.n_both_fire, one.n_either_fire) == (
            eight.i, eight.j, eight.n_both_fire, eight.n_either_fire,
        )  # fmt: skip
        for name in ("jaccard", "kl_ablate_i", "kl_ablate_j", "pearson_activation"):
            a, b = getattr(one, name), getattr(eight, name)
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-4, abs=1e-7)


def test_report_metadata(run: Run) -> None:
    r = run.report
    assert r.schema_version == 2 and r.n_clusters == 2
    assert r.sae_settings is not None
    assert r.sae_settings["hook_name"] == {
        "value": f"blocks.{LAYER}.hook_resid_pre",
        "source": "explicit",
    }
    assert r.sae_settings["architecture"] == {"value": "standard", "source": "inferred"}
    assert r.dictionary_name == "ImportedSAE"
    assert r.model_name == str(run.model_dir)
    assert r.layer == LAYER and r.n_prompts == len(PROMPTS)
    tok = transformers.AutoTokenizer.from_pretrained(run.model_dir)
    assert r.n_tokens == sum(len(tok(p)["input_ids"]) for p in PROMPTS)
    assert r.feature_ids == tuple(PANEL)
    assert (r.polygram_overlap_threshold, r.jaccard_threshold, r.min_firing_rate) == (
        0.7,
        0.3,
        0.01,
    )
    assert r.min_both_fire == MIN_BOTH
    # pairs keep predict()'s order; confirmed is the gate-passing subset in that order
    assert [(p.i, p.j) for p in r.pairs] == [
        (PANEL[a], PANEL[b]) for a in range(4) for b in range(a + 1, 4)
    ]
    assert r.confirmed == tuple((p.i, p.j) for p in r.pairs if p.gate_pass)
    assert r.summary == summarise(r.pairs)


def test_counts_and_correlations_match_brute_force(run: Run, oracle: Oracle) -> None:
    for p in run.report.pairs:
        ai, aj = oracle.act(p.i), oracle.act(p.j)
        fi, fj = ai > 0, aj > 0
        assert p.n_fires_i == fi.sum() and p.n_fires_j == fj.sum()
        assert p.n_both_fire == (fi & fj).sum() and p.n_either_fire == (fi | fj).sum()
        assert p.jaccard == pytest.approx((fi & fj).sum() / max((fi | fj).sum(), 1), abs=0)
        if ai.std() > 0 and aj.std() > 0:
            assert p.pearson_activation == pytest.approx(np.corrcoef(ai, aj)[0, 1], abs=1e-5)
        else:
            assert math.isnan(p.pearson_activation)


def test_kl_matches_manual_ablation(run: Run, oracle: Oracle) -> None:
    some_kl = False
    for p in run.report.pairs:
        fi, fj = oracle.act(p.i) > 0, oracle.act(p.j) > 0
        ki, kj = oracle.kls(p.i), oracle.kls(p.j)
        for fire, k, got in ((fi, ki, p.kl_ablate_i), (fj, kj, p.kl_ablate_j)):
            if fire.any():
                assert got == pytest.approx(k[fire].mean(), rel=1e-3, abs=1e-7)
                some_kl = some_kl or got > 0
            else:
                assert math.isnan(got)
        both = fi & fj
        if both.sum() >= MIN_BOTH and ki[both].mean() > 0 and kj[both].mean() > 0:
            ratio = ki[both].mean() / kj[both].mean()
            assert p.kl_ratio_paired == pytest.approx(ratio, rel=2e-3)
            assert p.kl_log_ratio_abs == pytest.approx(abs(math.log(ratio)), abs=2e-3)
        else:
            assert math.isnan(p.kl_ratio_paired) and math.isnan(p.kl_log_ratio_abs)
    assert some_kl


def test_gate(run: Run) -> None:
    v = run.validator
    for p in run.report.pairs:
        want = (
            p.polygram_overlap >= v.polygram_overlap_threshold
            and p.jaccard >= v.jaccard_threshold
            and p.n_both_fire >= v.min_both_fire
        )
        assert p.gate_pass is want
    assert any(p.gate_pass for p in run.report.pairs)
    assert not all(p.gate_pass for p in run.report.pairs)


def test_report_files(run: Run, tmp_path: Path) -> None:
    r = run.report
    once = ValidationReport.from_json(r.to_json(tmp_path / "r.json"))
    assert ValidationReport.from_json(tmp_path / "r.json") == once
    assert ValidationReport.from_json(once.to_json()) == once
    lines = r.to_csv(tmp_path / "r.csv").read_bytes().split(b"\r\n")
    assert len(lines) == 1 + len(r.pairs) + 1


def test_hand_edited_candidates(run: Run) -> None:
    v = quiet(run.validator)
    pairs = v.predict()
    # aggregated exactly as given: a raised polygram overlap opens the gate
    by_ij = {(p.i, p.j): p for p in run.report.pairs}
    target = max(run.report.pairs, key=lambda p: p.jaccard)
    edited = replace(
        next(c for c in pairs if (c.i, c.j) == (target.i, target.j)), polygram_overlap=0.99
    )
    rep = v.validate([edited])
    assert len(rep.pairs) == 1
    got = rep.pairs[0]
    assert got.polygram_overlap == 0.99
    assert got.jaccard == by_ij[(target.i, target.j)].jaccard
    assert got.gate_pass is (got.jaccard >= 0.3 and got.n_both_fire >= MIN_BOTH)
    assert rep.summary.outcome == "undefined"  # one pair: no Spearman
    with pytest.raises(ValueError, match="not in the validator's feature_ids"):
        v.validate([replace(edited, j=13)])
    with pytest.raises(TypeError, match="CandidatePair"):
        v.validate([(11, 2)])  # type: ignore[list-item]


def test_layer_out_of_range(run: Run) -> None:
    v = quiet(run.validator, layer=4)
    with pytest.raises(IndexError, match="out of range"):
        v.validate(v.predict())


def test_layer_zero_allowed_runs(run: Run) -> None:
    with pytest.warns(RuntimeWarning, match="structural dead zone"):
        v = quiet(run.validator, layer=0, allow_layer_zero=True)
    rep = v.run()
    assert rep.layer == 0 and len(rep.pairs) == 6


def test_d_model_mismatch(run: Run, tmp_path: Path) -> None:
    ckpt = tmp_path / "narrow.safetensors"
    write_sae(ckpt, d_model=16)
    v = BehaviouralValidator(
        panel_dictionary(ckpt), ckpt, PANEL, ["hello"], layer=1, model_name=str(run.model_dir),
        device="cpu",
    )  # fmt: skip
    with pytest.raises(ValueError, match="d_model 16 does not match"):
        v.run()


def test_feature_id_out_of_checkpoint_range(run: Run, tmp_path: Path) -> None:
    v = quiet(run.validator)
    v.feature_ids = [11, 2, 7, 99]
    cands = [replace(c, j=99) if c.j == 5 else c for c in run.report.pairs]
    with pytest.raises(ValueError, match=r"\[99\] out of range"):
        v.validate(cands)


def test_capture_activations_matches_hidden_states(run: Run, oracle: Oracle) -> None:
    x = capture_activations(get_model(str(run.model_dir), "cpu"), HookPoint(LAYER), PROMPTS)
    tok = transformers.AutoTokenizer.from_pretrained(run.model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(run.model_dir).eval()
    with torch.no_grad():
        want = np.concatenate(
            [
                model(tok(p, return_tensors="pt")["input_ids"], output_hidden_states=True)
                .hidden_states[LAYER][0]
                .numpy()
                for p in PROMPTS
            ]
        )
    assert x.dtype == np.float32 and x.shape == want.shape
    np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-6)
