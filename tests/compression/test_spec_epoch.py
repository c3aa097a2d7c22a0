"""Spec 13 audit: statements of the epoch spec that the other epoch tests do
not pin — the constructor's check order, the strict quality bound and its
``inf`` off switch, the representative rule, report names, temp-file
placement, the report's key sets, one panel per iteration on an empty
graph, the CLI defaults and the CLI's refusal to write the report over an
input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from epoch_helpers import GROUP_A, GROUP_B, epoch_cli, planted_sae, residuals, write_planted_sae
from epoch_helpers import make_epoch as make
from safetensors.numpy import save_file

import polygram.compression.epoch as epoch_mod
from polygram._report_json import round6
from polygram.compression.epoch import EpochCompressor
from polygram.errors import CompressionError, SAEFileNotFoundError


@pytest.fixture()
def sae(tmp_path: Path) -> Path:
    return write_planted_sae(tmp_path / "src" / "sae.safetensors")


# --- §2: the constructor checks run in 0.0.1's order ---------------------------------


def test_constructor_check_order(tmp_path: Path, sae: Path) -> None:
    """Every field bad at once; repairing them one by one walks the spec's order:
    checkpoint, prompts, strategy, coverage_target, cosine_threshold,
    n_visits_per_feature, n_panels_max, min_firing_rate, max_iterations,
    quality_delta_multiplier, layer >= 0, layer 0."""
    kw: dict[str, Any] = {
        "sae_checkpoint": tmp_path / "missing.safetensors",
        "prompts": [],
        "strategy": "merge",
        "coverage_target": 0.0,
        "cosine_threshold": 2.0,
        "n_visits_per_feature": 0,
        "n_panels_max": 0,
        "min_firing_rate": 2.0,
        "max_iterations": 0,
        "quality_delta_multiplier": -1.0,
        "layer": -1,
        "model_name": "gpt2",
    }
    with pytest.raises(SAEFileNotFoundError, match="no such file"):
        EpochCompressor(**kw)
    kw["sae_checkpoint"] = sae
    repairs: list[tuple[str, str, Any]] = [
        ("non-empty", "prompts", ["hello"]),
        ("'zero' strategy", "strategy", "zero"),
        ("coverage_target", "coverage_target", 0.95),
        ("cosine_threshold", "cosine_threshold", 0.3),
        ("n_visits_per_feature", "n_visits_per_feature", 3),
        ("n_panels_max", "n_panels_max", 1000),
        ("min_firing_rate", "min_firing_rate", 0.01),
        ("max_iterations", "max_iterations", 5),
        ("quality_delta_multiplier", "quality_delta_multiplier", 2.0),
        ("layer: got -1", "layer", 0),
        ("use layer >= 5 (recommended: 10)", "layer", 10),
    ]
    for message, name, good in repairs:
        with pytest.raises(CompressionError) as info:
            EpochCompressor(**kw)
        assert message in str(info.value), (name, str(info.value))
        kw[name] = good
    EpochCompressor(**kw)  # all repaired


# --- §3.2 step 13: the quality bound is strict; inf turns it off ----------------------


def _two_compressions(sae: Path, multiplier: float) -> EpochCompressor:
    """One panel per iteration, two iterations: group A is compressed, then B."""
    return make(
        sae,
        n_panels_max=1,
        n_visits_per_feature=1,
        max_iterations=2,
        quality_delta_multiplier=multiplier,
    )


def _deltas(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> None:
    it: Iterator[float] = iter(values)
    monkeypatch.setattr(epoch_mod, "quality_delta", lambda *a, **k: next(it))


@pytest.mark.parametrize(
    ("deltas", "multiplier", "states"),
    [
        # delta_2 == 2.0 · delta_1 exactly: not a breach (strict >)
        ([0.1, 0.2], 2.0, ["continuing", "max_iterations"]),
        ([0.1, 0.2000001], 2.0, ["continuing", "quality_bound_breached"]),
        # delta_1 = 0: any later increase breaches a finite multiplier …
        ([0.0, 1e-9], 1e6, ["continuing", "quality_bound_breached"]),
        # … but inf · 0 is NaN, and inf still means "guard off"
        ([0.0, 1.5], float("inf"), ["continuing", "max_iterations"]),
    ],
)
def test_quality_bound_is_strict(
    monkeypatch: pytest.MonkeyPatch,
    sae: Path,
    tmp_path: Path,
    deltas: list[float],
    multiplier: float,
    states: list[str],
) -> None:
    _deltas(monkeypatch, deltas)
    e = _two_compressions(sae, multiplier)
    rep = e.run(tmp_path / "o.safetensors").report
    assert [it.convergence_state for it in rep.iterations] == states
    # the bound uses the exact delta; the record holds it to 6 significant figures
    assert [it.cross_entropy_delta for it in rep.iterations] == [round6(d) for d in deltas]
    # a breach reverts the second iteration: only group A's redundant members stay zeroed
    breached = states[-1] == "quality_bound_breached"
    assert rep.n_features_zeroed_total == (3 if breached else 5)
    assert rep.convergence_reason == states[-1]


# --- §3.2 step 8: representative = most firing tokens in the pre-pass -------------------


def test_representative_is_the_most_firing_member(tmp_path: Path) -> None:
    state = planted_sae()
    # feature 3 fires on a superset of group A's tokens: it outranks the lower ids
    state["b_enc"][3] = -0.8
    path = tmp_path / "sae.safetensors"
    save_file(state, str(path))
    x = residuals()
    acts = np.maximum((x - state["b_dec"]) @ state["W_enc"] + state["b_enc"], 0)
    counts = (acts > 0).sum(axis=0)
    assert counts[3] > counts[0] == counts[1] == counts[2]
    rep = make(path, max_iterations=1).run(tmp_path / "o.safetensors").report
    zeroed = set(rep.iterations[0].features_zeroed_this_iteration)
    assert set(GROUP_A) - zeroed == {3}
    assert set(GROUP_B) - zeroed == {8}  # tied counts → lowest id


# --- §3.2 step 6 / §3.3: report names; §3.2 step 9: temp files in the output dir ---------


def test_names_are_sanitised_and_no_temp_checkpoints_are_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    src = write_planted_sae(tmp_path / "src" / "my-sae.v2.safetensors")
    names: list[str] = []
    real_aggregate = epoch_mod.aggregate_panel_reports

    def spy_aggregate(reports: Any, name: str) -> Any:
        names.append(name)
        return real_aggregate(reports, name)

    writes: list[Path] = []
    real_write = epoch_mod.write_sae

    def spy_write(sae: Any, path: Any, **kw: Any) -> Any:
        writes.append(Path(path))
        return real_write(sae, path, **kw)

    monkeypatch.setattr(epoch_mod, "aggregate_panel_reports", spy_aggregate)
    monkeypatch.setattr(epoch_mod, "write_sae", spy_write)
    out = tmp_path / "out" / "sae.epoch.safetensors"
    res = make(src, max_iterations=1).run(out)
    assert names == ["EpochSynth_my_sae_v2"]
    assert res.final_dictionary.name == "Epoch_my_sae_v2"
    assert writes == [out]  # iterations compress in memory (spec 16 §6.2): one write
    assert sorted(p.name for p in src.parent.iterdir()) == ["my-sae.v2.safetensors"]
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "sae.epoch.cfg.json",
        "sae.epoch.safetensors",
    ]


# --- §3.2 step 3: an empty pair graph gives one panel per iteration ----------------------


def test_empty_graph_one_panel_per_iteration(sae: Path, tmp_path: Path) -> None:
    e = make(sae, cosine_threshold=1.0)  # no two planted rows are exactly parallel
    rep = e.run(tmp_path / "o.safetensors").report
    assert rep.iterations
    assert all(len(it.panels) == 1 for it in rep.iterations)
    assert all(d["n_edges"] == 0 and d["coverage"] == 1.0 for d in e.debug["iterations"])
    assert rep.coverage_achieved == 1.0
    # the first anchor is the top-priority eligible feature (ties: lowest id)
    prio = e.debug["priority"]
    eligible = np.flatnonzero(e.debug["firing_rate"] >= 0.01)
    top = eligible[np.argsort(-prio[eligible], kind="stable")[0]]
    assert rep.iterations[0].panels[0].anchor == int(top)
    assert len(rep.iterations[0].panels[0].feature_ids) == 8


# --- §5: the JSON key sets ------------------------------------------------------------------


def test_report_json_key_sets(sae: Path, tmp_path: Path) -> None:
    rep = make(sae, max_iterations=1).run(tmp_path / "o.safetensors").report
    doc = json.loads(rep.to_json())
    assert set(doc) == {
        "schema_version",
        "source_checkpoint",
        "source_checkpoint_sha256",
        "output_checkpoint",
        "output_checkpoint_sha256",
        "convergence_reason",
        "n_features_zeroed_total",
        "n_panels_total",
        "coverage_achieved",
        "wall_seconds",
        "iterations",
        "sae_settings",
        "output_layout",
        "quality_metric",
        "quality_tolerance",
        "n_gate_prompts",
        "n_eval_prompts",
        "eval_before",
        "eval_after",
    }
    assert doc["schema_version"] == 4 and doc["output_layout"] == "file"
    # cached residuals and no prompts: the model-free upstream proxy
    assert doc["quality_metric"] == "upstream_proxy" and doc["eval_before"] is None
    (it,) = doc["iterations"]
    assert set(it) == {
        "iteration",
        "panels",
        "validation_report_paths",
        "confirmed_pair_count",
        "clusters_compressed",
        "features_zeroed_this_iteration",
        "cross_entropy_delta",
        "convergence_state",
        "quality_metric",
        "quality_value",
        "quality_reference",
        "quality_change",
        "quality_breached",
    }
    assert set(it["panels"][0]) == {"panel_id", "anchor", "feature_ids", "cosines_to_anchor"}
    assert [p["panel_id"] for p in it["panels"]] == list(range(len(it["panels"])))


# --- §6: CLI defaults and files -------------------------------------------------------------


def test_cli_defaults() -> None:
    from polygram.cli import build_parser

    args = build_parser().parse_args(
        ["compress-epoch", "--sae-checkpoint", "s", "--prompts", "p",
         "--output-checkpoint", "o", "--output", "r"]
    )  # fmt: skip
    assert (args.layer, args.model, args.strategy, args.device) == (10, "gpt2", "zero", "auto")
    assert (args.coverage_target, args.cosine_threshold) == (0.95, 0.30)
    assert (args.n_visits_per_feature, args.n_panels_max) == (3, 1000)
    assert (args.min_firing_rate, args.max_iterations) == (0.01, 5)
    assert args.quality_delta_multiplier == 2.0
    assert (args.polygram_threshold, args.jaccard_threshold, args.min_both_fire) == (0.7, 0.30, 5)
    assert not args.save_intermediate_reports and not args.allow_layer_zero


@pytest.mark.parametrize("clash", ["sae", "out", "x"])
def test_cli_report_never_overwrites_an_input(tmp_path: Path, clash: str) -> None:
    files = {
        "sae": write_planted_sae(tmp_path / "sae.safetensors"),
        "out": tmp_path / "sae.epoch.safetensors",
        "x": tmp_path / "x.npy",
    }
    np.save(files["x"], residuals())
    before = {k: p.read_bytes() for k, p in files.items() if p.exists()}
    r = epoch_cli("--sae-checkpoint", str(files["sae"]), "--output-checkpoint", str(files["out"]),
             "--cached-residuals", str(files["x"]), "--output", str(files[clash]),
             "--layer", "5")  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("polygram compress-epoch: --output ") and "must differ" in r.stderr
    assert {k: p.read_bytes() for k, p in files.items() if p.exists()} == before
    assert not files["out"].exists()


def test_cli_unreadable_prompts_exit_2(tmp_path: Path) -> None:
    sae = write_planted_sae(tmp_path / "sae.safetensors")
    bad = tmp_path / "prompts.txt"
    bad.write_bytes(b"\xff\xfe not utf-8\n")
    r = epoch_cli("--sae-checkpoint", str(sae), "--output-checkpoint", str(tmp_path / "o.st"),
             "--prompts", str(bad), "--output", str(tmp_path / "r.json"), "--layer", "5")  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("polygram compress-epoch: --prompts ")
    assert "cannot be read" in r.stderr


# --- seed README: the EpochCompressor section end to end --------------------------------


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:device='auto'")  # the snippet leaves device to auto
def test_seed_readme_walk(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The README's snippet as written, on the tiny GPT-2 (layer 2 of its 4
    blocks instead of GPT-2 small's layer 10) and a 32-wide SAE."""
    from behavioural.beh_helpers import PROMPTS, write_sae

    from polygram import EpochCompressor as TopLevel

    sae_path = tmp_path / "sae.safetensors"
    write_sae(sae_path, n_sae=24, d_model=32, seed=3)
    prompts = list(PROMPTS)
    epoch = TopLevel(
        sae_checkpoint=str(sae_path),
        prompts=prompts,
        layer=2,
        model_name=str(tiny_model_dir),
        coverage_target=0.95,
        cosine_threshold=0.30,
        n_visits_per_feature=3,
        max_iterations=5,
        quality_delta_multiplier=2.0,
        progress=False,
    )
    result = epoch.run(tmp_path / "sae.epoch.safetensors")
    text = result.report.to_json(tmp_path / "epoch_report.json")
    assert json.loads((tmp_path / "epoch_report.json").read_text()) == json.loads(text)
    assert result.report.convergence_reason in {
        "stable_clusters",
        "max_iterations",
        "quality_bound_breached",
        "no_more_priority_candidates",
    }
    assert result.output_checkpoint.is_file()


