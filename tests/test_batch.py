"""``polygram batch`` and ``BatchExperiment`` (spec 06 §6.3).

The CLI chains run through real subprocesses (``python -m polygram.cli``); the
dictionaries come from a ``module:callable`` in a temp module on PYTHONPATH.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import FIXTURES, dictionary_from_spec
from polygram import (
    BatchExperiment,
    BatchResults,
    BatchRun,
    Cancellation,
    Dictionary,
    Feature,
    HEA_Rung2,
    Rung3,
    from_sae_lens,
    load_toy_sae,
    verify_qorca,
)
from polygram.analysis import FeatureEdge, FeatureGraph, build_sharing_graph, triage_dictionary
from polygram.batch import edge_knobs
from polygram.errors import ExperimentError

TOY = FIXTURES / "toy_sae.json"
TOY_IDS = [0, 1, 4, 5]
RUN_KEYS = {
    "achieved_overlap",
    "artifact_subpath",
    "best_knobs",
    "cancellation_efficiency",
    "current_overlap",
    "predicted_floor",
    "predicted_gap",
    "source",
    "target",
    "tier_separation_after",
    "warning",
}
PROGRESS = re.compile(r"polygram batch: (\d+)/(\d+): (\w+) x (\w+) — done in \d+\.\d\ds")


# ------------------------------------------------------------------ helpers
def gap_pair(ref: dict[str, Any]) -> Dictionary:
    return dictionary_from_spec(ref["cancellation_gap_case"]["dictionary"])


def toy_dictionary() -> Dictionary:
    return from_sae_lens(load_toy_sae(TOY), TOY_IDS)[0]


@pytest.fixture
def dicts_module(tmp_path: Path, ref: dict[str, Any]) -> Path:
    """``batchdicts.py``: the callables ``--dictionary`` points at."""
    gp = json.dumps(ref["cancellation_gap_case"]["dictionary"])
    (tmp_path / "batchdicts.py").write_text(
        "import json\n"
        "from polygram import Dictionary, Feature, from_sae_lens, load_toy_sae\n"
        f"GAP = json.loads({gp!r})\n"
        "def toy():\n"
        f"    return from_sae_lens(load_toy_sae({str(TOY)!r}), {TOY_IDS!r})[0]\n"
        "def gap_pair():\n"
        "    feats = [Feature(f['name'], f['cluster'], beta=f['beta'], alpha=f['alpha'],\n"
        "                     gamma=f['gamma'], phi=f['phi']) for f in GAP['features']]\n"
        "    return Dictionary(GAP['name'], feats, GAP['hierarchy'])\n"
        "def broken():\n"
        "    raise RuntimeError('no dictionary today')\n"
        "def not_a_dictionary():\n"
        "    return ['a1', 'a2']\n"
        "NOT_CALLABLE = 3\n"
    )
    return tmp_path


def polygram(cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **extra_env}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), env.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "polygram.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def gap_pair_sharing_graph(ref: dict[str, Any], path: Path) -> FeatureGraph:
    g = build_sharing_graph(triage_dictionary(gap_pair(ref)), threshold=0.5)
    path.write_text(g.to_json())
    return g


def sig6(x: float) -> float:
    return float(f"{x:.6g}")


def assert_all_numbers_sig6(obj: Any, where: str = "$") -> None:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, float):
        assert sig6(obj) == obj, f"{where}: {obj!r} has more than 6 significant digits"
    elif isinstance(obj, dict):
        for k, v in obj.items():
            assert_all_numbers_sig6(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert_all_numbers_sig6(v, f"{where}[{i}]")


def rounded(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return sig6(x) if isinstance(x, float) else x


def read_results(path: Path) -> dict[str, Any]:
    text = path.read_text()
    data = json.loads(text)
    # compact, keys sorted at every level
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert set(data) == {"created_at", "dictionary_name", "knobs", "runs", "source_graph"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["created_at"])
    assert_all_numbers_sig6(data)
    for run in data["runs"]:
        assert set(run) == RUN_KEYS
    return data  # type: ignore[no-any-return]


def direct(d: Dictionary, a: str, b: str, knobs: list[str]) -> Any:
    return Cancellation(
        d, (a, b), preserve_tiers=False, optimize={"method": "grid", "max_steps": 50}, knobs=knobs
    ).run()


def check_machines(out: Path, data: dict[str, Any], d: Dictionary) -> None:
    """Every materialised machine verifies, and its Gram is the direct optimum's."""
    for run in data["runs"]:
        folder = out / run["artifact_subpath"]
        assert run["artifact_subpath"] == f"{run['source']}_x_{run['target']}"
        machine = folder / f"{d.name}_at_optimum.q.orca.md"
        assert (folder / f"{d.name}_at_optimum_summary.md").is_file()
        assert (folder / f"{d.name}_at_optimum_trajectory.csv").is_file()
        res = direct(d, run["source"], run["target"], list(run["best_knobs"]))
        v = verify_qorca(machine, dictionary=res.dictionary_at_optimum)
        assert v.valid, v.errors


