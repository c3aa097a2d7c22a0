"""Spec 15 §1.7: the knob and profile flags of ``polygram analyze`` and
``polygram validate`` (in process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spec15_cases import CASES, TOY

from behavioural.beh_helpers import PANEL, validate_args
from polygram.behavioural import ValidationReport
from polygram.cli import main
from polygram.encoding import Rung3
from polygram.sae import from_sae_lens, load_sae_safetensors, load_toy_sae, write_toy_sae


def _analyze(tmp_path: Path, *flags: str) -> str:
    out = tmp_path / "report.md"
    rc = main(["analyze", str(TOY), "--features", "2,3,6,7,12", "--output", str(out), *flags])
    assert rc == 0
    return out.read_text()


def test_analyze_phase_knobs_reproduce_the_toy_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md = _analyze(tmp_path, "--assign-phase-knobs")
    want = CASES["triage_phase_toy"]["expected"]
    assert "- Knobs from decoder PCA: alpha, phi" in md
    assert "Geometric profile" not in md  # the default profile is not announced
    assert "α = φ = 0 for every feature" not in md
    assert "α (PC2), φ (PC3) come from principal axes" in md
    for p in want["pairs"]:
        row = next(line for line in md.splitlines() if f"| {p['a']} ↔ {p['b']} |" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2:] == [
            f"{p['current']:.4f}",
            f"{p['floor']:.4f}",
            f"{p['gap']:.4f}",
            f"{p['M']:.4f}",
            f"{p['V']:+.4f}",
        ]
    assert f"**Score: {want['encoding_suitability_score']:.4f}**" in md
    assert f"(score={want['encoding_suitability_score']:.4f})" in capsys.readouterr().out


def test_analyze_without_flags_keeps_the_0_0_1_caveat(tmp_path: Path) -> None:
    md = _analyze(tmp_path)
    assert "α = φ = 0 for every feature" in md
    assert "Knobs from decoder PCA" not in md


def test_analyze_profile_bullet(tmp_path: Path) -> None:
    md = _analyze(tmp_path, "--profile", "uniform-sphere", "--n-clusters", "2")
    recs = load_toy_sae(TOY)
    # the toy's labels take the from_labels path; the profile still scores it
    _, rep = from_sae_lens(recs, [2, 3, 6, 7, 12], profile="uniform-sphere")
    assert rep.geometric_fidelity is not None
    assert f"- Geometric profile: uniform-sphere (fidelity {rep.geometric_fidelity:.4f})" in md


def test_analyze_unknown_profile_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(TOY), "--features", "2,3", "--profile", "spherical"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "'spherical'" in err and "clustered" in err and "uniform-sphere" in err


def test_validate_amp_knobs_need_rung3(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main([*validate_args(inputs), "--assign-amp-knobs"])
    assert rc == 2
    assert "--assign-amp-knobs needs --encoding rung3" in capsys.readouterr().err


def test_validate_cap_follows_the_encoding(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = list(range(9))
    records = load_sae_safetensors(inputs["ckpt"], feature_ids=ids)
    write_toy_sae(inputs["dictionary"], [records[f] for f in ids], description="nine")
    args = validate_args(inputs, feature_ids=",".join(map(str, ids)))
    assert main(args) == 2
    assert "9 selected but MPSRung1 holds at most 8 features" in capsys.readouterr().err


@pytest.mark.torch
def test_validate_builds_the_dictionary_with_the_flags(
    inputs: dict[str, Path], tiny_model_dir: Path
) -> None:
    pytest.importorskip("torch")
    args = validate_args(
        inputs, model=str(tiny_model_dir), device="cpu", min_both_fire="1", min_firing_rate="0"
    )
    rc = main([*args, "--encoding", "rung3", "--assign-phase-knobs", "--assign-amp-knobs"])
    assert rc == 0
    report = ValidationReport.from_json(inputs["dir"] / "out" / "report.json")
    dic, rep = from_sae_lens(
        load_toy_sae(inputs["dictionary"]),
        PANEL,
        assign_gamma=True,
        encoding=Rung3(),
        assign_phase_knobs=True,
        assign_amp_knobs=True,
    )
    assert rep.assigned_knobs  # 4 rows: α and φ at least
    g2 = np.abs(dic.gram()) ** 2
    pos = {f: k for k, f in enumerate(PANEL)}
    for p in report.pairs:
        assert p.polygram_overlap == pytest.approx(g2[pos[p.i], pos[p.j]], rel=1e-5)


def test_validator_config_precedence(sae_ckpt: Path) -> None:
    from behavioural.beh_helpers import make_validator
    from polygram.config import ValidationConfig

    plain = make_validator(sae_ckpt)
    want = ValidationConfig()
    for name in (
        "polygram_overlap_threshold",
        "jaccard_threshold",
        "min_firing_rate",
        "min_both_fire",
        "allow_layer_zero",
    ):
        assert getattr(plain, name) == getattr(want, name), name
    cfg = ValidationConfig(polygram_overlap_threshold=0.5, min_both_fire=2)
    v = make_validator(sae_ckpt, config=cfg, min_both_fire=3)
    assert (v.polygram_overlap_threshold, v.min_both_fire, v.jaccard_threshold) == (0.5, 3, 0.30)
    with pytest.raises(TypeError, match="ValidationConfig"):
        make_validator(sae_ckpt, config=object())
