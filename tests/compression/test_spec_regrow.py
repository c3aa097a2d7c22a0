"""Spec 12 audit: regrow statements pinned with exact values (slot handling for
empty clusters and zero centroids, the slot counters, JSON shape and
coercions, provenance from a real compression, non-finite checkpoints, CLI
failure paths) and the seed README's direct Regrower snippet run as written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from compression_fixtures import build_report, synth_sae
from safetensors.numpy import load_file, save_file

import polygram.compression.regrow as regrow_mod
from polygram.cli import main
from polygram.compression import Compressor
from polygram.compression.regrow import Regrower, RegrowReport
from polygram.errors import SAEFormatError, missing
from polygram.sae import load_sae


@pytest.fixture
def sae(tmp_path: Path) -> Path:
    return synth_sae(tmp_path / "sae.safetensors", biases=True)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((40, 8)).astype(np.float32)


# ------------------------------------------------------------------ §3.4 / §4.5


def test_empty_cluster_and_zero_centroid_slots_are_left_alone(
    sae: Path, x: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Centroid k → k-th zeroed slot ascending; an empty cluster or a centroid
    with norm < 1e-12 leaves the slot as it was (norms 0.0); the zero-centroid
    slot still counts as repopulated, the empty one as left zero."""
    c = np.array([3.0, 4.0, 0, 0, 0, 0, 0, 0], np.float32)  # norm 5
    centroids = np.stack([c, np.zeros(8, np.float32), np.full(8, 1e-14, np.float32), 2 * c])
    sizes = np.array([0, 15, 5, 20])
    monkeypatch.setattr(regrow_mod, "_kmeans", lambda r, k, n_init, seed: (centroids, sizes))
    res = Regrower(sae, "residual_kmeans", {11, 3, 7, 1}, cached_residuals=x).run(
        tmp_path / "o.safetensors"
    )
    src, out = load_file(str(sae)), load_file(str(res.output_checkpoint))
    assert [s.feature_id for s in res.plan.slots] == [1, 3, 7, 11]
    assert [s.cluster_size for s in res.plan.slots] == [0, 15, 5, 20]
    assert [(s.decoder_norm, s.encoder_norm) for s in res.plan.slots[:3]] == [(0.0, 0.0)] * 3
    for f in (1, 3, 7):  # untouched
        np.testing.assert_array_equal(out["W_dec"][f], src["W_dec"][f])
        np.testing.assert_array_equal(out["W_enc"][:, f], src["W_enc"][:, f])
        assert out["b_enc"][f] == src["b_enc"][f]
    np.testing.assert_allclose(out["W_dec"][11], [0.6, 0.8, 0, 0, 0, 0, 0, 0], atol=1e-7)
    np.testing.assert_array_equal(out["W_enc"][:, 11], out["W_dec"][11])
    assert out["b_enc"][11] == 0 and src["b_enc"][11] != 0
    np.testing.assert_array_equal(out["b_dec"], src["b_dec"])
    assert res.plan.slots[3].decoder_norm == 1.0 == res.plan.slots[3].encoder_norm
    assert (res.report.n_slots_repopulated, res.report.n_slots_left_zero) == (3, 1)


def test_non_finite_checkpoint_is_refused(x: np.ndarray, tmp_path: Path) -> None:
    p = synth_sae(tmp_path / "sae.safetensors")
    state = load_file(str(p))
    state["W_enc"][2, 5] = np.nan
    save_file(state, str(p))
    with pytest.raises(SAEFormatError, match=r"W_enc holds a non-finite value at index \[2, 5\]"):
        Regrower(p, "residual_kmeans", [5], cached_residuals=x).plan()


# ------------------------------------------------------------------------ §5


