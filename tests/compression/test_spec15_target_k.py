"""Spec 15 §3 (target-K, Pareto, ``ParetoReport``, the CLI modes), §4
(``kl_attribution`` through ``Compressor``), §7.3 (``Compressor(config=)``)
and §9.2 (``W_dec``-only checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file
from spec15_cases import CASES, clusters_as_dicts, hand_report, scored_pairs, write_synth_sae

from polygram import CompressionConfig, Compressor, ParetoOutcome, ParetoReport
from polygram._io import sha256_file
from polygram.cli import main
from polygram.compression import CompressionReport
from polygram.errors import CompressionError


def _case(key: str, tmp_path: Path) -> tuple[Any, Path, dict[str, Any]]:
    inp = CASES[key]["inputs"]
    pairs = inp["report_pairs"]
    if isinstance(pairs, dict):
        pairs = scored_pairs(**pairs["scored_pairs"])
    sae = write_synth_sae(tmp_path / "sae.safetensors", inp["sae"], keys=inp.get("keys"))
    return hand_report(inp["feature_ids"], pairs), sae, inp


@pytest.mark.parametrize("key", ["target_k_chain", "target_k_random"])
def test_pareto_reference_case(key: str, tmp_path: Path) -> None:
    report, sae, inp = _case(key, tmp_path)
    want = CASES[key]["expected"]
    c = Compressor(report, sae, rep_selection=inp["rep_selection"], score_field=inp["score_field"])
    curve = c.plan_pareto(inp["targets"])
    assert list(curve.targets) == want["pareto_targets"]
    assert [o.target_k for o in curve.outcomes] == want["pareto_targets"]
    for o in curve.outcomes:
        w = want["outcomes"][str(o.target_k)]
        assert o.reached_target is w["reached_target"]
        assert clusters_as_dicts(o.plan) == w["clusters"]
        assert o.plan.n_features_kept == w["n_features_kept"]
        assert o.plan.n_features_zeroed == w["n_features_zeroed"]
        assert o.plan.feature_ids == tuple(inp["feature_ids"])
        # plan_with_target(K) == plan_pareto([K]).outcomes[0].plan
        assert c.plan_with_target(o.target_k) == o.plan
    assert curve.n_features_input == inp["sae"]["n"]
    assert curve.sae_checkpoint_sha256 == sha256_file(sae)
    assert curve.score_field == inp["score_field"]


def test_run_uses_the_configured_target(tmp_path: Path) -> None:
    report, sae, _ = _case("target_k_chain", tmp_path)
    want = CASES["target_k_chain"]["expected"]["outcomes"]["2"]
    res = Compressor(report, sae, config=CompressionConfig(target_n_features_kept=2)).run(
        tmp_path / "out.safetensors"
    )
    assert clusters_as_dicts(res.plan) == want["clusters"]
    rows = load_file(str(tmp_path / "out.safetensors"))["W_dec"]
    zeroed = [f for c in want["clusters"] for f in c["zeroed"]]
    assert not rows[zeroed].any()
    assert np.abs(rows[[c["representative"] for c in want["clusters"]]]).sum() > 0
    # without a target run() is the threshold plan (no confirmed pairs → nothing)
    plain = Compressor(report, sae).run(tmp_path / "plain.safetensors")
    assert plain.plan.clusters == ()


def test_representatives_apply_to_the_threshold_plan_only(tmp_path: Path) -> None:
    _, sae, inp = _case("target_k_chain", tmp_path)
    confirmed = hand_report(
        inp["feature_ids"],
        [dict(p, gate_pass=True) for p in inp["report_pairs"][:2]] + inp["report_pairs"][2:],
    )
    c = Compressor(confirmed, sae, representatives={0: 1})
    assert c.plan().clusters[0].representative == 1
    # the target plan's cluster 0 keeps the rule's choice
    assert c.plan_with_target(3).clusters[0].representative == 0


def test_target_refusals(tmp_path: Path) -> None:
    report, sae, _ = _case("target_k_chain", tmp_path)
    c = Compressor(report, sae)
    with pytest.raises(CompressionError, match="no target"):
        c.plan_with_target()
    for bad in (0, -1, True, 2.0, "3"):
        with pytest.raises(CompressionError, match=r"integer >= 1"):
            c.plan_with_target(bad)  # type: ignore[arg-type]
        with pytest.raises(CompressionError, match=r"integer >= 1"):
            Compressor(report, sae, target_n_features_kept=bad)  # type: ignore[arg-type]
    for bad_targets in ([], [0], [3, True], "3", None):
        with pytest.raises(CompressionError, match="targets"):
            c.plan_pareto(bad_targets)  # type: ignore[arg-type]
    assert c.plan_pareto([np.int64(2), 2, 3]).targets == (3, 2)
    with pytest.raises(CompressionError, match=r"score_field.*'kl'.*decoder_overlap"):
        Compressor(report, sae, score_field="kl")


def test_score_field_without_finite_scores(tmp_path: Path) -> None:
    _, sae, inp = _case("target_k_chain", tmp_path)
    report = hand_report(inp["feature_ids"], [{"i": 0, "j": 1, "jaccard": None}])
    with pytest.raises(CompressionError, match=r"score_field='jaccard'.*decoder_overlap"):
        Compressor(report, sae, score_field="jaccard").plan_pareto([1])
    # decoder_overlap ranks the same report
    assert Compressor(report, sae, score_field="decoder_overlap").plan_with_target(1).clusters


def test_kl_attribution_case(tmp_path: Path) -> None:
    report, sae, inp = _case("kl_attribution_swapped_pairs", tmp_path)
    plan = Compressor(report, sae, rep_selection=inp["rep_selection"]).plan()
    assert clusters_as_dicts(plan) == CASES["kl_attribution_swapped_pairs"]["expected"]["clusters"]
    # and it works on target-K plans too
    assert Compressor(report, sae, rep_selection="kl_attribution").plan_with_target(1) == plan


def test_kl_attribution_refuses_a_report_without_kl(tmp_path: Path) -> None:
    _, sae, inp = _case("target_k_chain", tmp_path)
    report = hand_report(inp["feature_ids"], [{"i": 0, "j": 1, "gate_pass": True}])
    with pytest.raises(CompressionError, match=r"cluster 0 \(members \[0, 1\]\).*scale_aware"):
        Compressor(report, sae, rep_selection="kl_attribution").plan()


def test_config_precedence_case(tmp_path: Path) -> None:
    report, sae, _ = _case("target_k_chain", tmp_path)
    c = Compressor(
        report,
        sae,
        strategy="zero",
        config=CompressionConfig(strategy="merge", rep_selection="scale_aware"),
    )
    want = CASES["config_precedence"]["expected"]["c"]
    assert (c.strategy, c.rep_selection, c.merge_mode) == (
        want["strategy"],
        want["rep_selection"],
        want["merge_mode"],
    )
    assert c.score_field == "polygram_overlap" and c.target_n_features_kept is None
    with pytest.raises(TypeError, match="CompressionConfig"):
        Compressor(report, sae, config={"strategy": "merge"})  # type: ignore[arg-type]


def test_wdec_only_checkpoint(tmp_path: Path) -> None:
    report, sae, inp = _case("wdec_only_compress", tmp_path)
    want = CASES["wdec_only_compress"]["expected"]
    res = Compressor(report, sae, strategy=inp["strategy"]).run(tmp_path / "out.safetensors")
    out = load_file(str(tmp_path / "out.safetensors"))
    assert sorted(out) == want["keys"]
    src = load_file(str(sae))["W_dec"]
    for f in range(src.shape[0]):
        if f in want["zero_rows"]:
            assert not out["W_dec"][f].any()
        else:
            np.testing.assert_array_equal(out["W_dec"][f], src[f])
    assert clusters_as_dicts(res.plan) == want["clusters"]
    assert res.report.n_features_zeroed == want["n_features_zeroed"]
    # merge rescales the representative's row of a decoder-only SAE too
    merged = Compressor(report, sae, strategy="merge").run(tmp_path / "merged.safetensors")
    rep = want["clusters"][0]["representative"]
    assert np.linalg.norm(load_file(str(tmp_path / "merged.safetensors"))["W_dec"][rep]) == (
        pytest.approx(merged.plan.clusters[0].merged_norm, rel=1e-6)
    )


def test_debug_dictionary_follows_the_encoding(tmp_path: Path) -> None:
    from polygram import HEA_Rung2, Rung3

    report, sae, _ = _case("target_k_chain", tmp_path)
    hea = Compressor(report, sae, encoding=HEA_Rung2(n_qubits=2, depth=1))
    res = hea.run(tmp_path / "h.safetensors")
    assert res.dictionary is not None and len(res.dictionary.features) == 4  # HEA cap 4, not 8
    r3 = Compressor(report, sae, encoding=Rung3(), assign_phase_knobs=True).run(
        tmp_path / "r.safetensors"
    )
    assert r3.dictionary is not None and isinstance(r3.dictionary.encoding, Rung3)
    assert any(f.alpha != 0 for f in r3.dictionary.features)


# ------------------------------------------------------------- ParetoReport
def _curve(tmp_path: Path) -> ParetoReport:
    report, sae, inp = _case("target_k_random", tmp_path)
    return Compressor(report, sae).plan_pareto(inp["targets"])


def test_pareto_json_round_trip(tmp_path: Path) -> None:
    curve = _curve(tmp_path)
    text = curve.to_json(tmp_path / "deep" / "dir" / "pareto.json")
    assert (tmp_path / "deep" / "dir" / "pareto.json").read_text() == text
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert doc["schema_version"] == 1 and doc["targets"] == [6, 4, 2]
    assert doc["n_features_input"] == 7
    assert [o["n_features_zeroed"] for o in doc["outcomes"]] == [3, 3, 4]
    assert doc["outcomes"][0]["clusters"][0]["merged_norm"] is None
    assert ParetoReport.from_json(text) == curve
    assert ParetoReport.from_json(tmp_path / "deep" / "dir" / "pareto.json") == curve
    assert ParetoReport.from_json(str(tmp_path / "deep" / "dir" / "pareto.json")) == curve


def test_pareto_json_of_0_15_loads(tmp_path: Path) -> None:
    curve = _curve(tmp_path)
    doc = curve.to_dict()
    del doc["n_features_input"]
    for o in doc["outcomes"]:
        del o["n_features_kept"], o["n_features_zeroed"]
    back = ParetoReport.from_json(json.dumps(doc))
    assert back.n_features_input is None
    assert [o.plan for o in back.outcomes] == [o.plan for o in curve.outcomes]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("score_field"), "score_field"),
        (lambda d: d.pop("outcomes"), "outcomes"),
        (lambda d: d["outcomes"][0].pop("clusters"), "clusters"),
        (lambda d: d["outcomes"][0].update(n_features_zeroed=99), "n_features_zeroed"),
        (lambda d: d["outcomes"][0].update(reached_target="yes"), "reached_target"),
        (lambda d: d.update(targets=[1, 2, 3]), "targets"),
        (lambda d: d["outcomes"][0]["clusters"][0].update(members="0,2"), "members"),
    ],
)
def test_pareto_json_refusals(tmp_path: Path, edit: Any, match: str) -> None:
    doc = _curve(tmp_path).to_dict()
    edit(doc)
    with pytest.raises(ValueError, match=match):
        ParetoReport.from_json(json.dumps(doc))


def test_outcome_objects() -> None:
    assert ParetoOutcome.__dataclass_fields__.keys() == {"target_k", "reached_target", "plan"}


# ---------------------------------------------------------------------- CLI
def _cli_files(tmp_path: Path) -> dict[str, Path]:
    report, sae, _ = _case("target_k_chain", tmp_path)
    report.to_json(tmp_path / "report.json")
    return {"report": tmp_path / "report.json", "sae": sae}


def _argv(f: dict[str, Path], *extra: str, output: Path) -> list[str]:
    return [
        "compress",
        "--validation-report",
        str(f["report"]),
        "--sae-checkpoint",
        str(f["sae"]),
        "--output",
        str(output),
        *extra,
    ]


def test_cli_target_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _cli_files(tmp_path)
    out = tmp_path / "k2.safetensors"
    rc = main(
        _argv(
            f,
            "--target-features",
            "2",
            "--output-checkpoint",
            str(out),
            output=tmp_path / "k2.json",
        )
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert err.rstrip().endswith("target_k=2 reached=yes")
    rep = CompressionReport.from_json(tmp_path / "k2.json")
    assert (
        clusters_as_dicts(rep.plan)
        == CASES["target_k_chain"]["expected"]["outcomes"]["2"]["clusters"]
    )
    rc = main(
        _argv(
            f,
            "--target-features",
            "4",
            "--output-checkpoint",
            str(out),
            output=tmp_path / "k4.json",
        )
    )
    assert rc == 0 and capsys.readouterr().err.rstrip().endswith("target_k=4 reached=no")


def test_cli_pareto(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _cli_files(tmp_path)
    out = tmp_path / "curve"
    rc = main(
        _argv(
            f,
            "--pareto",
            "1,2,3,4,2",
            "--pareto-materialize",
            "--score-field",
            "polygram_overlap",
            output=out,
        )
    )
    assert rc == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("K=")]
    want = CASES["target_k_chain"]["expected"]["outcomes"]
    assert lines == [
        f"K={k} kept={want[k]['n_features_kept']} zeroed={want[k]['n_features_zeroed']} "
        f"reached={'yes' if want[k]['reached_target'] else 'no'}"
        for k in ("4", "3", "2", "1")
    ]
    curve = ParetoReport.from_json(out / "pareto.json")
    assert curve.targets == (4, 3, 2, 1)
    for o in curve.outcomes:
        rep = CompressionReport.from_json(out / "pareto" / f"k_{o.target_k}.json")
        assert [c.members for c in rep.plan.clusters] == [c.members for c in o.plan.clusters]
        rows = load_file(str(out / "pareto" / f"k_{o.target_k}.safetensors"))["W_dec"]
        zeroed = [z for c in o.plan.clusters for z in c.zeroed]
        assert not rows[zeroed].any()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ("--pareto", "3,2", "--output-checkpoint", "x.safetensors"),
            "--output-checkpoint does nothing",
        ),
        (
            ("--pareto-materialize", "--output-checkpoint", "x.safetensors"),
            "--pareto-materialize needs --pareto",
        ),
        (("--score-field", "jaccard", "--output-checkpoint", "x.safetensors"), "--score-field"),
        (
            (
                "--target-features",
                "2",
                "--representatives",
                "0=1",
                "--output-checkpoint",
                "x.safetensors",
            ),
            "--representatives applies to threshold mode only",
        ),
        (("--target-features", "2"), "--output-checkpoint is required"),
        ((), "--output-checkpoint is required"),
    ],
)
def test_cli_refuses_flags_that_do_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    f = _cli_files(tmp_path)
    assert main(_argv(f, *extra, output=tmp_path / "o.json")) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [
        ("--target-features", "0"),
        ("--target-features", "x"),
        ("--pareto", "3,0"),
        ("--pareto", "a,b"),
        ("--pareto", "3", "--target-features", "2"),
        ("--score-field", "kl"),
    ],
)
def test_cli_argparse_refusals(tmp_path: Path, extra: tuple[str, ...]) -> None:
    f = _cli_files(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(_argv(f, *extra, output=tmp_path / "o.json"))
    assert e.value.code == 2


def test_cli_pareto_output_must_be_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _cli_files(tmp_path)
    (tmp_path / "taken").write_text("x")
    assert main(_argv(f, "--pareto", "2", output=tmp_path / "taken")) == 2
    assert "is an existing file" in capsys.readouterr().err


def test_cli_kl_attribution_choice(tmp_path: Path) -> None:
    report, sae, _ = _case("kl_attribution_swapped_pairs", tmp_path)
    report.to_json(tmp_path / "r.json")
    rc = main(
        [
            "compress",
            "--validation-report",
            str(tmp_path / "r.json"),
            "--sae-checkpoint",
            str(sae),
            "--output-checkpoint",
            str(tmp_path / "o.safetensors"),
            "--output",
            str(tmp_path / "o.json"),
            "--rep-selection",
            "kl_attribution",
        ]
    )
    assert rc == 0
    assert CompressionReport.from_json(tmp_path / "o.json").plan.clusters[0].representative == 4
