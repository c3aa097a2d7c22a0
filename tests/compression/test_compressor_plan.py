"""Compressor construction and plan(): clusters, representatives, overrides
(spec 11 §§2–3)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from compression_fixtures import build_report, synth_sae

from polygram.compression import ClusterPlan, Compressor
from polygram.errors import CompressionError, SAEFileNotFoundError

CONFIRMED = [(2, 3), (5, 6), (6, 7), (5, 7)]  # a pair and a 3-clique; 0, 1, 4 alone


@pytest.fixture
def sae(tmp_path: Path) -> Path:
    return synth_sae(tmp_path / "sae.safetensors")


def test_clusters_from_confirmed_pairs(sae: Path) -> None:
    plan = Compressor(build_report(8, CONFIRMED), sae).plan()
    assert [c.members for c in plan.clusters] == [(2, 3), (5, 6, 7)]
    assert [c.cluster_id for c in plan.clusters] == [0, 1]
    assert plan.feature_ids == tuple(range(8))
    clustered = {m for c in plan.clusters for m in c.members}
    assert clustered.isdisjoint({0, 1, 4})  # singletons are never clusters
    for c in plan.clusters:
        assert (c.cluster_norm_mean, c.cluster_norm_std, c.merged_norm) == (None, None, None)


def test_transitive_chain_is_one_cluster(sae: Path) -> None:
    plan = Compressor(build_report(8, [(6, 7), (0, 1), (1, 6)]), sae).plan()
    assert [c.members for c in plan.clusters] == [(0, 1, 6, 7)]


def test_default_representative_is_most_firing(sae: Path) -> None:
    # n_fires = 10·(fid+1), summed over within-cluster pairs:
    # {2: 30, 3: 40} and {5: 60+60, 6: 70+70, 7: 80+80}
    plan = Compressor(build_report(8, CONFIRMED), sae).plan()
    assert [(c.representative, c.zeroed) for c in plan.clusters] == [(3, (2,)), (7, (5, 6))]


def test_ties_go_to_lowest_fid(sae: Path) -> None:
    report = build_report(8, CONFIRMED, n_fires={f: 5 for f in range(8)})
    plan = Compressor(report, sae).plan()
    assert [c.representative for c in plan.clusters] == [2, 5]


def test_counts_only_within_cluster_pairs(sae: Path) -> None:
    # 2 fires a lot, but with features outside its cluster: those pairs do not count
    fires = {f: 1 for f in range(8)}
    fires[2] = 0
    fires[3] = 1
    report = build_report(8, [(2, 3)], n_fires=fires)
    assert Compressor(report, sae).plan().clusters[0].representative == 3


def buggy_totals(report, members):  # type: ignore[no-untyped-def]
    """Polygram 0.0.1's attribution: n_fires_i to min(i, j), n_fires_j to max."""
    tot = dict.fromkeys(members, 0)
    for p in report.pairs:
        if p.i in tot and p.j in tot:
            tot[min(p.i, p.j)] += p.n_fires_i
            tot[max(p.i, p.j)] += p.n_fires_j
    return tot


def test_fire_attribution_follows_pair_order_when_i_greater_than_j(sae: Path) -> None:
    # panel order 3, 1, 2 → stored pairs (3, 1), (3, 2), (1, 2)
    report = build_report(4, [(3, 1), (1, 2)], n_fires={3: 100, 1: 5, 2: 7}, feature_ids=[3, 1, 2])
    assert [(p.i, p.j) for p in report.pairs] == [(3, 1), (3, 2), (1, 2)]
    plan = Compressor(report, sae).plan()
    (c,) = plan.clusters
    # correct totals {3: 200, 1: 10, 2: 14}; 0.0.1 would have picked 2
    assert c.members == (1, 2, 3)
    assert c.representative == 3 and c.zeroed == (1, 2)
    buggy = buggy_totals(report, c.members)
    assert max(buggy, key=lambda f: (buggy[f], -f)) == 2


