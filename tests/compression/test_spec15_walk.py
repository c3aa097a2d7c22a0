"""Spec 15 §3.2 (the target-K walk) and §4 (``kl_attribution``): the walk
against a literal, copy-every-snapshot transcription of the rule, the
representative rules against plain-Python oracles, and the peak properties."""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from spec15_cases import CASES, hand_report, scored_pairs, synth_sae_arrays

from polygram.compression.clusters import connected_components
from polygram.compression.pareto import check_target, check_targets, walk_targets
from polygram.compression.representatives import PairTable, choose_representatives
from polygram.errors import CompressionError


def _oracle_walk(pairs: list[tuple[int, int, float]], targets: list[int]) -> dict[int, Any]:
    """Spec 15 §3.2 word for word: dict union-find, a deep copy at every snapshot."""
    ranked = sorted(
        ((s, min(i, j), max(i, j)) for i, j, s in pairs if not math.isnan(s)),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    n_c = peak = 0
    peak_parent: dict[int, int] = {}
    plateau_parent: dict[int, int] = {}
    frozen = False
    exceeded = dict.fromkeys(targets, False)
    snap: dict[int, dict[int, int]] = {}
    for _, a, b in ranked:
        new_a, new_b = a not in parent, b not in parent
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            n_c += 1 if (new_a and new_b) else -1 if not (new_a or new_b) else 0
            parent[max(ra, rb)] = min(ra, rb)
        if n_c > peak:
            peak = n_c
            peak_parent = copy.deepcopy(parent)
            plateau_parent = copy.deepcopy(parent)
            frozen = False
        elif not frozen:
            if n_c < peak:
                frozen = True
            else:
                plateau_parent = copy.deepcopy(parent)
        for k in sorted(targets, reverse=True):
            if k in snap:
                continue
            if n_c > k:
                exceeded[k] = True
            elif exceeded[k]:
                snap[k] = copy.deepcopy(parent)
        if len(snap) == len(targets):
            break

    def comps(par: dict[int, int]) -> tuple[tuple[int, ...], ...]:
        groups: dict[int, list[int]] = {}
        p = dict(par)

        def f(a: int) -> int:
            while p[a] != a:
                a = p[a]
            return a

        for x in p:
            groups.setdefault(f(x), []).append(x)
        return tuple(sorted(tuple(sorted(g)) for g in groups.values()))

    out = {}
    for k in targets:
        if k in snap:
            out[k] = (comps(snap[k]), True)
        elif not exceeded[k] and k == peak:
            out[k] = (comps(plateau_parent), True)
        elif not exceeded[k]:
            out[k] = (comps(peak_parent), False)
        else:
            out[k] = (comps(parent), False)
    return {"peak": peak, "out": out}


def _report(pairs: list[tuple[int, int, float]]) -> Any:
    return hand_report(
        sorted({f for i, j, _ in pairs for f in (i, j)}),
        [{"i": i, "j": j, "polygram_overlap": s} for i, j, s in pairs],
    )


@st.composite
def pair_lists(draw: st.DrawFn) -> list[tuple[int, int, float]]:
    n = draw(st.integers(2, 9))
    edges = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.integers(0, n - 1),
                st.sampled_from([0.1, 0.3, 0.5, 0.5, 0.7, 0.9, math.nan]),
            ).filter(lambda e: e[0] != e[1]),
            min_size=1,
            max_size=20,
        )
    )
    if all(math.isnan(s) for _, _, s in edges):
        edges.append((0, 1, 0.4))
    return edges


@given(pair_lists(), st.lists(st.integers(1, 6), min_size=1, max_size=5))
def test_walk_matches_the_literal_rule(
    pairs: list[tuple[int, int, float]], targets: list[int]
) -> None:
    ks = sorted(set(targets), reverse=True)
    walk = walk_targets(_report(pairs).pairs, "polygram_overlap", ks)
    want = _oracle_walk(pairs, ks)
    assert walk.peak == want["peak"]
    for k in ks:
        assert (walk.components(k), walk.reached[k]) == want["out"][k], k
        # one target at a time gives the same plan (plan_with_target == plan_pareto([K]))
        single = walk_targets(_report(pairs).pairs, "polygram_overlap", [k])
        assert single.components(k) == walk.components(k)


