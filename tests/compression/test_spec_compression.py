"""Spec 11 audit: statements of the compression spec pinned with hand-computed
values (the far-cluster attribution example, scale ratios, JSON shape, output
file contents, the atomic write, loader precedence, the CLI summary) and the
seed README's Compressor snippet run as written."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from compression_fixtures import build_report, synth_sae
from safetensors.numpy import load_file, save_file

from polygram.compression import CompressionReport, Compressor
from polygram.compression.compressor import fire_totals
from polygram.compression.report import ClusterPlan, CompressionPlan

# --------------------------------------------------------------- §3.2 / §11.1


FAR = (8371, 2287, 68, 13737)  # a validator panel order in which some pairs have i > j
FAR_FIRES = {8371: 12, 2287: 13, 68: 12, 13737: 12}


def _buggy_totals(pairs: object) -> dict[int, int]:
    """0.0.1's attribution: n_fires_i to min(i, j), n_fires_j to max(i, j)."""
    tot: dict[int, int] = {}
    for p in pairs:  # type: ignore[attr-defined]
        lo, hi = min(p.i, p.j), max(p.i, p.j)
        tot[lo] = tot.get(lo, 0) + p.n_fires_i
        tot[hi] = tot.get(hi, 0) + p.n_fires_j
    return tot


def test_far_cluster_representative_uses_correct_attribution(tmp_path: Path) -> None:
    """Spec 11 §3.2: correct totals 8371:36, 2287:39, 68:36, 13737:36 → 2287;
    0.0.1's swapped totals (2287:37, 8371:37, 68:37, 13737:36) would pick 68."""
    n = max(FAR) + 1  # an in-memory SAE wide enough for the far ids
    sae = {
        "W_enc": np.zeros((2, n), np.float32),
        "b_enc": np.zeros(n, np.float32),
        "W_dec": np.ones((n, 2), np.float32),
        "b_dec": np.zeros(2, np.float32),
    }
    report = build_report(0, itertools.combinations(FAR, 2), n_fires=FAR_FIRES, feature_ids=FAR)
    assert any(p.i > p.j for p in report.pairs)
    assert fire_totals(report.pairs) == {8371: 36, 2287: 39, 68: 36, 13737: 36}
    assert _buggy_totals(report.pairs) == {2287: 37, 8371: 37, 68: 37, 13737: 36}
    (cluster,) = Compressor(report, sae).plan().clusters
    assert cluster.members == (68, 2287, 8371, 13737)
    assert cluster.representative == 2287
    assert cluster.zeroed == (68, 8371, 13737)
    assert cluster.cluster_norm_mean is None and cluster.merged_norm is None
    assert Compressor(report, sae).plan().feature_ids == FAR  # report order kept


# ------------------------------------------------------------- §4.8 / §4.10


NORMS = {0: 1.0, 1: 2.0, 2: 3.0, 5: 4.0, 6: 4.0}
CONF = [(0, 1), (1, 2), (5, 6)]


@pytest.mark.parametrize(
    ("strategy", "mode", "ratio"),
    [
        # reps by n_fires = 10·(fid+1): 2 (norm 3) and 6 (norm 4); mass 1+2+3+4+4 = 14
        ("zero", "freq_weighted", (3 + 4) / 14),
        # simple mean: (2·3 + 4·2) / 14
        ("merge", "simple_mean", 1.0),
        # fires over all 15 pairs of each fid: 150·(fid+1);
        # cluster 0: (1·150 + 2·300 + 3·450) / 900 = 7/3, cluster 1: 4 → (7/3·3 + 4·2)/14
        ("merge", "freq_weighted", 15 / 14),
    ],
)
def test_scale_ratio_and_counts_by_hand(
    tmp_path: Path, strategy: str, mode: str, ratio: float
) -> None:
    sae = synth_sae(tmp_path / "sae.safetensors", row_norms=NORMS)
    comp = Compressor(build_report(16, CONF), sae, strategy=strategy, merge_mode=mode)  # type: ignore[arg-type]
    res = comp.run(tmp_path / "out.safetensors")
    r = res.report
    assert r.scale_compression_ratio == pytest.approx(ratio, rel=1e-6)
    # n_features_kept counts representatives (clusters), not the 13 live features
    assert (r.n_clusters, r.n_features_kept, r.n_features_zeroed) == (2, 2, 3)
    c0, c1 = r.plan.clusters
    assert (c0.representative, c0.zeroed, c1.representative, c1.zeroed) == (2, (0, 1), 6, (5,))
    assert c0.cluster_norm_mean == pytest.approx(2.0, rel=1e-6)
    assert c0.cluster_norm_std == pytest.approx(np.sqrt(2 / 3), rel=1e-6)  # ddof 0
    assert c1.cluster_norm_std == pytest.approx(0.0, abs=1e-6)
    w = load_file(str(res.output_checkpoint))["W_dec"]
    if strategy == "merge":
        want = 7 / 3 if mode == "freq_weighted" else 2.0
        assert c0.merged_norm == pytest.approx(want, rel=1e-6)
        assert np.linalg.norm(w[2]) == pytest.approx(want, rel=1e-6)
    else:
        assert c0.merged_norm is None
        assert np.linalg.norm(w[2]) == pytest.approx(3.0, rel=1e-6)


