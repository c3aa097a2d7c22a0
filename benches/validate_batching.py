"""``BehaviouralValidator.validate``: the batch-1 implementation it replaced
against the batched runtime, in one run.

Workload: an 8-feature panel of a random standard SAE (256 features) over 64
seeded prompts (6–24 words of the tiny BPE corpus), at ``blocks.2.hook_resid_pre``
of random GPT-2 models built offline (``examples/tiny_models.py``):

* ``tiny``  — 4 layers, width 32 (the behavioural tests' model);
* ``small`` — 6 layers, width 256, 4 heads (more arithmetic per forward).

``--model DIR`` adds any local causal LM (e.g. the real tier's SmolLM2-135M
cache); its SAE is sized to the model's width and hooked at layer 2.

Each implementation runs in a fresh interpreter: the *batch-1* one is the
validator of the last commit before the batched runtime (``git archive`` of
``--baseline-rev`` into a temporary directory, with this tree's compiled
extension), the *batched* one is this tree at ``--batch-size`` (default 8)
and at batch 1.  Each times ``validate()`` from a cold process — model load
included, once per process as a user pays it — ``--repeat`` times (best and
median reported), and the reports are checked to agree (same counts; KL within
rel 1e-3).

    python benches/validate_batching.py                 # tiny + small, ~3-6 min on 2 cores
    python benches/validate_batching.py --quick         # tiny only, one repeat
    python benches/validate_batching.py --update-docs   # also rewrite the block in docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- validate_batching.py:begin -->", "<!-- validate_batching.py:end -->"
PANEL = [3, 17, 42, 77, 101, 150, 199, 240]
N_PROMPTS = 64
LAYER = 2

# Runs in a child interpreter (old or new polygram on sys.path); prints one JSON line.
CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from polygram import BehaviouralValidator, from_sae_lens, load_sae_safetensors
ckpt, model, prompts_file, panel, layer, batch = sys.argv[1:7]
panel = json.loads(panel); layer = int(layer); batch = int(batch)
prompts = Path(prompts_file).read_text(encoding="utf-8").splitlines()
records = load_sae_safetensors(ckpt, feature_ids=panel)
dictionary, _ = from_sae_lens(records, panel, assign_gamma=True)
kw = dict(model_name=model, device="cpu", progress=False, min_firing_rate=0.0)
if batch > 0:
    kw["batch_size"] = batch
v = BehaviouralValidator(dictionary, ckpt, panel, prompts, layer=layer, **kw)
candidates = v.predict()
t0 = time.perf_counter()
report = v.validate(candidates)
cold = time.perf_counter() - t0
t0 = time.perf_counter()
v.validate(candidates)
warm = time.perf_counter() - t0
pairs = [[p.n_both_fire, p.n_either_fire, p.kl_ablate_i, p.kl_ablate_j] for p in report.pairs]
print(json.dumps({"cold": cold, "warm": warm, "n_tokens": report.n_tokens, "pairs": pairs}))
"""


def build_inputs(work: Path, width: int, n_layers: int, heads: int, name: str) -> Path:
    sys.path.insert(0, str(ROOT / "examples"))
    from tiny_models import build_tiny_model

    out = work / name
    if not out.exists():
        build_tiny_model("gpt2", out, width=width, n_layers=n_layers, n_head=heads, n_positions=256)
    return out


def model_width(model: Path) -> int:
    cfg = json.loads((model / "config.json").read_text(encoding="utf-8"))
    for key in ("hidden_size", "n_embd", "d_model"):
        if key in cfg:
            return int(cfg[key])
    raise SystemExit(f"{model}: no hidden size in config.json")


def write_sae(path: Path, d_in: int, n_sae: int = 256, seed: int = 0) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(d_in)
    arrays = {
        "W_enc": (scale * rng.standard_normal((d_in, n_sae))).astype(np.float32),
        "b_enc": np.zeros(n_sae, dtype=np.float32),
        "W_dec": (scale * rng.standard_normal((n_sae, d_in))).astype(np.float32),
        "b_dec": np.zeros(d_in, dtype=np.float32),
    }
    save_file(arrays, str(path))


