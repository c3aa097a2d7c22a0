"""``fit_fold`` against a brute-force least-squares oracle (np.linalg.lstsq
over the per-token summed contributions of ``polygram.sae.forward``), its
closed form, hypothesis properties and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polygram.compression.fold import FoldFit, fit_fold
from polygram.errors import CompressionError, FoldError
from polygram.sae import SAE
from polygram.sae import forward as saef
from tests.compression.fold_helpers import (
    ARCHITECTURES,
    NORMALIZATIONS,
    Cluster,
    random_sae,
    silence,
    with_row,
)


def oracle_row(source: SAE, silenced: SAE, c: Cluster, x: np.ndarray) -> np.ndarray:
    """lstsq of the cluster's summed contribution on the representative's
    post-silence contribution per unit row (both from forward.contribution)."""
    x64 = x.astype(np.float32)
    group = [c.representative, *c.zeroed]
    acts = saef.encode(source, x64)
    target = sum(saef.contribution(source, acts[:, j], j, x64) for j in group)
    a_rep = saef.encode(silenced, x64)[:, c.representative]
    d_in = source.d_in
    # the representative's contribution is linear in its row: column i is its
    # contribution with row e_i, read back on coordinate i
    design = np.stack(
        [
            saef.contribution(
                with_row(silenced, c.representative, np.eye(d_in)[i]),
                a_rep,
                c.representative,
                x64,
            )[:, i]
            for i in range(d_in)
        ],
        axis=1,
    )
    q = design[:, 0].astype(np.float64)  # every column holds the same per-token scale
    np.testing.assert_allclose(design, np.repeat(q[:, None], d_in, 1), rtol=1e-6, atol=1e-7)
    sol, *_ = np.linalg.lstsq(q[:, None], target.astype(np.float64), rcond=None)
    return sol[0]


def make_case(
    seed: int, arch: str, normalize: str, d_in: int, d_sae: int, n_tokens: int, n_clusters: int
) -> tuple[SAE, SAE, list[Cluster], np.ndarray]:
    rng = np.random.default_rng(seed)
    src = random_sae(rng, arch, d_in, d_sae, normalize=normalize)
    x = rng.normal(size=(n_tokens, d_in)).astype(np.float32) * 2
    perm = rng.permutation(d_sae).tolist()
    clusters = []
    for cid in range(n_clusters):
        size = int(rng.integers(2, 4))
        members, perm = perm[:size], perm[size:]
        if len(members) < 2:
            break
        clusters.append(Cluster(cid, members[0], tuple(sorted(members[1:]))))
    silenced = silence(src, [m for c in clusters for m in c.zeroed])
    return src, silenced, clusters, x


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("normalize", NORMALIZATIONS)
def test_fold_row_is_the_least_squares_oracle(arch: str, normalize: str) -> None:
    src, silenced, clusters, x = make_case(3, arch, normalize, 5, 10, 200, 3)
    w_dec, fits = fit_fold(src, silenced, clusters, x)
    for c, fit in zip(clusters, fits, strict=True):
        if fit.fallback is not None:
            continue
        np.testing.assert_allclose(
            w_dec[c.representative], oracle_row(src, silenced, c, x), rtol=2e-4, atol=2e-5
        )
    folded_or_rep = {f for c in clusters for f in (c.representative, *c.zeroed)}
    others = [j for j in range(src.d_sae) if j not in folded_or_rep]
    np.testing.assert_array_equal(w_dec[others], src.tensors["W_dec"][others])
    for c in clusters:  # silenced rows stay zero
        assert not w_dec[list(c.zeroed)].any()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    arch=st.sampled_from(ARCHITECTURES),
    normalize=st.sampled_from(NORMALIZATIONS),
    d_in=st.integers(2, 6),
    d_sae=st.integers(4, 9),
    n_tokens=st.integers(1, 60),
)
def test_fold_properties(
    seed: int, arch: str, normalize: str, d_in: int, d_sae: int, n_tokens: int
) -> None:
    src, silenced, clusters, x = make_case(seed, arch, normalize, d_in, d_sae, n_tokens, 2)
    try:
        w_dec, fits = fit_fold(src, silenced, clusters, x)
    except FoldError as e:  # only for a representative that never fires while a member does
        assert "never fires" in str(e)
        return
    assert np.isfinite(w_dec).all()
    for c, fit in zip(clusters, fits, strict=True):
        assert fit.n_tokens == n_tokens
        assert 0.0 <= fit.residual_energy_fold <= fit.residual_energy_zero + 1e-9
        assert fit.residual_energy_fold <= fit.target_energy * (1 + 1e-9) + 1e-9
        if fit.fallback is None:
            want = oracle_row(src, silenced, c, x)
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(w_dec[c.representative], want, rtol=1e-3, atol=1e-4 * scale)
            if arch != "topk":  # a' = a: the representative keeps its own row's weight 1
                assert fit.coefficients[0] == pytest.approx(1.0, rel=1e-9)
        else:
            assert fit.fallback == "cluster_silent"
            np.testing.assert_array_equal(
                w_dec[c.representative], src.tensors["W_dec"][c.representative]
            )


def test_fold_energy_matches_the_reconstruction_it_writes() -> None:
    src, silenced, clusters, x = make_case(11, "standard", "layer_norm", 6, 12, 300, 3)
    w_dec, fits = fit_fold(src, silenced, clusters, x)
    folded = silenced.replace_tensors(W_dec=w_dec)
    a, a_new = saef.encode(src, x), saef.encode(folded, x)
    for c, fit in zip(clusters, fits, strict=True):
        group = [c.representative, *c.zeroed]
        target = sum(saef.contribution(src, a[:, j], j, x) for j in group).astype(np.float64)
        got = saef.contribution(folded, a_new[:, c.representative], c.representative, x)
        kept = saef.contribution(src, a[:, c.representative], c.representative, x)
        assert np.sum((target - got) ** 2) == pytest.approx(fit.residual_energy_fold, rel=1e-3)
        assert np.sum((target - kept) ** 2) == pytest.approx(fit.residual_energy_zero, rel=1e-3)
        assert np.sum(target**2) == pytest.approx(fit.target_energy, rel=1e-4)


def test_closed_form_sums_member_rows_weighted_by_co_firing() -> None:
    """Standard SAE, no normalisation: d_r' = d_r + Σ_m E[a_m a_r]/E[a_r²]·d_m."""
    src, silenced, clusters, x = make_case(5, "standard", "none", 4, 8, 500, 2)
    w_dec, fits = fit_fold(src, silenced, clusters, x)
    a = saef.encode(src, x).astype(np.float64)
    w = src.tensors["W_dec"].astype(np.float64)
    for c, fit in zip(clusters, fits, strict=True):
        r = c.representative
        want = w[r] + sum((a[:, m] @ a[:, r]) / (a[:, r] @ a[:, r]) * w[m] for m in c.zeroed)
        np.testing.assert_allclose(w_dec[r], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            fit.coefficients,
            [1.0, *((a[:, m] @ a[:, r]) / (a[:, r] @ a[:, r]) for m in c.zeroed)],
            rtol=1e-9,
        )