@given(pair_lists())
def test_zeroed_is_monotone_around_the_peak(pairs: list[tuple[int, int, float]]) -> None:
    peak = walk_targets(_report(pairs).pairs, "polygram_overlap", [1]).peak
    ks = [k for k in (peak - 1, peak, peak + 1) if k >= 1]
    walk = walk_targets(_report(pairs).pairs, "polygram_overlap", ks)
    zeroed = {k: sum(len(c) - 1 for c in walk.components(k)) for k in ks}
    for a, b in itertools.pairwise(ks):
        assert zeroed[a] >= zeroed[b]
    assert walk.reached[peak] is True
    assert walk.reached[peak + 1] is False
    assert len(walk.components(peak)) == peak


@pytest.mark.parametrize("key", ["target_k_chain", "target_k_random"])
def test_walk_reference_partitions(key: str) -> None:
    inp, want = CASES[key]["inputs"], CASES[key]["expected"]
    pairs = inp["report_pairs"]
    if isinstance(pairs, dict):
        pairs = scored_pairs(**pairs["scored_pairs"])
    report = hand_report(inp["feature_ids"], pairs)
    walk = walk_targets(report.pairs, inp["score_field"], inp["targets"])
    assert walk.peak == want["peak_n_clusters"]
    table = PairTable.of(report.pairs)
    for k, o in want["outcomes"].items():
        comps = walk.components(int(k))
        assert [list(c) for c in comps] == [c["members"] for c in o["clusters"]]
        assert walk.reached[int(k)] is o["reached_target"]
        reps = choose_representatives("n_fires", comps, table, lambda m: np.zeros(len(m)))
        assert reps == [c["representative"] for c in o["clusters"]]


def test_chain_at_the_peak_differs_from_0_15() -> None:
    case = CASES["target_k_chain"]
    report = hand_report(case["inputs"]["feature_ids"], case["inputs"]["report_pairs"])
    walk = walk_targets(report.pairs, "polygram_overlap", [3])
    upstream = case["upstream_0_15_differs"]["3"]["clusters"]
    assert [list(c) for c in walk.components(3)] != [c["members"] for c in upstream]


def test_walk_refusals() -> None:
    nan_only = hand_report([0, 1], [{"i": 0, "j": 1, "polygram_overlap": None}])
    with pytest.raises(CompressionError, match=r"score_field='polygram_overlap'.*decoder_overlap"):
        walk_targets(nan_only.pairs, "polygram_overlap", [1])
    selfpair = hand_report([0], [{"i": 0, "j": 0}])
    with pytest.raises(CompressionError, match="itself"):
        walk_targets(selfpair.pairs, "polygram_overlap", [1])
    ok = hand_report([0, 1], [{"i": 0, "j": 1}])
    with pytest.raises(CompressionError, match=r"score_field.*'kl'.*polygram_overlap"):
        walk_targets(ok.pairs, "kl", [1])


@pytest.mark.parametrize("bad", [0, -2, True, 1.5, "3", None, np.float64(2.0)])
def test_bad_target(bad: Any) -> None:
    with pytest.raises(
        CompressionError, match=r"target_n_features_kept: got .*allowed: an integer >= 1"
    ):
        check_target(bad)


def test_targets() -> None:
    assert check_targets([2, np.int64(5), 2, 1]) == (5, 2, 1)
    for bad in ([], "12", [1, 0], [True], 3, [1.0]):
        with pytest.raises(CompressionError, match="targets"):
            check_targets(bad)


