"""The quiet regrow rule (``quiet_refill``): measured quietness, least-squares
scales against a brute-force lstsq over the flattened residuals, residual
energy that never grows, per-architecture encoders and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polygram.compression.quiet_regrow import QuietSlot, quiet_refill
from polygram.errors import CompressionError, RegrowError
from polygram.sae import SAE
from polygram.sae import forward as saef
from tests.compression.fold_helpers import ARCHITECTURES, NORMALIZATIONS, random_sae, silence


def kmeans(r: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=2, random_state=seed, algorithm="lloyd").fit(r)
    return km.cluster_centers_, km.labels_.astype(np.int64)


def case(
    seed: int, arch: str, normalize: str, n_tokens: int = 300, n_slots: int = 3
) -> tuple[SAE, list[int], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    full = random_sae(rng, arch, 5, 9, normalize=normalize)
    slots = sorted(rng.choice(9, size=n_slots, replace=False).tolist())
    sae = silence(full, slots)
    x = (2 * rng.normal(size=(n_tokens, 5))).astype(np.float32)
    c, lab = kmeans(np.asarray(saef.residual(sae, x), np.float64), n_slots, seed)
    return sae, slots, x, c, lab


def energy(sae: SAE, x: np.ndarray) -> float:
    return float(np.sum(np.asarray(saef.residual(sae, x), np.float64) ** 2))


def oracle_scales(sae: SAE, new: SAE, slots: list[int], x: np.ndarray) -> np.ndarray:
    """lstsq over the flattened residuals: column k is slot k's contribution
    with α = 1 (forward.contribution of its unit-centroid row)."""
    r = np.asarray(saef.residual(sae, x), np.float64).reshape(-1)
    f = saef.encode(new, x)
    cols = []
    for j in slots:
        row = np.asarray(new.tensors["W_dec"][j], np.float64)
        n = np.linalg.norm(row)
        w = np.array(new.tensors["W_dec"])
        w[j] = row / n if n else 0
        cols.append(
            np.asarray(saef.contribution(new.replace_tensors(W_dec=w), f[:, j], j, x)).reshape(-1)
        )
    alpha, *_ = np.linalg.lstsq(np.stack(cols, 1).astype(np.float64), r, rcond=None)
    return alpha


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("normalize", NORMALIZATIONS)
def test_slots_are_quiet_and_least_squares(arch: str, normalize: str) -> None:
    sae, slots, x, c, lab = case(1, arch, normalize)
    new, report = quiet_refill(sae, slots, x, c, lab)
    f = saef.encode(new, x)
    assert np.isfinite(np.concatenate([np.asarray(a).ravel() for a in new.tensors.values()])).all()
    for s in report:
        assert s.n_fires == int((f[:, s.feature_id] > 0).sum()) or not s.written
        assert s.fire_share <= 2 * s.cluster_share
        if arch != "topk":  # exactly its cluster's share of the fit tokens
            assert s.n_fires == s.cluster_size or not s.written
    written = [s.feature_id for s in report if s.written]
    got = np.array([s.scale for s in report if s.written])
    scales = oracle_scales(sae, new, written, x)
    np.testing.assert_allclose(got, scales, rtol=2e-3, atol=1e-5)
    if arch != "topk":  # the new slots leave every other feature alone: energy cannot grow
        assert energy(new, x) <= energy(sae, x) * (1 + 1e-6)
    others = [j for j in range(sae.d_sae) if j not in slots]
    for name, a in sae.tensors.items():
        b = new.tensors[name]
        if name == "W_enc":
            np.testing.assert_array_equal(b[:, others], a[:, others])
        elif name != "b_dec":
            np.testing.assert_array_equal(b[others], a[others])
        else:
            np.testing.assert_array_equal(b, a)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    arch=st.sampled_from(ARCHITECTURES),
    normalize=st.sampled_from(NORMALIZATIONS),
    n_tokens=st.integers(4, 80),
    n_slots=st.integers(1, 4),
)
def test_quiet_refill_properties(
    seed: int, arch: str, normalize: str, n_tokens: int, n_slots: int
) -> None:
    sae, slots, x, c, lab = case(seed, arch, normalize, n_tokens, n_slots)
    new, report = quiet_refill(sae, slots, x, c, lab)
    assert [s.feature_id for s in report] == slots
    f = saef.encode(new, x)
    assert np.isfinite(f).all()
    for s in report:
        assert s.n_fires <= s.cluster_size  # ties can only make it quieter
        assert 0 <= s.n_fires_in_cluster <= s.n_fires
        if not s.written:
            assert s.scale == 0.0 and not (f[:, s.feature_id] > 0).any()
    if arch != "topk":
        assert energy(new, x) <= energy(sae, x) * (1 + 1e-5) + 1e-6


def planted_gap() -> tuple[SAE, np.ndarray, np.ndarray]:
    """An SAE that reconstructs everything but direction e₂, which carries
    signal on the last 40 of 100 tokens; slot 2 is free."""
    w = np.zeros((3, 3), np.float32)
    w[0, 0] = w[1, 1] = 1.0
    w_enc = w.T.copy()
    sae = SAE(
        architecture="standard",
        tensors={
            "W_enc": w_enc,
            "b_enc": np.zeros(3, np.float32),
            "W_dec": w,
            "b_dec": np.zeros(3, np.float32),
        },
    )
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(100, 3))).astype(np.float32)
    x[:60, 2] = 0.0
    x[60:, 2] += 3.0
    return sae, x, (np.arange(100) >= 60).astype(np.int64)


def test_a_planted_gap_is_filled_by_a_slot_firing_only_on_its_tokens() -> None:
    sae, x, on = planted_gap()
    r = np.asarray(saef.residual(sae, x), np.float64)
    centroid = r[on == 1].mean(0, keepdims=True)
    new, (slot,) = quiet_refill(sae, [2], x, centroid, np.zeros(100, np.int64))
    assert slot.cluster_size == 100 and slot.n_fires == 100  # one cluster: every token
    # two clusters: the gap tokens and the rest (centroid 0: that slot stays zero)
    cents = np.stack([r[on == 1].mean(0), np.zeros(3)])
    sae4 = SAE(
        architecture="standard",
        tensors={
            "W_enc": np.pad(sae.tensors["W_enc"], ((0, 0), (0, 1))),
            "b_enc": np.zeros(4, np.float32),
            "W_dec": np.pad(sae.tensors["W_dec"], ((0, 1), (0, 0))),
            "b_dec": np.zeros(3, np.float32),
        },
    )
    new, (gap, rest) = quiet_refill(sae4, [2, 3], x, cents, 1 - on)
    assert (gap.cluster_size, gap.n_fires, gap.n_fires_in_cluster) == (40, 40, 40)
    assert gap.precision == 1.0 and gap.written
    assert not rest.written and rest.scale == 0.0
    fired = saef.encode(new, x)[:, 2] > 0
    np.testing.assert_array_equal(fired, on == 1)
    assert energy(new, x) < 0.05 * energy(sae4, x)  # the gap is reconstructed
    np.testing.assert_array_equal(new.tensors["W_dec"][3], 0)


def test_jumprelu_carries_a_positive_threshold_in_threshold() -> None:
    sae, slots, x, c, lab = case(2, "jumprelu", "none")
    new, report = quiet_refill(sae, slots, x, c, lab)
    for s in report:
        if s.written and s.threshold > 0:
            assert new.tensors["threshold"][s.feature_id] == pytest.approx(s.threshold, rel=1e-6)
            assert new.tensors["b_enc"][s.feature_id] == 0
        elif s.written:
            assert new.tensors["threshold"][s.feature_id] == 0
            assert new.tensors["b_enc"][s.feature_id] == pytest.approx(-s.threshold, rel=1e-6)
    assert any(s.written and s.threshold > 0 for s in report)


def test_gated_slot_encoders() -> None:
    sae, slots, x, c, lab = case(3, "gated", "none")
    new, report = quiet_refill(sae, slots, x, c, lab)
    for s in report:
        if s.written:
            j = s.feature_id
            assert new.tensors["r_mag"][j] == 0
            assert new.tensors["b_gate"][j] == new.tensors["b_mag"][j]
            assert new.tensors["b_gate"][j] == pytest.approx(-s.threshold, rel=1e-6)


def test_fewer_tokens_than_slots_is_refused() -> None:
    sae, slots, x, c, lab = case(4, "standard", "none", n_tokens=30, n_slots=3)
    with pytest.raises(RegrowError, match="2 residual tokens for 3 slots"):
        quiet_refill(sae, slots, x[:2], c, lab[:2])
    assert issubclass(RegrowError, CompressionError)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ("nan", "NaN or infinite"),
        ("labels", r"labels .* integers in 0..2"),
        ("centroids", r"centroids have shape \[2, 5\]"),
        ("slots", r"slots \[.*\] must be distinct ids"),
        ("residuals", r"residuals have shape"),
    ],
)
def test_bad_inputs_are_refused(edit: str, match: str) -> None:
    sae, slots, x, c, lab = case(5, "standard", "none", n_tokens=30)
    kw: dict[str, object] = {}
    if edit == "nan":
        x = x.copy()
        x[3, 1] = np.nan
    elif edit == "labels":
        lab = lab + 5
    elif edit == "centroids":
        c = c[:2]
    elif edit == "slots":
        slots = [slots[0], slots[0], slots[1]]
    else:
        kw["residuals"] = np.zeros((3, 5))
    with pytest.raises(RegrowError, match=match):
        quiet_refill(sae, slots, x, c, lab, **kw)  # type: ignore[arg-type]


def test_no_slots_is_the_same_sae() -> None:
    sae, _, x, _, _ = case(6, "standard", "none", n_tokens=10, n_slots=1)
    new, report = quiet_refill(sae, [], x, np.zeros((0, 5)), np.zeros(10, np.int64))
    assert new is sae and report == ()


def test_slot_record() -> None:
    s = QuietSlot(4, 10, 0.5, 1.5, 8, 6, 100, True)
    assert (s.cluster_share, s.fire_share, s.precision) == (0.1, 0.08, 0.75)
    assert QuietSlot(4, 0, 0.0, 0.0, 0, 0, 100, False).precision == 1.0