# ------------------------------------------------------------ CLI chains
def test_toy_chain_analyze_then_batch_separation(dicts_module: Path) -> None:
    cwd = dicts_module
    r = polygram(
        cwd, "analyze", str(TOY), "--features", "0,1,4,5", "--output", "report.md",
        "--sharing-graph", "share.json", "--separation-graph", "sep.json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    graph = FeatureGraph.from_json((cwd / "sep.json").read_text())
    assert len(graph.edges) == 4 and all(e.is_cross_cluster for e in graph.edges)

    out = cwd / "out"
    r = polygram(
        cwd, "batch", "--feature-graph", "sep.json", "--dictionary", "batchdicts:toy",
        "--top-k", "3", "--output-dir", "out",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # cross-cluster knobs are not flat: no warnings
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    for i, (line, edge) in enumerate(zip(lines, graph.edges[:3]), start=1):
        m = PROGRESS.fullmatch(line)
        assert m, line
        assert m.groups() == (str(i), "3", edge.source, edge.target)
    results = out.resolve() / "batch_results.json"
    assert lines[-1] == f"polygram: wrote batch results → {results}"

    data = read_results(results)
    assert data["dictionary_name"] == "ImportedSAE"
    assert data["knobs"] == "cluster_shared"
    assert data["source_graph"] == rounded(graph.to_dict())
    assert [(x["source"], x["target"]) for x in data["runs"]] == [
        (e.source, e.target) for e in graph.edges[:3]
    ]
    d = toy_dictionary()
    for run, edge in zip(data["runs"], graph.edges):
        # one shared φ per cluster; both clusters are touched by a cross edge
        assert sorted(run["best_knobs"]) == ["birds.phi", "mammals.phi"]
        assert run["predicted_floor"] == sig6(edge.floor)
        assert run["predicted_gap"] == sig6(edge.gap) == 0.0
        assert run["cancellation_efficiency"] == 0.0  # gap ≤ 1e-12 → 0
        assert run["warning"] is None
        res = direct(d, edge.source, edge.target, ["mammals.phi", "birds.phi"])
        assert run["current_overlap"] == sig6(res.before_overlap)
        assert run["achieved_overlap"] == sig6(res.after_overlap)
        assert run["tier_separation_after"] == sig6(res.dictionary_at_optimum.tier_separation())
    check_machines(out, data, d)


def test_toy_chain_empty_sharing_graph_default_output_dir(dicts_module: Path) -> None:
    cwd = dicts_module
    r = polygram(cwd, "analyze", str(TOY), "--features", "0,1,4,5", "--sharing-graph", "g.json")
    assert r.returncode == 0, r.stderr
    r = polygram(cwd, "batch", "--feature-graph", "g.json", "--dictionary", "batchdicts:toy")
    assert r.returncode == 0, r.stderr
    first, last = r.stdout.splitlines()
    assert first == "polygram batch: the sharing graph has no edges; nothing to run"
    m = re.fullmatch(r"polygram: wrote batch results → (.+)", last)
    assert m
    results = Path(m.group(1))
    try:
        assert results.name == "batch_results.json"
        assert results.parent.name.startswith("polygram-batch-")  # a fresh temp dir
        data = read_results(results)
        assert data["runs"] == []
        assert data["source_graph"]["edges"] == []
    finally:
        shutil.rmtree(results.parent)


def test_gap_pair_per_feature_gives_real_efficiencies(
    dicts_module: Path, ref: dict[str, Any]
) -> None:
    cwd = dicts_module
    graph = gap_pair_sharing_graph(ref, cwd / "g.json")
    want = ref["analysis_gap_pair_graphs"]['sharing_graph {"threshold": 0.5}']["edges"]
    assert [(e.source, e.target) for e in graph.edges] == [("a1", "a2"), ("b1", "b2")]
    for e, w in zip(graph.edges, want):
        assert e.gap == pytest.approx(w["gap"], abs=1e-12)

    r = polygram(
        cwd, "batch", "--feature-graph", "g.json", "--dictionary", "batchdicts:gap_pair",
        "--knobs", "per_feature", "--output-dir", "out",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    data = read_results(cwd / "out" / "batch_results.json")
    assert data["knobs"] == "per_feature"
    assert data["dictionary_name"] == "GapPair"
    d = gap_pair(ref)
    for run, edge in zip(data["runs"], graph.edges):
        a, b = edge.source, edge.target
        assert sorted(run["best_knobs"]) == [f"{a}.phi", f"{b}.phi"]
        res = direct(d, a, b, [f"{a}.phi", f"{b}.phi"])
        assert run["achieved_overlap"] == sig6(res.after_overlap)
        assert run["current_overlap"] == sig6(res.before_overlap)
        eff = (res.before_overlap - res.after_overlap) / edge.gap
        assert run["cancellation_efficiency"] == sig6(eff)
        assert eff > 0.99  # the 50-step grid gets within 0.2 % of the floor
        assert res.after_overlap >= edge.floor - 1e-12
        assert run["best_knobs"] == {k: sig6(v) for k, v in res.optimized_knobs.items()}
        assert run["warning"] is None
    check_machines(cwd / "out", data, d)


def test_gap_pair_cluster_shared_is_flat_and_says_so(
    dicts_module: Path, ref: dict[str, Any]
) -> None:
    cwd = dicts_module
    graph = gap_pair_sharing_graph(ref, cwd / "g.json")
    r = polygram(
        cwd, "batch", "--feature-graph", "g.json", "--dictionary", "batchdicts:gap_pair",
        "--output-dir", "out",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    warnings = r.stderr.splitlines()
    assert len(warnings) == 2
    for w, cluster in zip(warnings, ("ka", "kb")):
        assert w.startswith("polygram batch: warning: ")
        assert f"'{cluster}.phi'" in w and "cannot change their overlap" in w
        assert "per_feature" in w
    assert len(r.stdout.splitlines()) == 3
    data = read_results(cwd / "out" / "batch_results.json")
    d = gap_pair(ref)
    for run, edge, cluster in zip(data["runs"], graph.edges, ("ka", "kb")):
        assert list(run["best_knobs"]) == [f"{cluster}.phi"]
        assert run["cancellation_efficiency"] == 0.0  # not the 1e-16 round-off quotient
        assert "cannot change their overlap" in run["warning"]
        res = direct(d, edge.source, edge.target, [f"{cluster}.phi"])
        assert abs(res.after_overlap - res.before_overlap) < 1e-12  # the no-op, for real
        assert run["achieved_overlap"] == run["current_overlap"]
    check_machines(cwd / "out", data, d)


# -------------------------------------------------------------- CLI errors
def _one_line_failure(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("polygram: "), r.stderr
    for n in needles:
        assert n in lines[0]


@pytest.mark.parametrize(
    ("graph", "dictionary", "needles"),
    [
        ("missing.json", "batchdicts:gap_pair", ("--feature-graph", "cannot be read")),
        ("bad.json", "batchdicts:gap_pair", ("invalid JSON",)),
        ("incomplete.json", "batchdicts:gap_pair", ("missing key",)),
        ("g.json", "batchdicts:nope", ("has no attribute 'nope'",)),
        ("g.json", "no_such_module_xyz:build", ("cannot import",)),
        ("g.json", "batchdicts:broken", ("RuntimeError", "no dictionary today")),
        ("g.json", "batchdicts:not_a_dictionary", ("returned list", "Dictionary")),
        ("g.json", "batchdicts:NOT_CALLABLE", ("not callable",)),
        ("g.json", "batchdicts", ("module:callable",)),
        ("g.json", "saved.q.orca.md", (".q.orca.md", "clusters")),
        ("g.json", "batchdicts:toy", ("batch failed", "'a1' is not a feature")),
    ],
)
def test_failures_exit_1_with_one_line(
    dicts_module: Path,
    ref: dict[str, Any],
    graph: str,
    dictionary: str,
    needles: tuple[str, ...],
) -> None:
    cwd = dicts_module
    gap_pair_sharing_graph(ref, cwd / "g.json")
    (cwd / "bad.json").write_text("{not json")
    (cwd / "incomplete.json").write_text('{"kind": "sharing"}')
    (cwd / "saved.q.orca.md").write_text("# not read\n")  # refused before it is opened
    r = polygram(
        cwd, "batch", "--feature-graph", graph, "--dictionary", dictionary,
        "--output-dir", "out",
    )  # fmt: skip
    _one_line_failure(r, *needles)
    assert r.stdout == ""
    assert not (cwd / "out" / "batch_results.json").exists()


def test_bad_edge_leaves_nothing_behind(dicts_module: Path, ref: dict[str, Any]) -> None:
    gap_pair_sharing_graph(ref, dicts_module / "g.json")
    tmp = dicts_module / "tmp"
    tmp.mkdir()
    for extra in ([], ["--output-dir", "out"]):
        r = polygram(
            dicts_module, "batch", "--feature-graph", "g.json", "--dictionary", "batchdicts:toy",
            *extra, TMPDIR=str(tmp),
        )  # fmt: skip
        _one_line_failure(r, "batch failed")
    assert list(tmp.iterdir()) == []  # the fresh temp dir was removed again
    assert not (dicts_module / "out").exists()  # validated before anything is written


@pytest.mark.parametrize(
    "extra",
    [
        ["--top-k", "0"],
        ["--top-k", "17"],
        ["--top-k", "two"],
        ["--knobs", "everything"],
    ],
)
def test_argparse_errors_exit_2(dicts_module: Path, ref: dict[str, Any], extra: list[str]) -> None:
    gap_pair_sharing_graph(ref, dicts_module / "g.json")
    r = polygram(
        dicts_module, "batch", "--feature-graph", "g.json", "--dictionary", "batchdicts:gap_pair",
        *extra,
    )  # fmt: skip
    assert r.returncode == 2
    assert "usage:" in r.stderr


@pytest.mark.parametrize("missing", ["--feature-graph", "--dictionary"])
def test_required_flags(dicts_module: Path, missing: str) -> None:
    args = {"--feature-graph": "g.json", "--dictionary": "batchdicts:gap_pair"}
    del args[missing]
    r = polygram(dicts_module, "batch", *[x for kv in args.items() for x in kv])
    assert r.returncode == 2 and missing in r.stderr


def test_top_k_bounds_accepted(dicts_module: Path, ref: dict[str, Any]) -> None:
    gap_pair_sharing_graph(ref, dicts_module / "g.json")
    for k, n in (("1", 1), ("16", 2)):
        r = polygram(
            dicts_module, "batch", "--feature-graph", "g.json", "--dictionary",
            "batchdicts:gap_pair", "--top-k", k, "--knobs", "per_feature", "--output-dir", k,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        data = read_results(dicts_module / k / "batch_results.json")
        assert len(data["runs"]) == n


# ---------------------------------------------------------------- the API
def hea_dictionary(rotations: tuple[str, ...] = ("Ry", "Rz"), n_qubits: int = 2) -> Dictionary:
    enc = HEA_Rung2(depth=2, rotations=rotations, n_qubits=n_qubits)
    rng = np.random.default_rng(7)
    members = (("x1", "kx"), ("x2", "kx"), ("y1", "ky"))[: enc.max_features]
    feats = [Feature(n, c, beta=0.0, theta=rng.uniform(-1, 1, enc.theta_shape)) for n, c in members]
    hierarchy: dict[str, list[str]] = {}
    for n, c in members:
        hierarchy.setdefault(c, []).append(n)
    return Dictionary("Hea", feats, hierarchy, enc)


def hand_graph(*pairs: tuple[str, str]) -> FeatureGraph:
    edges = tuple(FeatureEdge(a, b, 0.9, 0.1, 0.5, False, "phase_headroom") for a, b in pairs)
    nodes = tuple(sorted({n for p in pairs for n in p}))
    return FeatureGraph("sharing", nodes, edges, (nodes,), {"threshold": 0.5})


def test_edge_knobs_rules(ref: dict[str, Any]) -> None:
    d = gap_pair(ref)
    assert edge_knobs(d, "a1", "a2", "cluster_shared") == ["ka.phi"]
    assert edge_knobs(d, "b2", "a1", "cluster_shared") == ["kb.phi", "ka.phi"]
    assert edge_knobs(d, "a1", "b1", "per_feature") == ["a1.phi", "b1.phi"]
    h = hea_dictionary()  # Rz is rotation 1; 2 qubits → q = 1
    assert edge_knobs(h, "x1", "y1", "cluster_shared") == ["kx.theta[1,0,1]", "ky.theta[1,0,1]"]
    assert edge_knobs(h, "x1", "x2", "per_feature") == ["x1.theta[1,0,1]", "x2.theta[1,0,1]"]
    no_rz = hea_dictionary(("Rx", "Ry"), n_qubits=1)  # no Rz → r = 0; 1 qubit → q = 0
    assert edge_knobs(no_rz, "x1", "x2", "cluster_shared") == ["kx.theta[0,0,0]"]
    with pytest.raises(ExperimentError, match="knobs"):
        edge_knobs(d, "a1", "a2", "all")


def test_api_compute_only_and_csv(ref: dict[str, Any], tmp_path: Path) -> None:
    d = gap_pair(ref)
    graph = build_sharing_graph(triage_dictionary(d))
    seen: list[tuple[int, int, str]] = []
    batch = BatchExperiment(d, graph.to_dict(), top_k=1, knobs="per_feature")
    results = batch.run(lambda i, k, run: seen.append((i, k, run.source)))
    assert isinstance(results, BatchResults)
    assert seen == [(1, 1, "a1")]
    (run,) = results.runs
    assert isinstance(run, BatchRun)
    assert run.artifact_subpath is None and results.output_dir is None
    assert run.seconds >= 0
    assert run.cancellation_efficiency == pytest.approx(
        (run.current_overlap - run.achieved_overlap) / run.predicted_gap, abs=0
    )
    assert list(tmp_path.iterdir()) == []
    csv_path = results.to_csv(tmp_path / "r.csv")
    header, row = csv_path.read_text().splitlines()
    assert header.split(",")[:3] == ["source", "target", "predicted_floor"]
    assert row.startswith(f"a1,a2,{sig6(run.predicted_floor)},")
    js = json.loads(results.to_json(tmp_path / "r.json").read_text())
    assert js["runs"][0]["artifact_subpath"] is None
    assert js["runs"][0]["achieved_overlap"] == sig6(run.achieved_overlap)


def test_api_graph_from_path(ref: dict[str, Any], tmp_path: Path) -> None:
    d = gap_pair(ref)
    g = gap_pair_sharing_graph(ref, tmp_path / "g.json")
    assert BatchExperiment(d, tmp_path / "g.json").feature_graph == g
    assert BatchExperiment(d, str(tmp_path / "g.json")).feature_graph == g


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"knobs": "shared"}, "knobs"),
    ],
)
def test_api_refuses_bad_options(ref: dict[str, Any], kwargs: dict[str, Any], match: str) -> None:
    d = gap_pair(ref)
    with pytest.raises(ExperimentError, match=match):
        BatchExperiment(d, build_sharing_graph(triage_dictionary(d)), **kwargs)


def test_api_refuses_bad_inputs(ref: dict[str, Any]) -> None:
    d = gap_pair(ref)
    g = build_sharing_graph(triage_dictionary(d))
    with pytest.raises(ExperimentError, match="Dictionary"):
        BatchExperiment("GapPair", g)  # type: ignore[arg-type]
    with pytest.raises(ExperimentError, match="FeatureGraph"):
        BatchExperiment(d, 42)  # type: ignore[arg-type]
    with pytest.raises(ExperimentError, match="'zz' is not a feature"):
        BatchExperiment(d, hand_graph(("a1", "zz")))
    with pytest.raises(ExperimentError, match="listed 2 times"):
        BatchExperiment(d, hand_graph(("a1", "a2"), ("a1", "a2")))
    with pytest.raises(ExperimentError, match="names one feature twice"):
        BatchExperiment(d, hand_graph(("a1", "a1")))
    # only the first top_k edges are validated and run
    assert len(BatchExperiment(d, hand_graph(("a1", "a2"), ("a1", "zz")), top_k=1).edges) == 1


def test_hea_batch_materialises_verifiable_machines(tmp_path: Path) -> None:
    d = hea_dictionary()
    results = BatchExperiment(d, hand_graph(("x1", "x2"), ("x1", "y1")), output_dir=tmp_path).run()
    for run in results.runs:
        assert run.warning is None
        assert all(".theta[1,0,1]" in k for k in run.best_knobs)
        at_opt = d.with_knobs(run.best_knobs).renamed("Hea_at_optimum")
        assert run.achieved_overlap == pytest.approx(
            at_opt.overlaps()[d.feature_index(run.source), d.feature_index(run.target)], abs=1e-12
        )
        assert run.achieved_overlap < run.current_overlap
        v = verify_qorca(tmp_path / f"{run.source}_x_{run.target}" / "Hea_at_optimum.q.orca.md",
                         dictionary=at_opt)  # fmt: skip
        assert v.valid, v.errors


def test_generic_flat_search_is_reported() -> None:
    # Rz first: the θ[0,0,1] slot is an Rz on |0⟩, a global phase per feature —
    # flat even for per-feature knobs, caught by the grid-span check.
    d = hea_dictionary(("Rz", "Ry"))
    (run,) = BatchExperiment(d, hand_graph(("x1", "y1")), knobs="per_feature").run().runs
    assert run.cancellation_efficiency == 0.0
    assert run.warning is not None and "no value of" in run.warning
    assert abs(run.achieved_overlap - run.current_overlap) < 1e-12


def test_rung3_batch_is_the_phase_only_search(ref: dict[str, Any], tmp_path: Path) -> None:
    base = gap_pair(ref)
    d = Dictionary("GapPair3", list(base.features), base.hierarchy, Rung3())
    results = BatchExperiment(
        d, hand_graph(("a1", "a2")), knobs="per_feature", output_dir=tmp_path
    ).run()
    (run,) = results.runs
    assert sorted(run.best_knobs) == ["a1.phi", "a2.phi"]
    mps = direct(base, "a1", "a2", ["a1.phi", "a2.phi"])
    # default amp branch: Rung3 overlaps equal the MPS ones
    assert run.achieved_overlap == pytest.approx(mps.after_overlap, abs=1e-12)
    at_opt = d.with_knobs(run.best_knobs).renamed("GapPair3_at_optimum")
    v = verify_qorca(tmp_path / "a1_x_a2" / "GapPair3_at_optimum.q.orca.md", dictionary=at_opt)
    assert v.valid, v.errors
    # the same flat-search rule holds on Rung3
    (flat,) = BatchExperiment(d, hand_graph(("a1", "a2"))).run().runs
    assert flat.cancellation_efficiency == 0.0 and "Rung3" in (flat.warning or "")


def test_singleton_clusters_give_null_tier_separation() -> None:
    d = Dictionary(
        "Solo", [Feature("s1", "k", 0.1), Feature("s2", "k2", -0.3)], {"k": ["s1"], "k2": ["s2"]}
    )
    results = BatchExperiment(d, hand_graph(("s1", "s2")), knobs="per_feature").run()
    assert results.runs[0].tier_separation_after is None  # every cluster a singleton
    run = json.loads(results.json_text())["runs"][0]
    assert run["tier_separation_after"] is None
    assert math.isfinite(run["achieved_overlap"])