# ------------------------------------------------------- representatives
def _oracle_kl_attribution(
    pairs: list[dict[str, Any]], members: tuple[int, ...], norms: dict[int, float]
) -> int:
    inside = [p for p in pairs if p["i"] in members and p["j"] in members]
    vals: dict[int, list[float]] = {m: [] for m in members}
    fires = dict.fromkeys(members, 0)
    for p in inside:
        for end, kl, nf in (("i", "kl_ablate_i", "n_fires_i"), ("j", "kl_ablate_j", "n_fires_j")):
            f = p[end]
            fires[f] += p.get(nf, 10)
            v = p.get(kl)
            if v is not None and math.isfinite(v):
                vals[f].append(v)
    mean = {m: (sum(v) / len(v) if v else None) for m, v in vals.items()}

    def minmax(d: dict[int, float]) -> dict[int, float]:
        lo, hi = min(d.values()), max(d.values())
        return {k: 0.0 if hi - lo < 1e-8 else (v - lo) / (hi - lo) for k, v in d.items()}

    score = minmax({m: v for m, v in mean.items() if v is not None})
    lacking = [m for m in members if mean[m] is None]
    if lacking:
        med = float(np.median([norms[m] for m in lacking]))
        prox = {m: min(1.0, max(0.0, 1 - abs(norms[m] - med) / (med + 1e-8))) for m in lacking}
        lf = minmax({m: math.log(fires[m] + 1e-8) for m in lacking})
        score.update(minmax({m: 0.5 * prox[m] + 0.5 * lf[m] for m in lacking}))
    return min(members, key=lambda m: (-score[m], -fires[m], m))


def test_kl_attribution_reference_case() -> None:
    case = CASES["kl_attribution_swapped_pairs"]
    inp = case["inputs"]
    report = hand_report(inp["feature_ids"], inp["report_pairs"])
    comps = connected_components([(p.i, p.j) for p in report.pairs])
    w = synth_sae_arrays(inp["sae"])["W_dec"]
    reps = choose_representatives(
        "kl_attribution",
        comps,
        PairTable.of(report.pairs),
        lambda m: np.linalg.norm(w[list(m)].astype(np.float64), axis=1),
    )
    assert reps == [c["representative"] for c in case["expected"]["clusters"]]
    assert reps != [c["representative"] for c in case["upstream_0_15_raw"]]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.integers(0, 5),
            st.one_of(st.none(), st.floats(0, 2)),
            st.one_of(st.none(), st.floats(0, 2)),
            st.integers(0, 30),
            st.integers(0, 30),
        ).filter(lambda t: t[0] != t[1]),
        min_size=1,
        max_size=12,
    )
)
def test_kl_attribution_matches_the_oracle(rows: list[tuple[Any, ...]]) -> None:
    pairs = [
        {"i": i, "j": j, "kl_ablate_i": a, "kl_ablate_j": b, "n_fires_i": fi, "n_fires_j": fj}
        for i, j, a, b, fi, fj in rows
    ]
    report = hand_report(list(range(6)), pairs)
    comps = connected_components([(p["i"], p["j"]) for p in pairs])
    norms = {f: 1.0 + 0.37 * f for f in range(6)}
    table = PairTable.of(report.pairs)
    for comp in comps:
        has_kl = any(
            p[k] is not None
            for p in pairs
            for end, k in (("i", "kl_ablate_i"), ("j", "kl_ablate_j"))
            if p["i"] in comp and p["j"] in comp
        )
        if not has_kl:
            with pytest.raises(CompressionError, match=r"kl_attribution.*scale_aware.*n_fires"):
                choose_representatives(
                    "kl_attribution", (comp,), table, lambda m: np.array([norms[f] for f in m])
                )
            continue
        got = choose_representatives(
            "kl_attribution", (comp,), table, lambda m: np.array([norms[f] for f in m])
        )
        assert got == [_oracle_kl_attribution(pairs, comp, norms)]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 7), st.integers(0, 7), st.integers(0, 40), st.integers(0, 40)
        ).filter(lambda t: t[0] != t[1]),
        min_size=1,
        max_size=15,
    )
)
def test_n_fires_matches_a_dict_loop(rows: list[tuple[int, int, int, int]]) -> None:
    pairs = [{"i": i, "j": j, "n_fires_i": a, "n_fires_j": b} for i, j, a, b in rows]
    report = hand_report(list(range(8)), pairs)
    comps = connected_components([(i, j) for i, j, _, _ in rows[: max(1, len(rows) // 2)]])
    tot: dict[int, int] = {}
    member = {m: c for c, comp in enumerate(comps) for m in comp}
    for i, j, a, b in rows:
        if i in member and member.get(j) == member[i]:
            tot[i] = tot.get(i, 0) + a
            tot[j] = tot.get(j, 0) + b
    want = [min(c, key=lambda f: (-tot.get(f, 0), f)) for c in comps]
    assert choose_representatives("n_fires", comps, PairTable.of(report.pairs), lambda m: m) == want