# --- non-finite SAE tensors are refused before any work -----------------------------------


@pytest.mark.parametrize(("key", "index"), [("W_dec", (3, 2)), ("b_enc", (7,))])
def test_non_finite_sae_is_refused(tmp_path: Path, key: str, index: tuple[int, ...]) -> None:
    from polygram.errors import SAEFormatError

    state = planted_sae()
    state[key][index] = np.nan
    path = tmp_path / "sae.safetensors"
    save_file(state, str(path))
    out = tmp_path / "o.safetensors"
    with pytest.raises(SAEFormatError, match=rf"{key} holds a non-finite value at index"):
        make(path).run(out)
    assert not out.exists()


# --- §5: from_json names what is missing or ill-typed, nested levels included ------------


def _doc() -> dict[str, Any]:
    it = {
        "iteration": 0,
        "panels": [{"panel_id": 0, "anchor": 2, "feature_ids": [1, 2], "cosines_to_anchor": [0.5]}],
        "validation_report_paths": [],
        "confirmed_pair_count": 1,
        "clusters_compressed": 1,
        "features_zeroed_this_iteration": [1],
        "cross_entropy_delta": 0.01,
        "convergence_state": "max_iterations",
    }
    return {
        "schema_version": 1,
        "source_checkpoint": "s",
        "source_checkpoint_sha256": "a",
        "output_checkpoint": "/o",
        "output_checkpoint_sha256": "b",
        "convergence_reason": "max_iterations",
        "n_features_zeroed_total": 1,
        "n_panels_total": 1,
        "coverage_achieved": 1.0,
        "wall_seconds": 0.5,
        "iterations": [it],
    }