def planted_duplicates() -> tuple[SAE, np.ndarray]:
    """Feature 1 is an exact encoder copy of feature 0 holding 5 % of its
    decoder row (the real tier's planted pairs); feature 2 fires on disjoint
    tokens (x₀ < 0), feature 3 is never active."""
    w_enc = np.zeros((2, 4), np.float32)
    w_enc[0, 0] = w_enc[0, 1] = 1.0
    w_enc[0, 2] = -1.0
    w_dec = np.zeros((4, 2), np.float32)
    w_dec[0] = [0.95, 0.0]
    w_dec[1] = [0.05, 0.0]
    w_dec[2] = [-1.0, 0.5]
    w_dec[3] = [0.0, 1.0]
    sae = SAE(
        architecture="standard",
        tensors={
            "W_enc": w_enc,
            "b_enc": np.array([0, 0, 0, -1], np.float32),
            "W_dec": w_dec,
            "b_dec": np.zeros(2, np.float32),
        },
    )
    x = np.stack([np.linspace(-2, 2, 41), np.zeros(41)], axis=1).astype(np.float32)
    return sae, x


def test_exact_copies_are_folded_back_exactly() -> None:
    sae, x = planted_duplicates()
    c = Cluster(0, 0, (1,))
    silenced = silence(sae, [1])
    w_dec, (fit,) = fit_fold(sae, silenced, [c], x)
    np.testing.assert_allclose(w_dec[0], [1.0, 0.0], rtol=1e-6)
    assert fit.coefficients == pytest.approx((1.0, 1.0))
    assert fit.residual_energy_fold == pytest.approx(0.0, abs=1e-9)
    assert fit.explained_fold == pytest.approx(1.0)
    assert fit.explained_zero == pytest.approx(1 - 0.05**2)
    np.testing.assert_allclose(
        saef.reconstruct(silenced.replace_tensors(W_dec=w_dec), x),
        saef.reconstruct(sae, x),
        rtol=1e-6,
    )