# ------------------------------------------------------------------ §4 / §6


def test_output_keeps_every_tensor_and_dtype_and_source_is_untouched(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    src = tmp_path / "src.safetensors"
    tensors = {
        "W_enc": rng.standard_normal((8, 16)).astype(np.float16),
        "b_enc": rng.standard_normal(16).astype(np.float16),
        "W_dec": rng.standard_normal((16, 8)).astype(np.float16),
        "b_dec": rng.standard_normal(8).astype(np.float16),
        "threshold": np.ones(16, np.float16),
    }
    save_file(tensors, str(src))
    before = src.read_bytes()
    res = Compressor(build_report(16, [(3, 4)]), src).run(tmp_path / "o.safetensors")
    assert src.read_bytes() == before
    out = load_file(str(res.output_checkpoint))
    assert sorted(out) == ["W_dec", "W_enc", "b_dec", "b_enc", "threshold"]  # spec 16 §2.5
    assert all(v.dtype == np.float16 for v in out.values())
    # rep 4 (more fires) and singletons are the source exactly; 3 is silenced
    np.testing.assert_array_equal(out["W_dec"][4], tensors["W_dec"][4])
    np.testing.assert_array_equal(out["b_dec"], tensors["b_dec"])
    np.testing.assert_array_equal(out["threshold"], tensors["threshold"])  # kept
    assert not out["W_dec"][3].any() and not out["W_enc"][:, 3].any() and out["b_enc"][3] == 0
    assert res.report.source_checkpoint == str(src)
    assert res.report.output_checkpoint == str((tmp_path / "o.safetensors").resolve())
    assert (tmp_path / "o.cfg.json").is_file()


def test_failed_write_leaves_neither_output_nor_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.numpy

    sae = synth_sae(tmp_path / "sae.safetensors")
    out_dir = tmp_path / "out"

    def boom(tensors: object, filename: str, metadata: object = None) -> None:
        assert Path(filename).parent == out_dir and Path(filename).name.startswith(".o.")
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        Compressor(build_report(8, [(1, 2)]), sae).run(out_dir / "o.safetensors")
    assert os.listdir(out_dir) == []


def test_loader_takes_the_first_alias_present(tmp_path: Path) -> None:
    """Spec 11 §6: ``W_dec`` wins over ``decoder.weight`` when both are stored."""
    rng = np.random.default_rng(5)
    w_dec = rng.standard_normal((16, 8)).astype(np.float32)
    src = tmp_path / "both.safetensors"
    save_file(
        {
            "W_enc": rng.standard_normal((8, 16)).astype(np.float32),
            "b_enc": np.zeros(16, np.float32),
            "W_dec": w_dec,
            "decoder.weight": np.zeros((8, 16), np.float32),
            "b_dec": np.zeros(8, np.float32),
        },
        str(src),
    )
    res = Compressor(build_report(16, [(0, 1)]), src).run(tmp_path / "o.safetensors")
    np.testing.assert_array_equal(load_file(str(res.output_checkpoint))["W_dec"][1], w_dec[1])


def test_negative_ids_in_an_explicit_plan_are_refused(tmp_path: Path) -> None:
    """A negative id would silently index from the end of W_dec."""
    sae = synth_sae(tmp_path / "sae.safetensors")
    comp = Compressor(build_report(8, [(1, 2)]), sae)
    plan = CompressionPlan((ClusterPlan(0, (-1, 2), 2, (-1,)),), comp.plan().feature_ids)
    with pytest.raises(IndexError, match=r"cluster 0: feature id\(s\) \[-1\] out of range"):
        comp.apply(plan, tmp_path / "o.safetensors")
    assert not (tmp_path / "o.safetensors").exists()


# ------------------------------------------------------------------------ §7


def test_json_keys_and_unrounded_floats(tmp_path: Path) -> None:
    sae = synth_sae(tmp_path / "sae.safetensors", row_norms={0: 1.0, 1: 1.0, 2: 2.0})
    res = Compressor(build_report(8, [(0, 1), (1, 2)]), sae).run(tmp_path / "o.safetensors")
    text = res.report.to_json()
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert set(doc) == {
        "schema_version", "source_checkpoint", "source_checkpoint_sha256",
        "output_checkpoint", "output_checkpoint_sha256",
        "validation_report_dictionary_name", "validation_report_schema_version",
        "strategy", "feature_ids", "clusters", "n_features_zeroed", "n_features_kept",
        "n_clusters", "scale_compression_ratio", "sae_settings", "output_layout",
        "decoder_row_kept", "eval_before", "eval_after", "eval_change",
    }  # fmt: skip
    (c,) = doc["clusters"]
    assert set(c) == {
        "cluster_id", "members", "representative", "zeroed",
        "cluster_norm_mean", "cluster_norm_std", "merged_norm",
    }  # fmt: skip
    # mean of (1, 1, 2) = 4/3 is written at full precision, not 6 s.f.
    assert c["cluster_norm_mean"] == res.report.plan.clusters[0].cluster_norm_mean
    assert abs(c["cluster_norm_mean"] - 4 / 3) < 1e-6 and len(repr(c["cluster_norm_mean"])) > 9
    assert c["merged_norm"] is None
    # rep 2 (norm 2) over 1 + 1 + 2 (float32 rows)
    assert doc["scale_compression_ratio"] == pytest.approx(2 / 4, rel=1e-6)
    assert CompressionReport.from_json(text) == res.report


# ------------------------------------------------------------------------ §8


def test_cli_summary_line_and_default_strategy(tmp_path: Path) -> None:
    sae = synth_sae(tmp_path / "sae.safetensors")
    build_report(8, [(1, 2), (4, 5), (5, 6)]).to_json(tmp_path / "v.json")
    r = subprocess.run(
        [sys.executable, "-m", "polygram.cli", "compress",
         "--validation-report", str(tmp_path / "v.json"), "--sae-checkpoint", str(sae),
         "--output-checkpoint", str(tmp_path / "o.safetensors"),
         "--output", str(tmp_path / "c.json")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = CompressionReport.from_json(tmp_path / "c.json")
    assert rep.strategy == "zero"
    line = r.stderr.strip().splitlines()[-1]
    assert "2 clusters, 3 features zeroed, 2 kept" in line
    assert rep.source_checkpoint_sha256[:12] in line
    assert rep.output_checkpoint_sha256[:12] in line
    assert rep.source_checkpoint_sha256[:13] not in line


# ------------------------------------------------------------ seed README


def test_seed_readme_compressor_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    build_report(8, [(1, 2), (2, 3)]).to_json("validation_report.json")
    synth_sae(tmp_path / "sae.safetensors")

    from polygram import Compressor, ValidationReport

    report = ValidationReport.from_json("validation_report.json")
    compressor = Compressor(
        validation_report=report,
        sae_checkpoint="sae.safetensors",
        strategy="zero",
    )
    result = compressor.run("sae.compressed.safetensors")
    result.report.to_json("compression_report.json")

    back = CompressionReport.from_json("compression_report.json")
    assert back == result.report
    assert back.source_checkpoint == "sae.safetensors"
    assert [c.zeroed for c in back.plan.clusters] == [(1, 2)]
    out = load_file("sae.compressed.safetensors")
    assert not out["W_dec"][1].any() and not out["W_dec"][2].any() and out["W_dec"][3].any()


def test_cli_missing_extra_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import polygram.compression.compressor as compressor_mod
    from polygram.cli import main
    from polygram.errors import missing

    def no_safetensors(*_: object, **__: object) -> None:
        raise missing("safetensors", "sae", "writing SAE checkpoints")

    monkeypatch.setattr(compressor_mod, "write_sae", no_safetensors)
    sae = synth_sae(tmp_path / "sae.safetensors")
    build_report(8, [(1, 2)]).to_json(tmp_path / "v.json")
    code = main(
        ["compress", "--validation-report", str(tmp_path / "v.json"),
         "--sae-checkpoint", str(sae), "--output-checkpoint", str(tmp_path / "o.safetensors"),
         "--output", str(tmp_path / "c.json")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("polygram compress: ") and "polygram[sae]" in err
    assert not (tmp_path / "c.json").exists()