def test_json_shape_and_from_json_coercions(sae: Path, x: np.ndarray, tmp_path: Path) -> None:
    res = Regrower(sae, "residual_kmeans", [4, 9], cached_residuals=x).run(
        tmp_path / "o.safetensors"
    )
    doc = json.loads(res.report.to_json())
    assert set(doc) == {
        "schema_version", "source_checkpoint", "source_checkpoint_sha256",
        "output_checkpoint", "output_checkpoint_sha256", "strategy",
        "n_slots_repopulated", "n_slots_left_zero", "feature_ids", "plan",
        "strategy_params", "provenance", "sae_settings", "output_layout",
        "eval_before", "eval_after", "eval_change",
    }  # fmt: skip
    assert doc["schema_version"] == 2 and doc["output_layout"] == "file"
    assert doc["sae_settings"]["architecture"] == {"value": "standard", "source": "inferred"}
    assert set(doc["plan"]) == {
        "strategy", "n_residual_tokens", "zeroed_input", "feature_ids", "slots"
    }  # fmt: skip
    assert doc["strategy_params"] == {"seed": 0, "n_init": 4} and doc["provenance"] == {}
    # from_json reads only the plan's id range, turns null norms into 0.0,
    # float params into floats (null → NaN) and provenance values into str
    del doc["feature_ids"]
    doc["plan"]["slots"][0]["decoder_norm"] = None
    doc["strategy_params"] = {"seed": 2, "flag": True, "tol": 0.5, "gone": None}
    doc["provenance"] = {"k": 5}
    back = RegrowReport.from_json(json.dumps(doc))
    assert back.plan.feature_ids == tuple(range(16))
    assert back.plan.slots[0].decoder_norm == 0.0
    assert back.strategy_params["seed"] == 2 and back.strategy_params["flag"] == 1
    assert back.strategy_params["tol"] == 0.5 and np.isnan(back.strategy_params["gone"])
    assert back.provenance == {"k": "5"}
    assert back == RegrowReport.from_json(back.to_json())  # NaN-aware equality


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["plan"].pop("slots"), r"plan: missing required key\(s\) \['slots'\]"),
        (
            lambda d: d["plan"]["slots"][0].pop("cluster_size"),
            r"plan.slots\[0\]: missing required key",
        ),
        (lambda d: d["plan"].update(slots=5), "plan.slots is 5; expected a JSON array"),
        (lambda d: d.update(provenance=[]), "provenance is \\[\\]; expected a JSON object"),
        (lambda d: d["plan"].update(n_residual_tokens="many"), "wrong type"),
        (lambda d: d.update(plan=[]), "expected a JSON object"),
    ],
)
def test_from_json_refuses_malformed_reports(
    sae: Path, x: np.ndarray, tmp_path: Path, mutate: object, match: str
) -> None:
    res = Regrower(sae, "residual_kmeans", [4], cached_residuals=x).run(tmp_path / "o.safetensors")
    doc = json.loads(res.report.to_json())
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(ValueError, match=match):
        RegrowReport.from_json(json.dumps(doc))


# ------------------------------------------------------------------------ §2


def test_chain_from_a_real_compression_report(tmp_path: Path, x: np.ndarray) -> None:
    sae = synth_sae(tmp_path / "sae.safetensors")
    comp = Compressor(build_report(8, [(1, 2), (2, 3), (5, 6)]), sae).run(
        tmp_path / "c.safetensors"
    )
    chained = Regrower.from_compression_report(
        comp.report, comp.output_checkpoint, strategy="residual_kmeans", cached_residuals=x
    )
    direct = Regrower(comp.output_checkpoint, "residual_kmeans", {1, 2, 5}, cached_residuals=x)
    assert chained.zeroed == direct.zeroed == {1, 2, 5}
    a, b = chained.run(tmp_path / "a.safetensors"), direct.run(tmp_path / "b.safetensors")
    assert a.report.provenance == {
        "compression_report_source_sha256": comp.report.source_checkpoint_sha256,
        "compression_report_output_sha256": comp.report.output_checkpoint_sha256,
        "compression_report_dictionary_name": "SynthDict",
    }
    assert a.report.source_checkpoint_sha256 == comp.report.output_checkpoint_sha256
    assert direct.provenance == {}
    ta, tb = load_file(str(a.output_checkpoint)), load_file(str(b.output_checkpoint))
    assert all(np.array_equal(ta[k], tb[k]) for k in ta)
    assert a.dictionary.name == "SynthDict" and b.dictionary.name == "Regrown_c"


# ------------------------------------------------------------------------ §6


def _cli_args(sae: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "regrow", "--sae-checkpoint", str(sae),
        "--output-checkpoint", str(tmp_path / "o.safetensors"),
        "--output", str(tmp_path / "r.json"), "--strategy", "residual_kmeans",
        "--zeroed-list", "1,2", *extra,
    ]  # fmt: skip