def test_a_never_co_firing_member_gets_weight_zero() -> None:
    sae, x = planted_duplicates()
    c = Cluster(0, 0, (2,))  # feature 2 fires only where feature 0 does not
    w_dec, (fit,) = fit_fold(sae, silence(sae, [2]), [c], x)
    assert fit.coefficients == (1.0, 0.0)
    np.testing.assert_array_equal(w_dec[0], sae.tensors["W_dec"][0])
    assert fit.residual_energy_fold == pytest.approx(fit.residual_energy_zero)
    assert fit.explained_fold < 1.0


def test_a_silent_cluster_keeps_the_representative_row() -> None:
    sae, x = planted_duplicates()
    c = Cluster(0, 3, ())  # feature 3 never fires on x
    w_dec, (fit,) = fit_fold(sae, sae, [c], x)
    assert fit.fallback == "cluster_silent"
    assert fit.n_representative_fires == 0
    assert fit.coefficients == (1.0,)
    assert fit.explained_fold == 1.0
    np.testing.assert_array_equal(w_dec, sae.tensors["W_dec"])


def test_a_representative_that_never_fires_while_a_member_does_is_refused() -> None:
    sae, x = planted_duplicates()
    with pytest.raises(FoldError, match=r"representative 3 never fires.*\(0, 20\)"):
        fit_fold(sae, silence(sae, [0]), [Cluster(7, 3, (0,))], x)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 0.0]], np.float32), r"NaN or infinite .* token 0"),
        (np.array([[0.0, 1.0], [np.inf, 0.0]]), r"first at token 1"),
        (np.zeros((0, 2), np.float32), "0 tokens"),
        (np.zeros((3, 5), np.float32), r"shape \[3, 5\]; expected a float \(tokens, 2\)"),
        (np.zeros((3, 2), np.int64), "dtype int64"),
    ],
)
def test_bad_activations_are_refused(x: np.ndarray, match: str) -> None:
    sae, _ = planted_duplicates()
    with pytest.raises(FoldError, match=match):
        fit_fold(sae, sae, [Cluster(0, 0, (1,))], x)


def test_bad_clusters_are_refused() -> None:
    sae, x = planted_duplicates()
    with pytest.raises(FoldError, match=r"out of range 0..3"):
        fit_fold(sae, sae, [Cluster(0, 0, (9,))], x)
    with pytest.raises(FoldError, match="disjoint"):
        fit_fold(sae, sae, [Cluster(0, 0, (1,)), Cluster(1, 1, (2,))], x)
    with pytest.raises(FoldError, match="disjoint"):
        fit_fold(sae, sae, [Cluster(0, 0, (0,))], x)
    assert issubclass(FoldError, CompressionError)


def test_no_clusters_returns_the_silenced_decoder() -> None:
    sae, x = planted_duplicates()
    w_dec, fits = fit_fold(sae, sae, [], x)
    assert fits == ()
    np.testing.assert_array_equal(w_dec, sae.tensors["W_dec"])
    assert w_dec.flags.writeable


def test_fit_is_a_frozen_record() -> None:
    fit = FoldFit(0, 1, (2,), 10, 3, (1.0, 0.5), 2.0, 0.5, 1.0)
    assert fit.explained_fold == pytest.approx(0.75)
    assert fit.explained_zero == pytest.approx(0.5)
    with pytest.raises(AttributeError):
        fit.n_tokens = 3  # type: ignore[misc]