def _broken(path: tuple[Any, ...], value: Any) -> str:
    doc = _doc()
    node: Any = doc
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("iterations", 0, "panels"), KeyError, r"iterations\[0\].*missing.*panels"),
        (("iterations", 0, "panels", 0, "anchor"), KeyError, r"panels\[0\].*missing.*anchor"),
        (("iterations",), {"0": 1}, "iterations is .*expected a JSON array"),
        (("iterations", 0, "features_zeroed_this_iteration"), 3, "expected a JSON array"),
        (("iterations", 0, "panels", 0, "feature_ids"), None, "feature_ids is None"),
        (("iterations", 0, "iteration"), "first", "wrong type"),
        (("n_panels_total",), [1], "wrong type"),
    ],
)
def test_from_json_names_bad_nested_values(path: tuple[Any, ...], value: Any, match: str) -> None:
    from polygram.compression.epoch_report import EpochReport

    assert EpochReport.from_json(json.dumps(_doc())).iterations[0].panels[0].anchor == 2
    with pytest.raises(ValueError, match=match):
        EpochReport.from_json(_broken(path, value))


# --- §3.2 step 14: state precedence — breach, then a repeated fingerprint, then the cap -----


@pytest.mark.parametrize(
    ("multiplier", "deltas", "state"),
    [
        (2.0, [0.1, 0.1], "stable_clusters"),  # beats max_iterations on the last iteration
        (2.0, [0.1, 0.3], "quality_bound_breached"),  # beats stable_clusters
    ],
)
def test_repeated_fingerprint_and_precedence(
    monkeypatch: pytest.MonkeyPatch,
    sae: Path,
    tmp_path: Path,
    multiplier: float,
    deltas: list[float],
    state: str,
) -> None:
    """The fingerprint rule cannot fire naturally (zeroed features leave the
    eligible set), so the second compression is made to report the first
    one's clusters."""
    real = EpochCompressor._compress
    first: list[Any] = []

    def same_clusters(self: EpochCompressor, *a: Any) -> Any:
        new_state, clusters = real(self, *a)
        if not first:
            first.append(clusters)
        return new_state, first[0]

    monkeypatch.setattr(EpochCompressor, "_compress", same_clusters)
    _deltas(monkeypatch, deltas)
    e = _two_compressions(sae, multiplier)
    rep = e.run(tmp_path / "o.safetensors").report
    assert [it.convergence_state for it in rep.iterations] == ["continuing", state]
    assert rep.convergence_reason == state


