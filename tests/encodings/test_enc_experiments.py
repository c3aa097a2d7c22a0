"""Experiments on HEA_Rung2 and Rung3: sweeps over ``.theta[r,d,q]`` and
``.theta_amp`` / ``.psi_aux`` keys, ``materialize`` and the generated runner."""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from enc_helpers import animals_hea, quickstart_rung3

from polygram import Dictionary, Experiment, Feature, HEA_Rung2, verify_qorca

TARGET = ("dog_poodle", "bird_hawk")


def every_point_matches_with_knobs(e: Experiment) -> None:
    r = e.run()
    for idx in np.ndindex(*e.shape):
        d = e.dictionary_at(idx)
        g = d.gram()
        np.testing.assert_allclose(r.gram_matrices[idx], g, atol=1e-14, rtol=0)
        a, b = (d.feature_index(x) for x in e.target_pair)
        assert r.overlaps[idx] == pytest.approx(abs(g[a, b]) ** 2, abs=1e-14)


def test_theta_sweep_hea() -> None:
    e = Experiment(
        "HeaTheta",
        animals_hea(),
        TARGET,
        {
            "bird_hawk.theta[0,0,0]": np.linspace(-math.pi, math.pi, 5),
            "dog_poodle.theta[1,1,2]": [0.0, 0.4, -1.1],
            "bird_sparrow.phi": [0.0, 2.0],
        },
        assertions=["hierarchical_ordering_preserved", "concept_gram_tier_separation_bound_holds"],
    )
    assert e.shape == (5, 3, 2)
    every_point_matches_with_knobs(e)
    r = e.run()
    assert r.tier_separation is not None
    np.testing.assert_array_equal(
        r.assertion_pass["concept_gram_tier_separation_bound_holds"], r.tier_separation >= 0.025
    )


def test_theta_key_csv_header_is_quoted() -> None:
    e = Experiment("HeaTheta", animals_hea(), TARGET, {"bird_hawk.theta[0,0,1]": [0.0, 0.5]})
    text = e.run().csv_text()
    assert text.startswith('"bird_hawk.theta[0,0,1]",overlap,')
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "bird_hawk.theta[0,0,1]" and len(rows) == 3


def test_amp_sweep_rung3() -> None:
    e = Experiment(
        "AmpSweep",
        quickstart_rung3(),
        TARGET,
        {
            "bird_hawk.theta_amp": np.linspace(0, math.pi / 2, 5),
            "bird_hawk.psi_aux": np.linspace(0, 2 * math.pi, 4),
            "dog_poodle.phi": [0.0, 1.0],
        },
    )
    every_point_matches_with_knobs(e)
    r = e.run()
    # θ_b = π/4, ψ_b = π is not on this grid, but |a|² = ½(1 + sin 2θ cos ψ) is
    th, ps = np.meshgrid(
        np.linspace(0, math.pi / 2, 5), np.linspace(0, 2 * math.pi, 4), indexing="ij"
    )
    a2 = 0.5 * (1 + np.sin(2 * th) * np.cos(ps))
    mps_min = math.cos(0.5) ** 4  # δ = 0 column
    np.testing.assert_allclose(r.overlaps[..., 0], mps_min * a2, atol=1e-14)


@pytest.mark.parametrize("kind", ["hea", "rung3"])
def test_materialize_and_runner_reproduce_run(kind: str, tmp_path: Path) -> None:
    if kind == "rung3":
        d = quickstart_rung3(bird_sparrow=(0.2, 1.5))
        sweep = {"bird_hawk.theta_amp": np.linspace(0, 1.5, 3), "bird_hawk.psi_aux": [0.0, 3.0]}
    else:
        # explicit θ on one feature, default θ elsewhere, a θ and a φ axis
        base = animals_hea()
        enc = base.encoding
        assert isinstance(enc, HEA_Rung2)
        # near the default θ, so the emitted tier invariant still holds
        theta = (
            enc.default_theta(base.feature("bird_sparrow")) + np.arange(12).reshape(2, 2, 3) / 500
        )
        feats = [
            Feature(f.name, f.cluster, f.beta, f.alpha, f.gamma, f.phi, theta=theta)
            if f.name == "bird_sparrow"
            else f
            for f in base.features
        ]
        d = Dictionary(
            "AnimalsHeaX", feats, base.hierarchy, HEA_Rung2(depth=2, n_qubits=np.int64(3))
        )
        sweep = {"bird_hawk.theta[1,0,2]": [0.0, 0.5, 1.0], "dog_poodle.phi": [0.0, 0.7]}
    e = Experiment(
        f"Mat_{kind}", d, TARGET, sweep, assertions=["hierarchical_ordering_preserved"], seed=3
    )
    paths = e.materialize(tmp_path / "out")
    assert set(paths) == {"machine", "runner", "summary"}
    mid = e.dictionary_at([len(v) // 2 for v in e.sweep.values()])
    check = verify_qorca(paths["machine"], dictionary=mid)
    assert check.valid, check.errors
    assert check.gram_max_abs_diff is not None and check.gram_max_abs_diff <= 1e-12
    assert check.layout == kind
    summary = paths["summary"].read_text()
    assert f"# Mat_{kind}" in summary and "## Sweep axes" in summary

    # The runner, in a fresh interpreter with the output dir as cwd.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, paths["runner"].name],
        cwd=paths["runner"].parent,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    npz = np.load(paths["runner"].parent / f"Mat_{kind}_result.npz")
    r = e.run()
    np.testing.assert_array_equal(npz["gram_matrices"], r.gram_matrices)
    np.testing.assert_array_equal(npz["overlaps"], r.overlaps)
    np.testing.assert_array_equal(npz["schmidt_ranks"], r.schmidt_ranks)
    np.testing.assert_array_equal(
        npz["assert_hierarchical_ordering_preserved"],
        r.assertion_pass["hierarchical_ordering_preserved"],
    )
    for k, v in e.sweep.items():
        np.testing.assert_array_equal(npz[f"axis_{k}"], v)
    runner = paths["runner"].read_text()
    if kind == "rung3":
        assert "Rung3(bond_dim=2)" in runner and "theta_amp=0.2, psi_aux=1.5" in runner
    else:
        assert "HEA_Rung2(depth=2, entangler='ring'" in runner and "theta=np.array(" in runner
