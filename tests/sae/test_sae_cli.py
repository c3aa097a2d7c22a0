"""``polygram sae-import`` and ``polygram analyze`` through real subprocesses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sae_helpers import TOY, fingerprint, saelens_folder, to_bf16_bits, write_bf16, write_numpy

from polygram.analysis import predict_cancellation_depth
from polygram.sae import load_toy_sae

TOL = 1e-12


def polygram(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polygram.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def checkpoint(tmp_path: Path, ref: dict[str, Any]) -> Path:
    case = ref["sae_import_cli"]["inputs"]
    write_numpy(tmp_path / "sae_wdec.safetensors", W_dec=np.array(case["W_dec"], np.float32))
    (tmp_path / "names.json").write_text(json.dumps(case["names.json"]))
    return tmp_path / "sae_wdec.safetensors"


def test_chain_sae_import_then_analyze(
    tmp_path: Path, checkpoint: Path, ref: dict[str, Any]
) -> None:
    case = ref["sae_import_cli"]
    before = fingerprint(checkpoint)
    r = polygram(tmp_path, *case["inputs"]["argv"])
    assert r.returncode == 0, r.stderr
    out = tmp_path / "picked.json"
    assert r.stdout == ""
    assert r.stderr == f"polygram: wrote 3 features → {out.resolve()}\n"
    assert json.loads(out.read_text()) == case["output_json"]
    assert out.read_text() == json.dumps(case["output_json"], indent=2)  # exact text layout
    assert fingerprint(checkpoint) == before

    want = ref["sae_import_cli_analyze"]
    r = polygram(tmp_path, *want["inputs"]["argv"])
    assert r.returncode == 0, r.stderr
    report = tmp_path / "picked_report.md"
    assert r.stdout == f"polygram: analyzed 3 features → {report.resolve()} (score=0.0044)\n"
    md = report.read_text()
    for line in (
        "- SAE source: `picked.json`",
        "- Selected feature_ids: [0, 2, 5]",
        "- Cluster method: `kmeans`",
        "- β variance explained: 0.6616",
        "- Projection→Polygram tier correlation: 0.9668",
        "| alpha_feat ↔ gamma_feat | intra | 0.9388 | 0.7230 | 0.2158 | 0.8309 | +0.1079 |",
        "| alpha_feat ↔ feat_5 | cross | 0.5065 | 0.5065 | 0.0000 | 0.5821 | -0.0756 |",
        "| gamma_feat ↔ feat_5 | cross | 0.6668 | 0.6668 | 0.0000 | 0.7663 | -0.0995 |",
        "| gamma_feat | cluster_1 | 0.1037 |",
        "**Score: 0.0044**  (range [0, 1])",
    ):
        assert line in md.splitlines(), line

    # full precision: the same pipeline in-process on the file the CLI wrote
    pred = predict_cancellation_depth(load_toy_sae(out), [0, 2, 5], assign_gamma=True)
    d, rep = pred.dictionary, pred.selection_report
    for f, w in zip(d.features, want["features"]):
        assert (f.name, f.cluster) == (w["name"], w["cluster"])
        assert abs(f.beta - w["beta"]) <= TOL and abs(f.gamma - w["gamma"]) <= TOL
    assert {k: list(v) for k, v in d.hierarchy.items()} == want["hierarchy"]
    r_want = want["report"]
    assert rep.cluster_method == r_want["cluster_method"] and rep.warnings == []
    assert abs(rep.beta_variance_explained - r_want["beta_variance_explained"]) <= TOL
    assert abs(rep.tier_preservation - r_want["tier_preservation"]) <= TOL  # type: ignore[operator]
    for n, v in r_want["reconstruction_error"].items():
        assert abs(rep.reconstruction_error[n] - v) <= TOL
    for p, w in zip(pred.pairs, want["pairs"]):
        assert (p.feature_a, p.feature_b) == (w["feature_a"], w["feature_b"])
        for k in ("current_overlap", "structural_floor", "M", "V", "cancellation_gap"):
            assert abs(getattr(p, k) - w[k]) <= TOL
    for n, v in want["feature_sensitivity"].items():
        assert abs(pred.feature_sensitivity[n] - v) <= TOL
    assert abs(pred.encoding_suitability_score - want["encoding_suitability_score"]) <= TOL

    # without --assign-gamma: tier correlation 0.9931, score 0.0000 (spec 05 §5.7)
    r = polygram(tmp_path, "analyze", "picked.json", "--features", "0,2,5", "--output", "plain.md")
    assert r.returncode == 0, r.stderr
    plain = (tmp_path / "plain.md").read_text()
    assert "- Projection→Polygram tier correlation: 0.9931" in plain
    assert "**Score: 0.0000**" in plain


def test_sae_import_to_stdout_names_variants(tmp_path: Path, checkpoint: Path) -> None:
    r = polygram(
        tmp_path, "sae-import", checkpoint.name, "--features", "5, ,1", "--names", '{"x": 5}'
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["description"] == "Polygram sae-import — sae_wdec.safetensors, 2 features"
    assert [(f["feature_id"], f["name"]) for f in doc["features"]] == [(5, "x"), (1, "feat_1")]
    r = polygram(tmp_path, "sae-import", checkpoint.name, "--names", "{}")
    assert r.returncode == 0 and len(json.loads(r.stdout)["features"]) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["sae-import", "missing.safetensors"],
            "sae-import failed: SAE checkpoint 'missing.safetensors': no such file",
        ),
        (
            ["sae-import", "sae_wdec.safetensors", "--features", "0,x"],
            "expects comma-separated ints",
        ),
        (
            ["sae-import", "sae_wdec.safetensors", "--features", " , "],
            "expects comma-separated ints",
        ),
        (
            ["sae-import", "sae_wdec.safetensors", "--features", "0,0"],
            "sae-import failed: feature_ids: repeated",
        ),
        (["sae-import", "sae_wdec.safetensors", "--features", "6"], "out of range"),
        (["sae-import", "sae_wdec.safetensors", "--names", "{bad"], "--names: not valid JSON"),
        (["sae-import", "sae_wdec.safetensors", "--names", "[1]"], "expected an object"),
        (["sae-import", "sae_wdec.safetensors", "--names", '{"a": 1, "b": "c"}'], "all strings"),
        (["sae-import", "sae_wdec.safetensors", "--names", '{"a": 1.5}'], "all strings"),
        (
            ["sae-import", "sae_wdec.safetensors", "--names", '{"a": "b"}'],
            "key 'a' is not an integer id",
        ),
        (
            ["sae-import", "sae_wdec.safetensors", "--names", '{"a": 1, "b": 1}'],
            "id 1 is given two names",
        ),
        (
            ["sae-import", "sae_wdec.safetensors", "--names", '{"9": "z"}'],
            "names: feature id 9 out of range",
        ),
        (["sae-import", "names.json"], "not a safetensors file"),
        (
            ["analyze", "nope.json", "--features", "0"],
            "analyze failed: toy SAE JSON 'nope.json': no such file",
        ),
        (
            ["analyze", "picked.json", "--features", "0,1,2,3,4,5,6,7,8"],
            "analyze failed: feature_ids: 9 selected",
        ),
        (
            ["analyze", "picked.json", "--features", "0,42"],
            "analyze failed: feature_ids: [42] not in records",
        ),
        (["analyze", "picked.json", "--features", "0,q"], "expects comma-separated ints"),
        (
            ["analyze", "sae_wdec.safetensors", "--features", "0,7"],
            "analyze failed: feature_ids: [7] out of range",
        ),
        (["analyze", "names.json", "--features", "0"], "missing top-level 'features'"),
    ],
)
def test_failures_exit_1_with_one_line(
    tmp_path: Path, checkpoint: Path, args: list[str], message: str
) -> None:
    (tmp_path / "picked.json").write_text(TOY.read_text())
    r = polygram(tmp_path, *args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("polygram: ")
    assert message in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "x.json"],  # --features is required
        ["analyze", "x.json", "--features", "0", "--n-clusters", "0"],
        ["analyze", "x.json", "--features", "0", "--n-clusters", "two"],
        ["analyze", "x.json", "--features", "0", "--sharing-threshold", "high"],
        ["sae-import"],
    ],
)
def test_argparse_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    r = polygram(tmp_path, *args)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_analyze_toy_with_graphs(tmp_path: Path, ref: dict[str, Any]) -> None:
    r = polygram(
        tmp_path, "analyze", str(TOY), "--features", "0,1,4,5", "--output", "out/deep/report.md",
        "--sharing-graph", "g/sharing.json", "--separation-graph", "g/sep.json",
        "--separation-threshold", "0.2",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [
        f"polygram: analyzed 4 features → {(tmp_path / 'out/deep/report.md').resolve()} (score=0.0000)",
        f"polygram: wrote sharing graph → {(tmp_path / 'g/sharing.json').resolve()} (threshold=0.5)",
        f"polygram: wrote separation graph → {(tmp_path / 'g/sep.json').resolve()} (threshold=0.2)",
    ]
    case = ref["analysis"][0]
    for name, key in (
        ("sharing", "sharing_graph_json_threshold_0.5"),
        ("sep", "separation_graph_json_threshold_0.2"),
    ):
        got = json.loads((tmp_path / "g" / f"{name}.json").read_text())
        want = json.loads(json.dumps(case[key]))
        got["metadata"].pop("formula"), want["metadata"].pop("formula")
        for eg, ew in zip(got["edges"], want["edges"]):
            for k in ("weight", "floor", "gap"):
                assert abs(eg.pop(k) - ew.pop(k)) <= TOL
        assert got == want
    assert f"- SAE source: `{TOY}`" in (tmp_path / "out/deep/report.md").read_text()


def test_analyze_reads_safetensors_and_saelens_folders(
    tmp_path: Path, checkpoint: Path, ref: dict[str, Any]
) -> None:
    w = np.array(ref["sae_import_cli"]["inputs"]["W_dec"], np.float32)
    bf = write_bf16(tmp_path / "bf.safetensors", "W_dec", to_bf16_bits(w))
    folder = saelens_folder(tmp_path / "lens", w.T.copy(), key="decoder.weight")
    reports = {}
    for src in (checkpoint.name, bf.name, folder.name):
        r = polygram(
            tmp_path,
            "analyze",
            src,
            "--features",
            "0,2,5",
            "--assign-gamma",
            "--output",
            f"{src}.md",
        )
        assert r.returncode == 0, r.stderr
        reports[src] = (tmp_path / f"{src}.md").read_text()
        assert re.search(r"\(score=0\.\d{4}\)\n$", r.stdout)
    # same rows (a float32 file and its SAELens twin) → the same report, bar the source line
    strip = lambda s: "\n".join(x for x in s.splitlines() if not x.startswith("- SAE source"))  # noqa: E731
    assert strip(reports[checkpoint.name]) == strip(reports[folder.name])
    assert "| feat_0 ↔ feat_2 | intra | 0.9388 |" in reports[checkpoint.name]
