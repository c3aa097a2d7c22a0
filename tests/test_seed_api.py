"""A walk through the original's product page (the seed README), snippet by snippet.

Every code block of the page is run as written (paths moved into ``tmp_path``) and every
number the page quotes is checked against an independent numpy oracle (``tests/oracle.py``)
or the closed forms of spec 01. Other test files pin the reference values in depth; this one
pins what a user copying the page would see: names, import paths, defaults, result fields and
their types, and the page's own claims.
"""

from __future__ import annotations

import csv
import inspect
import math
from pathlib import Path

import numpy as np
import pytest

import polygram
from oracle import mps_state
from polygram import (
    Cancellation,
    CancellationResult,
    Dictionary,
    Experiment,
    ExperimentResult,
    Feature,
    MPSRung1,
    SAEFeatureRecord,
    SelectionReport,
    from_sae_lens,
    load_sae_safetensors,
    load_toy_sae,
)

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "fixtures" / "toy_sae.json"
TOL = 1e-12
COS4 = math.cos(0.5) ** 4  # the page's "cos(0.5)⁴ ≈ 0.5931"
COS2 = math.cos(0.5) ** 2  # |<A|B>|² of the opposite-β pair at Δφ = π
PAIR = ("dog_poodle", "bird_hawk")


def seed_dictionary() -> Dictionary:
    """The Quickstart block, verbatim."""
    return Dictionary(
        name="AnimalsInterference",
        features=[
            Feature("dog_poodle", "dogs", beta=-0.5),
            Feature("dog_beagle", "dogs", beta=-0.5),
            Feature("bird_hawk", "birds", beta=0.5),
            Feature("bird_sparrow", "birds", beta=0.5),
        ],
        hierarchy={"dogs": ["dog_poodle", "dog_beagle"], "birds": ["bird_hawk", "bird_sparrow"]},
        encoding=MPSRung1(bond_dim=2, phase_knobs=True),
    )


def ov(a: np.ndarray, b: np.ndarray) -> float:
    return float(abs(np.vdot(a, b)) ** 2)


def beta_state(beta: float, phi: float = 0.0) -> np.ndarray:
    return mps_state(0.0, beta, 0.0, phi)


# --------------------------------------------------------------------------- names


def test_every_name_the_page_imports_exists() -> None:
    # "from polygram import ..." lines of the page (core; the loop is spec 10-13)
    for name in (
        "Dictionary",
        "Experiment",
        "Feature",
        "MPSRung1",
        "Cancellation",
        "from_sae_lens",
        "load_toy_sae",
        "load_sae_safetensors",
        "SAEFeatureRecord",
        "SelectionReport",
        "CancellationResult",
        "ExperimentResult",
        "InterferenceSweep",
        "HEA_Rung2",
        "Rung3",
        "write_qorca",
    ):
        assert hasattr(polygram, name), name
    from polygram.encoding import HEA_Rung2, MPSRung1, Rung3  # "polygram.encoding.Rung3"

    assert polygram.Rung3 is Rung3 and polygram.HEA_Rung2 is HEA_Rung2
    assert polygram.MPSRung1 is MPSRung1
    import polygram.analysis as analysis  # "See polygram.analysis for the programmatic API"

    for name in ("predict_cancellation_depth", "feature_sensitivity", "encoding_suitability_score"):
        assert callable(getattr(analysis, name)), name