def test_representative_overrides(sae: Path) -> None:
    plan = Compressor(build_report(8, CONFIRMED), sae, representatives={1: 6}).plan()
    assert plan.clusters[0] == ClusterPlan(0, (2, 3), 3, (2,))  # default rule kept
    assert plan.clusters[1] == ClusterPlan(1, (5, 6, 7), 6, (5, 7))


@pytest.mark.parametrize(
    ("reps", "match"),
    [
        ({9: 2}, r"cluster_id=9 .*known cluster ids: \[0, 1\]"),
        ({True: 2}, r"cluster_id=True"),
        ({0: 5}, r"feature 5 is not a member of cluster 0 \(members \[2, 3\]\)"),
        ({1: "6"}, r"feature '6' is not a member of cluster 1"),
        ([(0, 2)], r"representatives: got list; expected a mapping"),
    ],
)
def test_override_errors(sae: Path, reps: object, match: str) -> None:
    with pytest.raises(CompressionError, match=match):
        Compressor(build_report(8, CONFIRMED), sae, representatives=reps)  # type: ignore[arg-type]


def test_plan_is_memoised_and_deterministic(sae: Path) -> None:
    c = Compressor(build_report(8, CONFIRMED), sae)
    first = c.plan()
    assert c.plan() is first
    # pair order and orientation do not matter
    shuffled = build_report(8, [(7, 5), (3, 2), (6, 5), (7, 6)])
    assert Compressor(shuffled, sae).plan() == first


def test_no_confirmed_pairs_means_no_clusters(sae: Path) -> None:
    assert Compressor(build_report(5, []), sae).plan().clusters == ()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"strategy": "prune"}, "unsupported strategy 'prune'; allowed: zero, merge"),
        ({"rep_selection": "x"}, "unsupported rep_selection 'x'; allowed: n_fires, scale_aware"),
        ({"merge_mode": "max"}, "unsupported merge_mode 'max'; allowed: freq_weighted"),
    ],
)
def test_constructor_rejects_bad_options(sae: Path, kw: dict[str, str], match: str) -> None:
    with pytest.raises(CompressionError, match=match):
        Compressor(build_report(4, []), sae, **kw)  # type: ignore[arg-type]


def test_constructor_rejects_missing_checkpoint_and_wrong_report(tmp_path: Path) -> None:
    with pytest.raises(SAEFileNotFoundError, match="nope.safetensors': no such file"):
        Compressor(build_report(4, []), tmp_path / "nope.safetensors")
    sae = synth_sae(tmp_path / "sae.safetensors")
    with pytest.raises(TypeError, match="expected a ValidationReport"):
        Compressor({"confirmed": []}, sae)  # type: ignore[arg-type]
    c = Compressor(build_report(4, []), str(sae))
    assert c.sae.source.path == sae and c.sae.source.kind == "file"


# --- scale_aware ------------------------------------------------------------