@pytest.mark.parametrize("flag", ["--output", "--output-checkpoint"])
def test_cli_output_directory_is_refused_up_front(tmp_path: Path, flag: str) -> None:
    sae = write_planted_sae(tmp_path / "sae.safetensors")
    np.save(tmp_path / "x.npy", residuals())
    paths = {"--output": str(tmp_path / "r.json"), "--output-checkpoint": str(tmp_path / "o.st")}
    paths[flag] = str(tmp_path)
    r = epoch_cli("--sae-checkpoint", str(sae), "--cached-residuals", str(tmp_path / "x.npy"),
             "--layer", "5", *[a for kv in paths.items() for a in kv])  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"polygram compress-epoch: {flag} ") and "is a directory" in r.stderr
    assert "iteration 0" not in r.stderr  # refused before the run


def test_run_refuses_a_directory_output_before_any_work(
    monkeypatch: pytest.MonkeyPatch, sae: Path, tmp_path: Path
) -> None:
    def boom(*a: Any, **k: Any) -> None:
        raise AssertionError("the residuals were read before the output path was checked")

    monkeypatch.setattr(epoch_mod.EpochCompressor, "_residuals", boom)
    with pytest.raises(CompressionError, match="holds other files"):
        make(sae).run(tmp_path)  # a foreign, non-empty folder