def test_documented_signatures_and_defaults() -> None:
    # (spec 15 §0.3: None in the signature, resolved through CancellationConfig)
    sig = inspect.signature(Cancellation)
    assert sig.parameters["tolerance"].default is None
    assert sig.parameters["preserve_tiers"].default is None
    c = Cancellation(seed_dictionary(), ("dog_poodle", "bird_hawk"))
    assert (c.tolerance, c.preserve_tiers) == (0.05, True)
    # load_sae_safetensors(path, *, names=None) and the sliced feature_ids=[...] path
    sig = inspect.signature(load_sae_safetensors)
    assert sig.parameters["names"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["names"].default is None
    assert sig.parameters["feature_ids"].default is None
    # assign_gamma=True ... "rescaled into gamma_range, default (-0.25, 0.25)"
    # (spec 15 §0.3: the signature says None, resolved through SAEImportConfig
    # and the default "clustered" profile)
    sig = inspect.signature(from_sae_lens)
    assert sig.parameters["assign_gamma"].default is None
    assert sig.parameters["gamma_range"].default is None
    assert polygram.SAEImportConfig().assign_gamma is False
    assert polygram.get_profile("clustered").default_gamma_range == (-0.25, 0.25)
    # MPSRung1(bond_dim=2, phase_knobs=True) are the defaults the page spells out
    m = MPSRung1()
    assert (m.bond_dim, m.phase_knobs) == (2, True)


# --------------------------------------------------------------------------- quickstart


def test_quickstart_block_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    dictionary = seed_dictionary()
    experiment = Experiment(
        name=dictionary.name,
        dictionary=dictionary,
        target_pair=("dog_poodle", "bird_hawk"),
        sweep={"bird_hawk.phi": np.linspace(0.0, np.pi, 40)},
        measures=["overlap", "gram_matrix", "schmidt_rank"],
        assertions=["hierarchical_ordering_preserved"],
    )
    files = experiment.materialize("examples/output/")  # emits a verifiable .q.orca.md
    result = experiment.run()
    result.to_csv("examples/output/result.csv")
    assert isinstance(result, ExperimentResult)

    out = tmp_path / "examples" / "output"
    machine = out / "AnimalsInterference.q.orca.md"
    assert machine.is_file() and Path(files["machine"]).resolve() == machine
    assert "# machine" in machine.read_text()

    # the CSV, checked cell by cell against dense statevectors
    phis = np.linspace(0.0, np.pi, 40)
    dog, sparrow = beta_state(-0.5), beta_state(0.5)
    with open(out / "result.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40
    assert list(rows[0]) == [
        "bird_hawk.phi",
        "overlap",
        "tier_self",
        "tier_sibling",
        "tier_cross_cluster",
        "tier_separation",
        "hierarchical_ordering_preserved",
    ]
    for phi, row in zip(phis, rows):
        hawk = beta_state(0.5, phi)
        target = ov(dog, hawk)
        sibling = (1.0 + ov(hawk, sparrow)) / 2  # dogs pair 1.0, birds pair moves
        cross = (2 * target + 2 * ov(dog, sparrow)) / 4
        assert float(row["bird_hawk.phi"]) == phi
        assert abs(float(row["overlap"]) - target) <= TOL
        assert float(row["tier_self"]) == 1.0
        assert abs(float(row["tier_sibling"]) - sibling) <= TOL
        assert abs(float(row["tier_cross_cluster"]) - cross) <= TOL
        assert abs(float(row["tier_separation"]) - (ov(hawk, sparrow) - target)) <= TOL
        assert row["hierarchical_ordering_preserved"] == "1"

    # result arrays shaped like the sweep
    n = 4
    assert result.overlaps.shape == (40,)
    assert result.gram_matrices.shape == (40, n, n) and result.gram_matrices.dtype.kind == "c"
    assert result.schmidt_ranks.shape == (40, n)
    assert result.assertion_pass["hierarchical_ordering_preserved"].dtype == bool
    assert set(result.tier_stats) == {"self", "sibling", "cross_cluster"}


def test_quickstart_figures_claims() -> None:
    """ "Single-φ steering ... leaves the cross-cluster overlap above the matched-φ
    baseline of cos(0.5)⁴ ≈ 0.5931 and below the sibling tier; it never destroys." """
    d = seed_dictionary()
    r = Experiment(
        name=d.name,
        dictionary=d,
        target_pair=PAIR,
        sweep={"bird_hawk.phi": np.linspace(0.0, np.pi, 40)},
    ).run()
    assert round(COS4, 4) == 0.5931
    assert abs(r.overlaps[0] - COS4) <= TOL
    assert np.all(r.overlaps >= COS4 - TOL)
    assert np.all(r.overlaps < r.tier_stats["sibling"])
    assert np.all(np.diff(r.overlaps) > 0)  # monotone on [0, π] (M + V cos δ with V < 0)
    assert abs(r.overlaps[-1] - COS2) <= TOL

    # "2D sweep (dog_poodle.phi, bird_hawk.phi) 24×24 grid ... rises from the matched-φ
    # ridge of cos(0.5)⁴ toward off-axis cells"
    axis = np.linspace(0.0, np.pi, 24)
    r2 = Experiment(
        name=d.name,
        dictionary=d,
        target_pair=PAIR,
        sweep={"dog_poodle.phi": axis, "bird_hawk.phi": axis},
        assertions=["hierarchical_ordering_preserved"],
    ).run()
    assert r2.overlaps.shape == (24, 24)
    np.testing.assert_allclose(np.diag(r2.overlaps), COS4, atol=TOL, rtol=0)
    assert abs(r2.overlaps.min() - COS4) <= TOL
    assert abs(r2.overlaps[0, -1] - COS2) <= TOL and abs(r2.overlaps[-1, 0] - COS2) <= TOL
    # depends only on δ = φ_A − φ_B: M + V·cos δ with the closed forms
    m, v = (COS4 + COS2) / 2, (COS4 - COS2) / 2
    delta = axis[:, None] - axis[None, :]
    np.testing.assert_allclose(r2.overlaps, m + v * np.cos(delta), atol=TOL, rtol=0)
    assert r2.assertion_pass["hierarchical_ordering_preserved"].all()


def test_result_plot_saves_line_and_heatmap(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    d = seed_dictionary()
    one = Experiment(
        name=d.name, dictionary=d, target_pair=PAIR, sweep={"bird_hawk.phi": [0.0, 1.0, 2.0]}
    ).run()
    two = Experiment(
        name=d.name,
        dictionary=d,
        target_pair=PAIR,
        sweep={"dog_poodle.phi": [0.0, 1.0], "bird_hawk.phi": [0.0, 1.0, 2.0]},
    ).run()
    for res, name in ((one, "line.png"), (two, "heat.png")):
        res.plot(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- cancellation


def test_cancellation_block_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    dictionary = seed_dictionary()
    cancellation = Cancellation(
        dictionary=dictionary,
        target_pair=("dog_poodle", "bird_hawk"),
        tolerance=0.05,
        preserve_tiers=True,
        optimize={"method": "grid", "max_steps": 50},
    )
    result = cancellation.run()
    assert isinstance(result, CancellationResult)
    assert abs(result.before_overlap - COS4) <= TOL
    assert abs(result.after_overlap - COS4) <= TOL
    assert result.tolerance_met is False
    result.materialize("examples/output/")
    pytest.importorskip("matplotlib")
    result.plot("examples/output/grid.png")
    out = tmp_path / "examples" / "output"
    assert (out / "grid.png").read_bytes()[:4] == b"\x89PNG"
    for f in ("_at_optimum.q.orca.md", "_at_optimum_summary.md", "_at_optimum_trajectory.csv"):
        assert (out / f"AnimalsInterference{f}").is_file(), f


def test_cancellation_result_fields_the_page_lists() -> None:
    d = seed_dictionary()
    r = Cancellation(dictionary=d, target_pair=PAIR).run()  # defaults: grid, 50 steps
    # optimized_phis (the page's name) is the same mapping as optimized_knobs
    assert dict(r.optimized_phis) == r.optimized_knobs
    assert list(r.optimized_knobs) == ["dog_poodle.phi", "bird_hawk.phi"]
    pa, pb = r.optimized_knobs["dog_poodle.phi"], r.optimized_knobs["bird_hawk.phi"]
    assert pa == pb  # the optimum lies on the matched-φ ridge (any point of it)
    # before_gram / after_gram
    np.testing.assert_allclose(r.before_gram, d.gram(), atol=TOL, rtol=0)
    np.testing.assert_allclose(r.after_gram, r.dictionary_at_optimum.gram(), atol=TOL, rtol=0)
    assert r.before_gram.shape == r.after_gram.shape == (4, 4)
    # trajectory: every (φ_a, φ_b, overlap) evaluation in order over [0, 2π]²
    axis = np.linspace(0.0, 2 * np.pi, 50)
    t = r.trajectory
    assert t is not None  # not lean mode
    assert t.shape == (2500, 3)
    np.testing.assert_array_equal(t[:, 0], np.repeat(axis, 50))
    np.testing.assert_array_equal(t[:, 1], np.tile(axis, 50))
    dog = beta_state(-0.5)
    for k in (0, 1, 51, 777, 1234, 2499):
        want = ov(beta_state(-0.5, t[k, 0]), beta_state(0.5, t[k, 1]))
        assert abs(t[k, 2] - want) <= TOL, k
    assert abs(t[:, 2].max() - ov(dog, beta_state(0.5, np.pi))) < 1e-2
    # feasible_mask / feasible_count
    assert r.feasible_mask.dtype == bool and r.feasible_mask.shape == (2500,)
    assert r.feasible_count == int(r.feasible_mask.sum()) == 2500
    assert isinstance(r.feasible_count, int)
    # dictionary_at_optimum: a new Dictionary baked with the optimised φs, re-emittable
    opt = r.dictionary_at_optimum
    assert isinstance(opt, Dictionary) and opt.name == "AnimalsInterference_at_optimum"
    assert opt.feature("dog_poodle").phi == pa and opt.feature("bird_hawk").phi == pb
    assert opt.feature("dog_beagle").phi == 0.0 and opt.feature("bird_sparrow").phi == 0.0
    assert d.feature("dog_poodle").phi == 0.0  # the input is untouched


def test_structural_floor_section() -> None:
    """ "|<A|B>|²(δ) = M + V·cos(δ) ... phase alone cannot drive overlap below M − |V|.
    Cancellation.structural_floor() returns this analytic minimum, and CancellationResult
    caches it as result.structural_floor. cancellation_efficiency = (before − after) /
    (before − floor), clamped to [0, 1] ... None means there was no gap." """
    quick = Cancellation(dictionary=seed_dictionary(), target_pair=PAIR)
    assert abs(quick.structural_floor() - COS4) <= TOL  # opposite β: already at the floor
    r = quick.run()
    assert r.structural_floor == quick.structural_floor()
    assert r.cancellation_efficiency is None

    # a pair with a gap (spec 03 GapPair): the floor is the minimum of M + V cos δ
    feats = [
        Feature("a1", "ka", beta=0.2, alpha=0.9, gamma=0.1),
        Feature("a2", "ka", beta=0.25, alpha=0.9, gamma=0.1),
        Feature("b1", "kb", beta=-0.4, alpha=0.9, gamma=0.3),
        Feature("b2", "kb", beta=-0.45, alpha=0.9, gamma=0.3),
    ]
    gap = Dictionary("GapPair", feats, {"ka": ["a1", "a2"], "kb": ["b1", "b2"]})
    a, b = mps_state(0.9, 0.2, 0.1, 0.0), mps_state(0.9, -0.4, 0.3, 0.0)
    deltas = np.linspace(0.0, 2 * np.pi, 721)
    curve = np.array([ov(a, mps_state(0.9, -0.4, 0.3, dl)) for dl in deltas])
    m0, mpi = ov(a, b), ov(a, mps_state(0.9, -0.4, 0.3, np.pi))
    big_m, big_v = (m0 + mpi) / 2, (m0 - mpi) / 2
    np.testing.assert_allclose(curve, big_m + big_v * np.cos(deltas), atol=TOL, rtol=0)
    c = Cancellation(
        dictionary=gap,
        target_pair=("a1", "b1"),
        preserve_tiers=False,
        optimize={"method": "grid", "max_steps": 7},  # odd: δ = π is on the grid
    )
    floor = c.structural_floor()
    assert abs(floor - (big_m - abs(big_v))) <= TOL
    assert abs(floor - 0.1801553) < 1e-7
    res = c.run()
    assert abs(res.before_overlap - m0) <= TOL
    assert abs(res.after_overlap - floor) <= TOL
    assert res.cancellation_efficiency == pytest.approx(1.0, abs=1e-9)
    # 50 steps misses δ = π: efficiency strictly inside (0, 1), formula as the page says
    res50 = Cancellation(dictionary=gap, target_pair=("a1", "b1"), preserve_tiers=False).run()
    want = (res50.before_overlap - res50.after_overlap) / (res50.before_overlap - floor)
    assert res50.cancellation_efficiency is not None
    assert 0.0 < res50.cancellation_efficiency < 1.0
    assert abs(res50.cancellation_efficiency - want) <= 1e-12


def test_summary_reports_floor_efficiency_and_interpretation(tmp_path: Path) -> None:
    """ "The materialized <name>_summary.md reports both, plus a one-line interpretation." """
    r = Cancellation(dictionary=seed_dictionary(), target_pair=PAIR).run()
    files = r.materialize(tmp_path)
    text = Path(files["summary"]).read_text(encoding="utf-8")
    assert Path(files["summary"]).name == "AnimalsInterference_at_optimum_summary.md"
    lines = text.splitlines()
    assert "## Structural floor" in lines
    assert "- structural_floor: 0.593133" in lines
    assert "- cancellation_efficiency: n/a" in lines
    assert "- interpretation: no cancellation gap available" in lines


# --------------------------------------------------------------------------- encodings


def test_choosing_an_encoding_claims() -> None:
    from polygram.encoding import HEA_Rung2, Rung3

    # HEA_Rung2: θ tensor (|rotations|, depth, n_qubits), tier_separation_bound 0.025,
    # structural_floor() raises NotImplementedError
    hea = HEA_Rung2(depth=2)
    assert hea.theta_shape == (2, 2, 3) and hea.tier_separation_bound == 0.025
    assert HEA_Rung2(depth=3, rotations=("Rx", "Ry", "Rz")).theta_shape == (3, 3, 3)
    base = seed_dictionary()
    as_hea = Dictionary(base.name, list(base.features), dict(base.hierarchy), hea)
    with pytest.raises(NotImplementedError):
        Cancellation(dictionary=as_hea, target_pair=PAIR).structural_floor()

    # Rung3: theta_amp / psi_aux default to π/4 and 0.0; at the defaults the Gram is the
    # MPSRung1 Gram exactly
    f = Feature("x", "c", beta=0.1)
    assert f.theta_amp == math.pi / 4 and f.psi_aux == 0.0
    as_r3 = Dictionary(base.name, list(base.features), dict(base.hierarchy), Rung3())
    np.testing.assert_array_equal(as_r3.gram(), base.gram())


def test_rung3_cancellation_goes_below_the_phase_only_floor() -> None:
    """ "Cancellation(encoding="rung3") runs a joint (φ_a, φ_b, theta_amp, psi_aux)
    optimizer ... that, in principle, breaks below the MPSRung1 phase-only floor" """
    pytest.importorskip("scipy")
    from polygram.encoding import Rung3

    base = seed_dictionary()
    d = Dictionary(base.name, list(base.features), dict(base.hierarchy), Rung3())
    r = Cancellation(
        dictionary=d,
        target_pair=PAIR,
        encoding="rung3",
        grid_outer=(3, 3),
        optimize={"max_steps": 8},
    ).run()
    assert r.method == "rung3_joint"
    assert abs(r.structural_floor - COS4) <= TOL
    assert r.after_overlap < 1e-8 < COS4  # amp zeroing: θ_b ≈ π/4, ψ_b ≈ π
    assert r.theta_amp_optimum == pytest.approx(math.pi / 4, abs=1e-3)
    assert r.psi_aux_optimum == pytest.approx(math.pi, abs=1e-3)
    assert r.cancellation_efficiency is None  # before = floor: no phase gap
    assert r.trajectory is not None and r.trajectory.shape[1] == 5


# --------------------------------------------------------------------------- SAE import


def test_sae_import_block_as_written() -> None:
    records = load_toy_sae(TOY)
    # "a 16-feature, 4-cluster, 8-dim deterministic toy"
    assert len(records) == 16 and list(records) == list(range(16))
    assert all(isinstance(r, SAEFeatureRecord) for r in records.values())
    assert {r.projection.shape for r in records.values()} == {(8,)}
    assert len({r.label.split("/")[0] for r in records.values() if r.label}) == 4

    dictionary, report = from_sae_lens(records, [0, 1, 4, 5])
    assert isinstance(dictionary, Dictionary) and isinstance(report, SelectionReport)
    assert report.cluster_method == "from_labels"
    assert report.gamma_method == "zero"
    assert [f.name for f in dictionary.features] == [records[i].name for i in (0, 1, 4, 5)]
    assert [f.beta for f in dictionary.features] == [-0.5, -0.5, 0.5, 0.5]
    assert all(f.gamma == 0.0 and f.alpha == 0.0 and f.phi == 0.0 for f in dictionary.features)

    # beta_variance_explained: clip(1 − SS_res / SS_tot) with β regressed on cluster means
    proj = np.array([records[i].projection for i in (0, 1, 4, 5)])
    labels = [records[i].label.split("/")[0] for i in (0, 1, 4, 5)]  # type: ignore[union-attr]
    centroids = {c: proj[[k for k, x in enumerate(labels) if x == c]].mean(0) for c in labels}
    recon = {
        dictionary.features[k].name: float(np.linalg.norm(proj[k] - centroids[labels[k]]))
        for k in range(4)
    }
    # "reconstruction_error — per-feature Euclidean distance to its cluster centroid"
    assert set(report.reconstruction_error) == set(recon)
    for name, val in recon.items():
        assert abs(report.reconstruction_error[name] - val) <= TOL
    ss_res = sum(np.sum((proj[k] - centroids[labels[k]]) ** 2) for k in range(4))
    ss_tot = np.sum((proj - proj.mean(0)) ** 2)
    assert abs(report.beta_variance_explained - (1 - ss_res / ss_tot)) <= TOL

    # "tier_preservation — Pearson correlation between off-diagonal |G|² of the
    # projection-space cosine-overlap matrix and the analytic Polygram Gram"
    unit = proj / np.linalg.norm(proj, axis=1, keepdims=True)
    cos2 = (unit @ unit.T) ** 2
    g2 = np.abs(dictionary.gram()) ** 2
    iu = np.triu_indices(4, 1)
    want = float(np.corrcoef(cos2[iu], g2[iu])[0, 1])
    assert report.tier_preservation is not None
    assert abs(report.tier_preservation - want) <= 1e-12

    # "— None for n_selected ≤ 1"
    _, single = from_sae_lens(records, [3])
    assert single.tier_preservation is None and single.n_selected == 1


def test_assign_gamma_rescales_into_gamma_range() -> None:
    records = load_toy_sae(TOY)
    d, rep = from_sae_lens(records, [0, 1, 4, 5], assign_gamma=True)
    assert rep.gamma_method == "projection_pca"
    gammas = [f.gamma for f in d.features]
    assert min(gammas) == pytest.approx(-0.25, abs=TOL)
    assert max(gammas) == pytest.approx(0.25, abs=TOL)
    assert all(-0.25 - TOL <= g <= 0.25 + TOL for g in gammas)
    # the first member of each cluster gets a score ≤ 0 (spec 00 sign rule)
    assert gammas[0] < 0 and gammas[2] < 0
    d2, _ = from_sae_lens(records, [0, 1, 4, 5], assign_gamma=True, gamma_range=(0.0, 1.0))
    assert [f.gamma for f in d2.features] == pytest.approx([(g + 0.25) * 2 for g in gammas])


def test_cluster_precedence_user_over_labels_over_kmeans() -> None:
    """ "explicit user override → parsed "<cluster>/<name>" labels → k-means"."""
    records = load_toy_sae(TOY)
    d, rep = from_sae_lens(
        records, [0, 1, 4, 5], cluster_assignments={0: "x", 1: "y", 4: "x", 5: "y"}
    )
    assert rep.cluster_method == "user"
    assert [f.cluster for f in d.features] == ["x", "y", "x", "y"]
    assert [f.beta for f in d.features] == [-0.5, 0.5, -0.5, 0.5]
    # hand-rolled records without labels → k-means (the page's "Hand-rolled loaders")
    hand = {
        10 + i: SAEFeatureRecord(10 + i, f"f{i}", np.array(v))
        for i, v in enumerate([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.05, 0.98]])
    }
    d, rep = from_sae_lens(hand, [10, 11, 12, 13])
    assert rep.cluster_method == "kmeans"
    # two clear groups, found whatever the labels: {f0, f1} and {f2, f3}
    assert d.features[0].cluster == d.features[1].cluster != d.features[2].cluster
    assert d.features[2].cluster == d.features[3].cluster
    assert sorted(f.beta for f in d.features) == [-0.5, -0.5, 0.5, 0.5]


def test_more_than_eight_ids_is_refused() -> None:
    """ "pick 4 features by id (≤8; the rung-1 MPS cap)" — a flat Dictionary
    (clustered=False; above the cap the default now builds a ClusteredDictionary,
    spec 17 §17.9)"""
    hand = {i: SAEFeatureRecord(i, f"f{i}", np.array([1.0, float(i)])) for i in range(9)}
    with pytest.raises(ValueError, match="8"):
        from_sae_lens(hand, list(range(9)), clustered=False)
    d, _ = from_sae_lens(hand, list(range(8)))
    assert len(d.features) == 8


def test_triage_api_backs_the_analyze_report() -> None:
    """ "predicts each pair's (M, V, structural_floor, cancellation_gap) ... per-feature
    sensitivity (mean |V_ij|), and a single-scalar encoding_suitability_score" """
    from polygram.analysis import predict_cancellation_depth

    pred = predict_cancellation_depth(load_toy_sae(TOY), [0, 1, 4, 5])
    dog, bird = beta_state(-0.5), beta_state(0.5)
    by_pair = {(p.feature_a, p.feature_b): p for p in pred.pairs}
    assert len(by_pair) == 6
    intra = by_pair[("dog_poodle", "dog_beagle")]
    cross = by_pair[("dog_poodle", "hawk_red")]
    for p, a, b in ((intra, dog, dog), (cross, dog, bird)):
        m0 = ov(a, b)
        mpi = ov(a, mps_state(0.0, -0.5 if b is dog else 0.5, 0.0, np.pi))
        assert abs(p.current_overlap - m0) <= TOL
        assert abs(p.M - (m0 + mpi) / 2) <= TOL and abs(p.V - (m0 - mpi) / 2) <= TOL
        assert abs(p.structural_floor - min(m0, mpi)) <= TOL
        assert abs(p.cancellation_gap - (m0 - min(m0, mpi))) <= TOL
    assert abs(intra.structural_floor - COS2) <= TOL and abs(cross.structural_floor - COS4) <= TOL
    for name, s in pred.feature_sensitivity.items():
        mine = [abs(p.V) for p in pred.pairs if name in (p.feature_a, p.feature_b)]
        assert abs(s - float(np.mean(mine))) <= TOL
    gaps = [p.cancellation_gap for p in pred.pairs]
    cur = [p.current_overlap for p in pred.pairs]
    want = float(np.clip(np.mean(gaps) * (1 - max(cur)), 0, 1))
    assert abs(pred.encoding_suitability_score - want) <= TOL


# --------------------------------------------------------------------------- safetensors


@pytest.fixture
def sae_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    st = pytest.importorskip("safetensors.numpy")
    w = np.random.default_rng(7).normal(size=(1100, 8)).astype(np.float32)
    path = tmp_path / "sae.safetensors"
    st.save_file({"W_dec": w}, str(path))
    return path, w


def test_safetensors_block_as_written(sae_file: tuple[Path, np.ndarray]) -> None:
    path, w = sae_file
    records = load_sae_safetensors(path)
    assert isinstance(records, dict) and len(records) == 1100
    assert all(isinstance(k, int) for k in records)
    np.testing.assert_array_equal(np.asarray(records[1042].projection, dtype=np.float32), w[1042])
    dictionary, report = from_sae_lens(records, [0, 1, 4, 5])
    assert report.cluster_method == "kmeans" and len(dictionary.features) == 4

    # sliced path: only the requested rows, same values as the eager path
    part = load_sae_safetensors(path, feature_ids=[0, 12, 1042, 1099])
    assert sorted(part) == [0, 12, 1042, 1099]
    for i in part:
        np.testing.assert_array_equal(part[i].projection, records[i].projection)
    named = load_sae_safetensors(path, names={12: "twelve"}, feature_ids=[12, 0])
    assert named[12].name == "twelve" and named[0].name == records[0].name


def test_safetensors_key_precedence_and_orientation(tmp_path: Path) -> None:
    """ "precedence list ("W_dec", "decoder.weight", "dec"); the loader transposes only
    when the matched key is decoder.weight and the matrix is non-square" """
    st = pytest.importorskip("safetensors.numpy")
    w = np.arange(40, dtype=np.float32).reshape(10, 4) / 7
    cases = {
        "w_dec_wins.safetensors": ({"W_dec": w, "decoder.weight": w[:3].T.copy(), "dec": w[:2]}, w),
        "linear.safetensors": ({"decoder.weight": w.T.copy(), "dec": w[:2]}, w),
        "dec.safetensors": ({"dec": w[:6]}, w[:6]),
    }
    for name, (tensors, want) in cases.items():
        st.save_file(tensors, str(tmp_path / name))
        got = load_sae_safetensors(tmp_path / name)
        assert len(got) == want.shape[0], name
        for i, row in enumerate(want):
            np.testing.assert_allclose(got[i].projection, row, rtol=0, atol=0)