def test_cli_unreadable_prompts_file_exits_2(
    sae: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "p.txt"
    bad.write_bytes(b"\xff\xfe not utf-8\n")
    assert main(_cli_args(sae, tmp_path, "--prompts", str(bad))) == 2
    err = capsys.readouterr().err
    assert err.startswith("polygram regrow: --prompts") and "cannot be read" in err


def test_cli_missing_extra_exits_2(
    sae: Path,
    x: np.ndarray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_sklearn(*_: object) -> None:
        raise missing("scikit-learn", "regrow", "Regrower (residual k-means)")

    monkeypatch.setattr(regrow_mod, "_kmeans", no_sklearn)
    np.save(tmp_path / "x.npy", x)
    assert main(_cli_args(sae, tmp_path, "--cached-residuals", str(tmp_path / "x.npy"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("polygram regrow: ") and "polygram[regrow]" in err
    assert not (tmp_path / "o.safetensors").exists()


# ------------------------------------------------------------ seed README


def test_seed_readme_direct_regrower_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    synth_sae(tmp_path / "sae.compressed.safetensors", n=300)
    np.save("residuals.npy", np.random.default_rng(0).standard_normal((50, 8)))

    import numpy as np_readme

    from polygram import Regrower

    residuals = np_readme.load("residuals.npy")  # (n_tokens, d_model)
    regrower = Regrower(
        sae_checkpoint="sae.compressed.safetensors",
        strategy="residual_kmeans",
        zeroed={42, 100, 256},
        cached_residuals=residuals,
    )
    result = regrower.run("sae.regrown.safetensors")

    out = load_file("sae.regrown.safetensors")
    for f in (42, 100, 256):
        assert np.linalg.norm(out["W_dec"][f]) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_array_equal(out["W_enc"][:, f], out["W_dec"][f])
        assert out["b_enc"][f] == 0
    assert result.report.n_slots_repopulated == 3


def test_bf16_checkpoint_is_regrown_and_stays_bf16(x: np.ndarray, tmp_path: Path) -> None:
    """BF16 checkpoints (refused before spec 16) are read exactly and written
    back in BF16 (round-to-nearest-even), every untouched value bit-exact."""
    import struct

    rng = np.random.default_rng(2)
    shapes = {"W_enc": (8, 16), "b_enc": (16,), "W_dec": (16, 8), "b_dec": (8,)}
    words = {
        n: (rng.standard_normal(s).astype(np.float32).view(np.uint32) >> 16)
        for n, s in shapes.items()
    }
    header, blobs, off = {}, [], 0
    for name, shape in shapes.items():
        data = words[name].astype("<u2").tobytes()
        header[name] = {
            "dtype": "BF16",
            "shape": list(shape),
            "data_offsets": [off, off + len(data)],
        }
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    p = tmp_path / "bf16.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    res = Regrower(p, "residual_kmeans", [3], cached_residuals=x).run(tmp_path / "o.safetensors")
    out = load_sae(res.output_checkpoint)
    assert all(out.layout[n].dtype == "BF16" for n in shapes)
    kept = [f for f in range(16) if f != 3]
    src_dec = (words["W_dec"].astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(out.tensors["W_dec"][kept], src_dec[kept])
    assert np.linalg.norm(out.tensors["W_dec"][3]) == pytest.approx(1.0, abs=1e-2)


def test_zeroed_list_parsing() -> None:
    from polygram.cli.regrow import _RegrowError, _zeroed_list

    assert _zeroed_list("3, 1,,7") == [3, 1, 7]
    assert _zeroed_list("") == [] and _zeroed_list(" , ") == []
    with pytest.raises(_RegrowError, match=r"--zeroed-list expects comma-separated ints; '1\.5'"):
        _zeroed_list("2,1.5")


def test_strategy_enum_and_required_strategy(sae: Path, x: np.ndarray) -> None:
    from polygram.compression.regrow import RegrowStrategy

    assert [s.value for s in RegrowStrategy] == [
        "residual_kmeans",
        "high_decoder_norm_random",
        "orthogonal_noise_scaled",
    ]
    assert RegrowStrategy("residual_kmeans") == "residual_kmeans"  # str-valued
    with pytest.raises(TypeError, match="strategy"):
        Regrower(sae, zeroed=[1], cached_residuals=x)  # type: ignore[call-arg]
    g = Regrower(sae, "residual_kmeans", [1], cached_residuals=x)
    assert (g.seed, g.n_init, g.model_name, g.layer, g.device) == (0, 4, None, None, None)