def write_prompts(path: Path, seed: int = 0) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    from tiny_models import CORPUS

    words = sorted({w.strip(".,").lower() for line in CORPUS for w in line.split()})
    rng = np.random.default_rng(seed)
    lines = [
        " ".join(rng.choice(words, size=int(rng.integers(6, 25))).tolist())
        for _ in range(N_PROMPTS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def baseline_rev() -> str:
    """The last commit before the batched runtime: the parent of the commit that
    deleted ``polygram/behavioural/runtime.py`` (HEAD when that is not committed)."""
    out = subprocess.run(
        ["git", "log", "--diff-filter=D", "--format=%H", "-1", "--",
         "python/polygram/behavioural/runtime.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return f"{out}^" if out else "HEAD"


def old_tree(rev: str, work: Path) -> Path:
    """``python/`` of ``rev`` with this tree's compiled extension."""
    dest = work / "baseline"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "python"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    for so in (ROOT / "python" / "polygram").glob("_core*.so"):
        shutil.copy2(so, dest / "python" / "polygram" / so.name)
    return dest / "python"


def child(pythonpath: Path, args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=False
    )
    if r.returncode != 0:
        raise SystemExit(f"child failed ({pythonpath}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["n_tokens"] != b["n_tokens"]:
        return False
    for pa, pb in zip(a["pairs"], b["pairs"], strict=True):
        if pa[:2] != pb[:2]:
            return False
        for x, y in zip(pa[2:], pb[2:], strict=True):
            x_nan, y_nan = x is None or math.isnan(x), y is None or math.isnan(y)
            if x_nan or y_nan:
                if x_nan != y_nan:
                    return False
            elif abs(x - y) > 1e-3 * max(abs(x), abs(y)) + 1e-7:
                return False
    return True


def measure(model: Path, work: Path, old_py: Path, batch: int, repeat: int) -> dict[str, Any]:
    ckpt = work / f"sae_{model_width(model)}.safetensors"
    write_sae(ckpt, model_width(model))
    prompts = work / "prompts.txt"
    write_prompts(prompts)
    common = [str(ckpt), str(model), str(prompts), json.dumps(PANEL), str(LAYER)]
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "b1": [], "bN": []}
    for _ in range(repeat):  # interleaved, so load drifts hit every variant alike
        runs["old"].append(child(old_py, [*common, "0"]))
        runs["b1"].append(child(ROOT / "python", [*common, "1"]))
        runs["bN"].append(child(ROOT / "python", [*common, str(batch)]))
    ok = all(agree(runs["old"][0], r[0]) for r in runs.values())

    def stats(key: str, field: str = "cold") -> tuple[float, float]:
        xs = [r[field] for r in runs[key]]
        return min(xs), statistics.median(xs)

    return {
        "model": model.name,
        "width": model_width(model),
        "n_tokens": runs["old"][0]["n_tokens"],
        "old": stats("old"),
        "b1": stats("b1"),
        "bN": stats("bN"),
        "bN_warm": stats("bN", "warm"),
        "agree": ok,
    }


def table(rows: list[dict[str, Any]], batch: int, rev: str, repeat: int) -> str:
    head = (
        f"| model | tokens | batch-1 (before) | batch 1 (now) | batch {batch} (now) | speed-up | "
        f"batch {batch}, model cached | reports agree |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for r in rows:
        best_old, med_old = r["old"]
        best_n, med_n = r["bN"]
        body += (
            f"| {r['model']} (width {r['width']}) | {r['n_tokens']} | {med_old:.2f} s | "
            f"{r['b1'][1]:.2f} s | {med_n:.2f} s | **{med_old / med_n:.1f}×** "
            f"(best {best_old / best_n:.1f}×) | {r['bN_warm'][1]:.2f} s | "
            f"{'yes' if r['agree'] else 'NO'} |\n"
        )
    note = (
        f"\nMedian of {repeat} cold runs (model load included) of an 8-feature panel over "
        f"{N_PROMPTS} prompts at blocks.{LAYER}.hook_resid_pre; before = `{rev}`. "
        f"{platform.python_version()}, {os.cpu_count()} cores, {date.today().isoformat()}.\n"
    )
    return head + body + note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny model only, one repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model", type=Path, action="append", default=[], help="extra local model")
    ap.add_argument("--baseline-rev", default=None, help="git revision of the batch-1 code")
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    rev = args.baseline_rev or baseline_rev()
    with tempfile.TemporaryDirectory(prefix="validate-batching-") as tmp:
        work = Path(tmp)
        old_py = old_tree(rev, work)
        models = [build_inputs(work, 32, 4, 4, "tiny")]
        if not args.quick:
            models.append(build_inputs(work, 256, 6, 4, "small"))
        models += [m.resolve() for m in args.model]
        rows = []
        for m in models:
            rows.append(measure(m, work, old_py, args.batch_size, repeat))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    rev_name = (
        subprocess.run(
            ["git", "rev-parse", "--short", rev],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or rev
    )
    text = table(rows, args.batch_size, rev_name, repeat)
    print(text)
    if args.update_docs:
        doc = DOCS.read_text(encoding="utf-8")
        block = f"{BEGIN}\n{text}{END}"
        if BEGIN in doc:
            start, end = doc.index(BEGIN), doc.index(END) + len(END)
            doc = doc[:start] + block + doc[end:]
        else:
            doc = doc.rstrip("\n") + "\n\n" + block + "\n"
        DOCS.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    main()