def scale_aware_oracle(
    norms: dict[int, float], kl: dict[int, float], fires: dict[int, float]
) -> int:
    """Spec 11 §3.2 rule 3 written out over plain Python lists."""
    members = sorted(norms)
    med = sorted(norms.values())[len(members) // 2]  # odd-sized clusters only

    def minmax(xs: list[float]) -> list[float]:
        lo, hi = min(xs), max(xs)
        return [0.0] * len(xs) if hi - lo < 1e-8 else [(x - lo) / (hi - lo) for x in xs]

    prox = [min(1.0, max(0.0, 1 - abs(norms[m] - med) / (med + 1e-8))) for m in members]
    abl = minmax([kl[m] for m in members])
    lf = minmax([math.log(fires[m] + 1e-8) for m in members])
    score = [0.4 * p + 0.4 * a + 0.2 * f for p, a, f in zip(prox, abl, lf)]
    return members[score.index(max(score))]


@pytest.mark.parametrize("panel", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_scale_aware_scoring_by_hand(tmp_path: Path, panel: list[int]) -> None:
    # norms 1, 2, 4 → median 2, prox (0.5, 1, 0); per-pair KL (0.5, 0.1, 0.1)
    # summed over 2 pairs → (1.0, 0.2, 0.2) → minmax (1, 0, 0); fires totals
    # (2, 2, 100) → log-minmax (0, 0, 1).  Scores 0.6, 0.4, 0.2 → feature 0,
    # while n_fires alone picks 2.  The panel order (i > j pairs) must not matter.
    sae = synth_sae(tmp_path / "s.safetensors", row_norms={0: 1.0, 1: 2.0, 2: 4.0})
    kl = {0: 0.5, 1: 0.1, 2: 0.1}
    fires = {0: 1, 1: 1, 2: 50}
    report = build_report(3, [(0, 1), (1, 2)], n_fires=fires, kl_ablate=kl, feature_ids=panel)
    c = Compressor(report, sae, rep_selection="scale_aware")
    assert c.plan().clusters[0].representative == 0
    assert (
        scale_aware_oracle({0: 1.0, 1: 2.0, 2: 4.0}, {0: 1.0, 1: 0.2, 2: 0.2}, {0: 2, 1: 2, 2: 100})
        == 0
    )
    assert Compressor(report, sae).plan().clusters[0].representative == 2


def test_scale_aware_random_clusters_match_oracle(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    for trial in range(20):
        norms = {f: float(rng.uniform(0.5, 3.0)) for f in range(5)}
        sae = synth_sae(tmp_path / f"s{trial}.safetensors", seed=trial, row_norms=norms)
        kl = {f: float(rng.uniform(0, 1)) for f in range(5)}
        fires = {f: int(rng.integers(0, 40)) for f in range(5)}
        panel = [int(f) for f in rng.permutation(5)]
        report = build_report(5, [(0, 1), (1, 2), (2, 3), (3, 4)], fires, kl, panel)
        # within a 5-clique report every feature is in 4 pairs
        want = scale_aware_oracle(
            {f: float(np.linalg.norm(_row(sae, f))) for f in range(5)},
            {f: 4 * kl[f] for f in range(5)},
            {f: 4 * fires[f] for f in range(5)},
        )
        got = Compressor(report, sae, rep_selection="scale_aware").plan().clusters[0]
        assert got.representative == want, trial


def _row(path: Path, f: int) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(path))["W_dec"][f].astype(np.float64)


def test_scale_aware_all_nan_kl_warns_and_scores_without_it(tmp_path: Path) -> None:
    sae = synth_sae(tmp_path / "s.safetensors", row_norms={0: 1.0, 1: 2.0, 2: 4.0})
    report = build_report(3, [(0, 1), (1, 2)], n_fires={0: 1, 1: 1, 2: 50})
    with pytest.warns(UserWarning, match="falling back to n_fires-only scoring"):
        plan = Compressor(report, sae, rep_selection="scale_aware").plan()
    # prox (0.5, 1, 0) ·0.4 + lf (0, 0, 1) ·0.2 → 0.2, 0.4, 0.2 → feature 1
    assert plan.clusters[0].representative == 1


def test_scale_aware_out_of_range_member(tmp_path: Path) -> None:
    sae = synth_sae(tmp_path / "s.safetensors", n=4)
    report = build_report(6, [(3, 5)], kl_ablate={3: 0.1, 5: 0.2})
    with pytest.raises(IndexError, match=r"feature id\(s\) \[5\] out of range"):
        Compressor(report, sae, rep_selection="scale_aware").plan()


def test_self_pair_is_refused(sae: Path) -> None:
    with pytest.raises(CompressionError, match=r"confirmed\[1\] = \(4, 4\): a feature paired"):
        Compressor(build_report(8, [(2, 3), (4, 4)]), sae).plan()
