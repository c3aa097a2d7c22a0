"""The forwards of an evaluation (spec 16 §5.3), batch by batch.

An :class:`EvalSession` holds one tokenised prompt set on one model and hook.
Its first :meth:`~EvalSession.run` also computes the *references* — the clean
CE, the zero-ablated CE and KL, and (optionally, in a second sweep) the
mean-ablated CE — reduced to float64 sums, so later runs (the epoch's
candidates, the before/after pair of the loop) cost one spliced forward per
batch per SAE (plus the clean forward when KL is wanted, or when the hooked
activations were not cached).

Per batch: **clean** (logits ``L⁰`` and a float32 capture ``x`` at the hook),
**zero-ablated** (0 at every position, BOS included), then per SAE
**spliced** (``x̂`` at ``P_tok``, ``x`` kept at special and pad positions, or
every real position with ``splice_special``).  The clean log-probabilities and
one other logits tensor are the only ``[B, T, vocab]`` tensors alive.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from polygram._progress import get_logger, progress
from polygram.errors import EvalError, PolygramSmallSampleWarning
from polygram.evals.lm_metrics import StreamingMean, ce_per_token, kl_per_token, log_softmax_
from polygram.evals.options import EvalOptions
from polygram.evals.result import EvalResult
from polygram.evals.sae_metrics import SAEStatistics
from polygram.evals.scores import ce_loss_score, kl_div_score
from polygram.evals.setup import EvalSetup

if TYPE_CHECKING:
    import torch

    from polygram.runtime import Batch
    from polygram.sae import SAE

__all__ = ["MIN_TOKENS", "EvalSession"]

#: Fewer evaluated tokens than this draw a PolygramSmallSampleWarning.
MIN_TOKENS = 512

_log = get_logger("evals")


@dataclass
class _References:
    """The model-only sums every SAE of the session is scored against."""

    ce_clean: StreamingMean
    ce_zero: StreamingMean
    kl_zero: StreamingMean
    ce_mean: StreamingMean | None
    n_tokens: int
    batches: list[tuple[int, ...]]


def _hooked_width(config: Any) -> int | None:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("hidden_size", "n_embd", "d_model"):
        value = getattr(text, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class EvalSession:
    """Evaluate SAEs on ``prompts`` with ``setup`` (see :func:`resolve_setup`).

    ``cache_activations=True`` keeps the hooked activations at the splice
    positions (float32, on the model's device) after the first run, so a later
    run without KL needs no clean forward (the epoch's CE-score bound)."""

    def __init__(
        self,
        setup: EvalSetup,
        prompts: Sequence[str],
        options: EvalOptions,
        *,
        cache_activations: bool = False,
        progress: bool | None = False,
    ) -> None:
        from polygram.runtime import special_ids, tokenize_prompts

        self.setup, self.options, self.progress = setup, options, progress
        self.model = setup.model
        self.tokens = tokenize_prompts(
            self.model.tokenizer,
            prompts,
            prepend_bos=setup.prepend_bos,
            context_size=setup.context_size,
            packing=options.packing,
        )
        self.special = special_ids(self.model.tokenizer)
        self.causal = not self.model.masked_lm
        self.cache_activations = cache_activations
        self._refs: _References | None = None
        self._acts: list[torch.Tensor] | None = None
        self._width = _hooked_width(self.model.config)

    # ----------------------------------------------------------------- API
    def check_widths(self, saes: Sequence[SAE]) -> None:
        """``ValueError`` unless every SAE's ``d_in`` is the hooked width (from
        the model config before any forward; the capture confirms it)."""
        for sae in saes:
            if self._width is not None and sae.d_in != self._width:
                self._width_error(sae, self._width)

    def run(self, saes: Sequence[SAE], *, kl: bool = True) -> list[EvalResult]:
        """One :class:`EvalResult` per SAE.  ``kl=False`` skips KL (its fields
        are None) and, with cached activations, the clean forward."""
        import torch

        self.check_widths(saes)
        settings = [self.setup.settings_for(s) for s in saes]
        t0 = time.perf_counter()
        first = self._refs is None
        if not kl and not self.causal:
            raise EvalError("evaluate: a masked LM has no CE; kl=False would measure nothing")
        need_clean = first or kl or self._acts is None
        stats = [SAEStatistics(s.d_in, s.d_sae) for s in saes]
        ce_s = [StreamingMean() for _ in saes]
        kl_s = [StreamingMean() for _ in saes]
        refs = self._refs or _References(
            StreamingMean(), StreamingMean(), StreamingMean(), None, 0, []
        )
        acts: list[torch.Tensor] = []
        with torch.no_grad():
            for i, batch in enumerate(self._batches()):
                tok = batch.token_mask(self.special)
                ce = batch.ce_mask(self.special) if self.causal else torch.zeros_like(tok)
                splice = batch.mask if self.options.splice_special else tok
                logp0 = None
                if need_clean:
                    logp0, x = self._clean(batch, saes)
                    xs = x[splice]
                    if first:
                        refs.ce_clean.add(ce_per_token(logp0, batch.input_ids, ce))
                        self._zero(batch, logp0, tok, ce, refs)
                        if self.cache_activations:
                            acts.append(xs)
                    del x
                else:
                    assert self._acts is not None
                    xs = self._acts[i]
                tok_in_splice = tok[splice]
                for j, sae in enumerate(saes):
                    x_hat = self._sae_pass(sae, xs, tok_in_splice, stats[j])
                    logq = self._spliced(batch, splice, x_hat)
                    ce_s[j].add(ce_per_token(logq, batch.input_ids, ce))
                    if kl:
                        assert logp0 is not None
                        kl_s[j].add(kl_per_token(logp0, logq, tok))
                    del logq
                del logp0
                if first:
                    refs.n_tokens += int(tok.sum())
                    refs.batches.append(batch.rows)
                    if self._max_reached(refs.n_tokens):
                        break
        if first:
            self._check_tokens(refs.n_tokens)
            if self.options.mean_ablation and self.causal:
                # μ over P_tok of the clean capture (every SAE saw the same x)
                mu = torch.from_numpy(stats[0].sum_x / refs.n_tokens).to(torch.float32)
                refs.ce_mean = self._mean_sweep(refs, mu)
            self._refs = refs
            if self.cache_activations:
                self._acts = acts
        wall = time.perf_counter() - t0
        return [
            self._result(sae, settings[j], stats[j], ce_s[j], kl_s[j] if kl else None, wall)
            for j, sae in enumerate(saes)
        ]

    # ------------------------------------------------------------ forwards
    def _batches(self) -> Iterator[Batch]:
        from polygram.runtime import iter_batches, make_batch

        it: Iterator[Batch]
        if self._refs is not None:
            it = (make_batch(self.tokens, rows, self.model.device) for rows in self._refs.batches)
            total = len(self._refs.batches)
        else:
            it = iter_batches(
                self.tokens, batch_size=self.options.batch_size, device=self.model.device
            )
            total = -(-len(self.tokens) // self.options.batch_size)
        return progress(it, desc="evaluate", total=total, enabled=self.progress, unit="batch")

    def _clean(self, batch: Batch, saes: Sequence[SAE]) -> tuple[Any, Any]:
        from polygram.runtime import capture, forward

        with capture(self.model, self.setup.hook) as cap:
            logits = forward(self.model, batch)
            x = cap.take()
        for sae in saes:
            if x.shape[-1] != sae.d_in:
                self._width_error(sae, int(x.shape[-1]))
        return log_softmax_(logits), x

    def _forward_with(self, batch: Batch, edit: Any) -> Any:
        from polygram.runtime import forward, replace

        with replace(self.model, self.setup.hook, edit):
            return log_softmax_(forward(self.model, batch))

    def _zero(self, batch: Batch, logp0: Any, tok: Any, ce: Any, refs: _References) -> None:
        import torch

        logq = self._forward_with(batch, torch.zeros_like)
        refs.ce_zero.add(ce_per_token(logq, batch.input_ids, ce))
        refs.kl_zero.add(kl_per_token(logp0, logq, tok))

    def _spliced(self, batch: Batch, splice: Any, x_hat: Any) -> Any:
        def edit(h: Any) -> Any:
            h[splice] = x_hat
            return h

        return self._forward_with(batch, edit)

    def _mean_sweep(self, refs: _References, mu: Any) -> StreamingMean:
        """The second sweep: ``μ`` at every position; CE only."""
        from polygram.runtime import make_batch

        mean = StreamingMean()
        mu = mu.to(self.model.device)

        def edit(h: Any) -> Any:
            h[...] = mu
            return h

        for rows in progress(
            refs.batches, desc="evaluate (mean ablation)", enabled=self.progress, unit="batch"
        ):
            batch = make_batch(self.tokens, rows, self.model.device)
            ce = batch.ce_mask(self.special)
            logq = self._forward_with(batch, edit)
            mean.add(ce_per_token(logq, batch.input_ids, ce))
            del logq
        return mean

    @staticmethod
    def _sae_pass(sae: SAE, xs: Any, tok: Any, stats: SAEStatistics) -> Any:
        """``x̂`` of the splice positions, chunked; statistics over ``P_tok``."""
        import torch

        from polygram.sae import forward as saef

        out = torch.empty_like(xs)
        step = saef.chunk_tokens(sae.d_sae)
        for s in range(0, xs.shape[0], step):
            xc = xs[s : s + step]
            f = saef.encode(sae, xc)
            xh = saef.decode(sae, f, xc)
            m = tok[s : s + step]
            stats.update(xc[m], xh[m], f[m])
            out[s : s + step] = xh
        return out

    # -------------------------------------------------------------- checks
    def _width_error(self, sae: SAE, width: int) -> None:
        raise ValueError(
            f"evaluate: the SAE {sae.source.display} has d_in={sae.d_in} but the hooked tensor "
            f"{self.setup.hook.name} of model {self.model.name!r} has width {width}"
        )

    def _max_reached(self, n: int) -> bool:
        return self.options.max_tokens is not None and n >= self.options.max_tokens

    def _check_tokens(self, n: int) -> None:
        if n == 0:
            raise EvalError(
                f"evaluate: no evaluated token (N = 0) in {self.tokens.n_prompts} prompts: every "
                f"real token is special (special ids {sorted(self.special)})"
            )
        if n < MIN_TOKENS:
            warnings.warn(
                f"evaluate: only {n} evaluated tokens (fewer than {MIN_TOKENS}); the metrics "
                "are noisy (>= 2,000 recommended)",
                PolygramSmallSampleWarning,
                stacklevel=4,
            )

    # -------------------------------------------------------------- result
    def _result(
        self,
        sae: SAE,
        settings: Any,
        stats: SAEStatistics,
        ce_s: StreamingMean,
        kl_s: StreamingMean | None,
        wall: float,
    ) -> EvalResult:
        from polygram.sae import forward as saef

        refs = self._refs
        assert refs is not None
        m = stats.finish(self.options.dense_threshold)
        c0, cz, cs = refs.ce_clean.mean, refs.ce_zero.mean, ce_s.mean
        cm = refs.ce_mean.mean if refs.ce_mean is not None else None
        kz = refs.kl_zero.mean
        ks = kl_s.mean if kl_s is not None else None
        causal = self.causal
        hook = self.setup.hook
        _log.info("evaluated %s: %d tokens, %.1f s", sae.source.display, m.n_tokens, wall)
        return EvalResult(
            sae_source=sae.source.display,
            sae_sha256=sae.source_sha256(),
            architecture=sae.architecture,
            model_name=self.model.name,
            hook_name=hook.name,
            layer=hook.layer,
            hook_kind=hook.kind,
            dtype=self.model.dtype,
            device=self.model.device,
            sae_compute_dtype=saef.COMPUTE_DTYPE,
            batch_size=self.options.batch_size,
            context_size=self.setup.context_size,
            prepend_bos=self.setup.prepend_bos,
            packing=self.options.packing,
            splice_special=self.options.splice_special,
            n_prompts=self.tokens.n_prompts,
            n_truncated_prompts=self.tokens.n_truncated_prompts,
            n_tokens=m.n_tokens,
            n_ce_tokens=refs.ce_clean.count,
            ce_loss_without_sae=c0 if causal else None,
            ce_loss_with_sae=cs if causal else None,
            ce_loss_with_ablation=cz if causal else None,
            ce_loss_score=ce_loss_score(c0, cs, cz) if causal else None,
            ce_loss_with_mean_ablation=cm if causal else None,
            ce_loss_score_mean_ablation=(
                ce_loss_score(c0, cs, cm) if causal and cm is not None else None
            ),
            kl_div_with_sae=ks,
            kl_div_with_ablation=kz,
            kl_div_score=kl_div_score(ks, kz) if ks is not None else None,
            mse=m.mse,
            mse_per_dim=m.mse_per_dim,
            fvu=m.fvu,
            explained_variance=m.explained_variance,
            cossim=m.cossim,
            l0=m.l0,
            l1=m.l1,
            n_dead=m.n_dead,
            n_dense=m.n_dense,
            dense_threshold=m.dense_threshold,
            frac_alive=m.frac_alive,
            wall_seconds=wall if math.isfinite(wall) else 0.0,
            sae_settings=settings.to_dict(),
            feature_frequency=np.asarray(m.feature_frequency, dtype=np.float64),
        )
