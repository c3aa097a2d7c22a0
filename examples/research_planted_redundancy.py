"""Research walk: does the compression loop recover *planted* redundancy?

Offline and deterministic: a tiny random GPT-2 (n_embd=32, 4 layers, a
byte-level BPE trained on a few lines — the tests' model) is built in a
temporary directory, the residual stream entering block ``layer`` is
captured for a few dozen seeded word-salad prompts, and a synthetic ReLU SAE
(SAELens layout, ``d_model = 32``) is written whose features are

* ``n_pairs`` *planted pairs* ``(a, b)``: ``b``'s direction is ``a``'s plus a
  random unit vector times ``noise``, renormalised (decoder cosine
  ``≈ 1/√(1+noise²)``), and
* independent random unit directions for the rest,

with tied encoder columns and decoder rows (one global decoder scale fitted
by least squares), ``b_dec`` the mean residual and each ``b_enc`` the
negated ``1 − firing_rate`` quantile of the feature's centred projection, so
every feature fires on ``firing_rate`` of the tokens. For every ``noise`` of
the sweep it runs

(a) ``BehaviouralValidator`` on ``n_panels`` 8-feature panels (two planted
    pairs + four independent features each): precision and recall of
    ``confirmed`` against the planted pairs, and the panels' Spearman of
    polygram overlap vs Jaccard;
(b) ``Compressor`` on each panel's report, chained on one checkpoint: planted
    duplicates zeroed, independent features wrongly zeroed;
(c) ``EpochCompressor`` over the whole SAE with ``cached_residuals``: the
    same counts at SAE scale;
(d) ``Regrower`` (``residual_kmeans``) on the slots the epoch zeroed: the
    fraction of residual variance the SAE explains, source → epoch → regrown.

    polygram run examples/research_planted_redundancy.py --output-dir results/planted

Writes ``planted.csv`` (one row per noise level), ``planted.json`` (settings
and rows) and ``planted.png``. Gate thresholds are the library defaults
(polygram ≥ 0.7, Jaccard ≥ 0.30, ≥ 5 both-fire tokens).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from polygram import (
    BehaviouralValidator,
    Compressor,
    EpochCompressor,
    Regrower,
    ValidationReport,
    from_sae_lens,
    load_sae_safetensors,
)
from polygram._io import atomic_write_text
from polygram.plotting import pyplot, save_figure
from polygram.runtime import HookPoint, capture_activations, get_model
from polygram.sae.checkpoint import write_sae_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_gpt2 import CORPUS, D_MODEL, build_tiny_gpt2

NOISE_LEVELS = (0.1, 0.5, 1.0, 2.0, 4.0)
WORDS = sorted({w.strip(".").lower() for line in CORPUS for w in line.split()})
COLUMNS = [
    "noise",
    "planted_cosine",
    "panel_planted_pairs",
    "panel_other_pairs",
    "confirmed_planted",
    "confirmed_other",
    "precision",
    "recall",
    "spearman_polygram_jaccard",
    "jaccard_planted_mean",
    "jaccard_other_max",
    "polygram_planted_mean",
    "polygram_other_mean",
    "polygram_other_pass",
    "other_max_cosine",
    "other_pairs_cofiring",
    "compress_planted_zeroed",
    "compress_other_zeroed",
    "epoch_confirmed_planted",
    "epoch_confirmed_other",
    "epoch_planted_zeroed",
    "epoch_other_zeroed",
    "epoch_both_zeroed",
    "epoch_reason",
    "ve_source",
    "ve_epoch",
    "ve_regrown",
]


def make_prompts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=12)) for _ in range(n)]


def layout(n_features: int, n_pairs: int, seed: int) -> tuple[list[tuple[int, int]], list[int]]:
    """The planted pairs (ids ascending within a pair) and the independent ids."""
    perm = np.random.default_rng(seed).permutation(n_features).tolist()
    pairs = [tuple(sorted(perm[2 * k : 2 * k + 2])) for k in range(n_pairs)]
    return [(int(a), int(b)) for a, b in pairs], sorted(perm[2 * n_pairs :])


def planted_sae(
    x: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    n_features: int,
    noise: float,
    firing_rate: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Tied unit directions (the same draws for every ``noise``), ``b_dec`` =
    mean residual, per-feature ``b_enc`` for the wanted firing rate, and one
    global decoder scale fitted to the residuals."""
    rng = np.random.default_rng(seed + 1)
    d = x.shape[1]
    u = rng.standard_normal((n_features, d))
    kicks = rng.standard_normal((len(pairs), d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    kicks /= np.linalg.norm(kicks, axis=1, keepdims=True)
    for (a, b), kick in zip(pairs, kicks, strict=True):
        v = u[a] + noise * kick
        u[b] = v / np.linalg.norm(v)
    xf = x.astype(np.float64)
    b_dec = xf.mean(axis=0)
    proj = (xf - b_dec) @ u.T
    b_enc = -np.quantile(proj, 1.0 - firing_rate, axis=0)
    acts = np.maximum(proj + b_enc, 0.0)
    recon = acts @ u
    scale = float(np.sum((xf - b_dec) * recon) / max(np.sum(recon * recon), 1e-30))
    arrays = {"W_enc": u.T, "b_enc": b_enc, "W_dec": scale * u, "b_dec": b_dec}
    return {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}


def variance_explained(x: np.ndarray, sae: dict[str, np.ndarray]) -> float:
    """``1 − ‖X − recon‖² / ‖X − mean X‖²`` for the ReLU SAE, in float64."""
    xf = x.astype(np.float64)
    w_enc, b_enc = sae["W_enc"].astype(np.float64), sae["b_enc"].astype(np.float64)
    w_dec, b_dec = sae["W_dec"].astype(np.float64), sae["b_dec"].astype(np.float64)
    recon = np.maximum((xf - b_dec) @ w_enc + b_enc, 0.0) @ w_dec + b_dec
    return float(1.0 - np.sum((xf - recon) ** 2) / np.sum((xf - xf.mean(axis=0)) ** 2))


def cofiring_others(
    x: np.ndarray, sae: dict[str, np.ndarray], planted: set[frozenset[int]]
) -> tuple[int, float]:
    """Over the whole SAE: how many non-planted pairs pass the gate's co-firing
    terms (Jaccard ≥ 0.30 and ≥ 5 both-fire tokens), and their largest
    decoder cosine — the redundancy the random directions bring themselves."""
    xf = x.astype(np.float64)
    fires = ((xf - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"] > 0).astype(np.float64)
    both = fires.T @ fires
    n = fires.sum(axis=0)
    jac = both / np.maximum(n[:, None] + n[None, :] - both, 1.0)
    unit = sae["W_dec"] / np.linalg.norm(sae["W_dec"], axis=1, keepdims=True)
    cos = unit @ unit.T
    count, best = 0, -1.0
    for i in range(len(n)):
        for j in range(i + 1, len(n)):
            if frozenset((i, j)) in planted:
                continue
            count += bool(jac[i, j] >= 0.30 and both[i, j] >= 5)
            best = max(best, float(cos[i, j]))
    return count, best


def zeroed_rows(path: Path) -> set[int]:
    w_dec = load_file(str(path))["W_dec"]
    return {int(f) for f in np.flatnonzero(~np.any(w_dec != 0, axis=1))}


def zero_counts(zeroed: set[int], pairs: Sequence[tuple[int, int]]) -> tuple[int, int, int]:
    """(planted pairs with exactly one member zeroed, non-planted features
    zeroed, planted pairs with both members zeroed)."""
    planted = {f for p in pairs for f in p}
    one = sum(len(zeroed & set(p)) == 1 for p in pairs)
    both = sum(set(p) <= zeroed for p in pairs)
    return one, len(zeroed - planted), both


def make_panels(
    pairs: Sequence[tuple[int, int]], others: Sequence[int], n_panels: int, seed: int
) -> list[list[int]]:
    """``n_panels`` disjoint 8-feature panels: two planted pairs and four
    independent features each, in a seeded order."""
    rng = np.random.default_rng(seed + 2)
    panels = []
    for p in range(n_panels):
        ids = [*pairs[2 * p], *pairs[2 * p + 1], *others[4 * p : 4 * p + 4]]
        panels.append([int(i) for i in rng.permutation(ids)])
    return panels


def run_level(
    noise: float,
    *,
    x: np.ndarray,
    prompts: list[str],
    model_dir: Path,
    work: Path,
    opts: dict[str, Any],
) -> dict[str, Any]:
    n_features, seed = opts["n_features"], opts["seed"]
    pairs, others = layout(n_features, opts["n_pairs"], seed)
    sae = planted_sae(x, pairs, n_features, noise, opts["firing_rate"], seed)
    src = work / f"sae_noise{noise:g}.safetensors"
    write_sae_state(src, sae)  # C-orders the arrays (safetensors.numpy would not)
    planted = {frozenset(p) for p in pairs}

    # (a) validate panels, (b) compress their confirmed pairs, chained
    panels = make_panels(pairs, others, opts["n_panels"], seed)
    records = load_sae_safetensors(src)
    tp = fp = n_planted = n_other = 0
    spearman, jac_planted, jac_other, poly_planted, poly_other = [], [], [], [], []
    current = src
    for k, ids in enumerate(panels):
        dictionary, _ = from_sae_lens(records, ids, assign_gamma=True, name=f"Panel{k}")
        report = BehaviouralValidator(
            dictionary=dictionary,
            sae_checkpoint=src,
            feature_ids=ids,
            prompts=prompts,
            layer=opts["layer"],
            model_name=str(model_dir),
            device="cpu",
            progress=False,
        ).run()
        spearman.append(report.summary.spearman_polygram_jaccard)
        for pair in report.pairs:
            if frozenset((pair.i, pair.j)) in planted:
                n_planted += 1
                jac_planted.append(pair.jaccard)
                poly_planted.append(pair.polygram_overlap)
            else:
                n_other += 1
                jac_other.append(pair.jaccard)
                poly_other.append(pair.polygram_overlap)
        for i, j in report.confirmed:
            if frozenset((i, j)) in planted:
                tp += 1
            else:
                fp += 1
        if report.confirmed:
            nxt = work / f"sae_noise{noise:g}_panel{k}.safetensors"
            Compressor(report, current).run(nxt)
            current = nxt
    c_one, c_other, _ = zero_counts(zeroed_rows(current), pairs)

    # (c) epoch over the whole SAE, (d) regrow its zeroed slots
    epoch_out = work / f"epoch_noise{noise:g}" / "sae.epoch.safetensors"
    epoch = EpochCompressor(
        src,
        [],
        opts["layer"],
        cached_residuals=x,
        save_intermediate_reports=True,
        progress=False,
    ).run(epoch_out)
    e_confirmed = {
        frozenset(pair)
        for it in epoch.report.iterations
        if it.convergence_state != "quality_bound_breached"
        for path in it.validation_report_paths
        for pair in ValidationReport.from_json(path).confirmed
    }
    e_zeroed = zeroed_rows(epoch_out)
    e_one, e_other, e_both = zero_counts(e_zeroed, pairs)
    ve_epoch = variance_explained(x, load_file(str(epoch_out)))
    ve_regrown = ve_epoch
    if e_zeroed:
        regrown = work / f"sae_noise{noise:g}_regrown.safetensors"
        Regrower(
            epoch_out,
            "residual_kmeans",
            sorted(e_zeroed),
            seed=seed,
            cached_residuals=x,
        ).run(regrown)
        ve_regrown = variance_explained(x, load_file(str(regrown)))

    cos = [float(sae["W_enc"][:, a] @ sae["W_enc"][:, b]) for a, b in pairs]
    cofiring, other_cos = cofiring_others(x, sae, planted)
    return {
        "noise": noise,
        "planted_cosine": float(np.mean(cos)),
        "panel_planted_pairs": n_planted,
        "panel_other_pairs": n_other,
        "confirmed_planted": tp,
        "confirmed_other": fp,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / n_planted if n_planted else float("nan"),
        "spearman_polygram_jaccard": float(np.nanmean(spearman)),
        "jaccard_planted_mean": float(np.mean(jac_planted)),
        "jaccard_other_max": float(np.max(jac_other)),
        "polygram_planted_mean": float(np.mean(poly_planted)),
        "polygram_other_mean": float(np.mean(poly_other)),
        "polygram_other_pass": float(np.mean(np.asarray(poly_other) >= 0.7)),
        "other_max_cosine": other_cos,
        "other_pairs_cofiring": cofiring,
        "compress_planted_zeroed": c_one,
        "compress_other_zeroed": c_other,
        "epoch_confirmed_planted": len(e_confirmed & planted),
        "epoch_confirmed_other": len(e_confirmed - planted),
        "epoch_planted_zeroed": e_one,
        "epoch_other_zeroed": e_other,
        "epoch_both_zeroed": e_both,
        "epoch_reason": epoch.report.convergence_reason,
        "ve_source": variance_explained(x, sae),
        "ve_epoch": ve_epoch,
        "ve_regrown": ve_regrown,
    }


def _fmt(v: object) -> object:
    return f"{v:.4g}" if isinstance(v, float) else v


def write_outputs(out: Path, rows: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows([[_fmt(r[c]) for c in COLUMNS] for r in rows])
    atomic_write_text(out / "planted.csv", buf.getvalue())

    def clean(v: object) -> object:
        return None if isinstance(v, float) and not np.isfinite(v) else v

    payload = {"settings": settings, "rows": [{k: clean(v) for k, v in r.items()} for r in rows]}
    atomic_write_text(out / "planted.json", json.dumps(payload, indent=2, sort_keys=True) + "\n")

    noise = np.array([r["noise"] for r in rows])
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))

    def frac(num: str, *den: str) -> list[float]:
        return [r[num] / d if (d := sum(r[k] for k in den)) else float("nan") for r in rows]

    n_pairs = [settings["n_pairs"]] * len(rows)
    ax1.plot(noise, frac("confirmed_planted", "panel_planted_pairs"), "o-", label="panels: recall")
    ax1.plot(
        noise,
        frac("confirmed_planted", "confirmed_planted", "confirmed_other"),
        "s--",
        label="panels: precision",
    )
    ax1.plot(
        noise,
        [r["epoch_confirmed_planted"] / n for r, n in zip(rows, n_pairs, strict=True)],
        "^-",
        label="epoch (whole SAE): recall",
    )
    ax1.plot(
        noise,
        frac("epoch_confirmed_planted", "epoch_confirmed_planted", "epoch_confirmed_other"),
        "v:",
        label="epoch (whole SAE): precision",
    )
    ticks = [f"{r['noise']:g}\ncos {r['planted_cosine']:.2f}" for r in rows]
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(noise, ticks)
        ax.minorticks_off()
    ax1.set_xlabel("planted-duplicate noise (mean decoder cosine of a planted pair)")
    ax1.set_ylabel("fraction")
    ax1.set_ylim(-0.05, 1.05)
    ax1.legend(fontsize=8)
    ax1.set_title("Confirmed pairs vs the planted pairs")
    for label, key, style in (
        ("source SAE", "ve_source", "o-"),
        ("after epoch (zeroed)", "ve_epoch", "s--"),
        ("after regrow", "ve_regrown", "^-"),
    ):
        ax2.plot(noise, [r[key] for r in rows], style, label=label)
    ax2.set_xlabel("planted-duplicate noise (mean decoder cosine of a planted pair)")
    ax2.set_ylabel("fraction of residual variance explained")
    ax2.legend(fontsize=8)
    ax2.set_title("Reconstruction")
    fig.tight_layout()
    save_figure(fig, out / "planted.png")


def main(
    output_dir: str | Path = "examples/output",
    *,
    noise_levels: Sequence[float] = NOISE_LEVELS,
    n_features: int = 48,
    n_pairs: int = 6,
    n_panels: int = 3,
    n_prompts: int = 40,
    firing_rate: float = 0.2,
    layer: int = 2,
    seed: int = 0,
) -> Path:
    if 2 * n_panels > n_pairs or 4 * n_panels > n_features - 2 * n_pairs:
        raise ValueError("each panel needs two planted pairs and four independent features")
    out = Path(output_dir)
    opts = dict(
        n_features=n_features,
        n_pairs=n_pairs,
        n_panels=n_panels,
        firing_rate=firing_rate,
        layer=layer,
        seed=seed,
    )
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="polygram-planted-") as tmp:
        work = Path(tmp)
        model_dir = build_tiny_gpt2(work / "tiny_gpt2", seed=seed)
        prompts = make_prompts(n_prompts, seed)
        x = capture_activations(get_model(model_dir, "cpu"), HookPoint(layer), prompts)
        for noise in noise_levels:
            row = run_level(
                float(noise), x=x, prompts=prompts, model_dir=model_dir, work=work, opts=opts
            )
            rows.append(row)
            print(
                f"noise {noise:g}: cos {row['planted_cosine']:.3f}, confirmed "
                f"{row['confirmed_planted']}/{row['panel_planted_pairs']} planted + "
                f"{row['confirmed_other']} other; epoch confirmed "
                f"{row['epoch_confirmed_planted']}/{n_pairs} planted + "
                f"{row['epoch_confirmed_other']} other; VE "
                f"{row['ve_source']:.3f} → {row['ve_epoch']:.3f} → {row['ve_regrown']:.3f}"
            )
    settings = {
        **opts,
        "noise_levels": [float(v) for v in noise_levels],
        "n_prompts": n_prompts,
        "n_tokens": int(x.shape[0]),
        "d_model": D_MODEL,
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_outputs(out, rows, settings)
    return out / "planted.json"


if __name__ == "__main__":
    main()
