"""HEA_Rung2 / Rung3 construction rules, knob grammar and the port's refusal
of knob writes that cannot change the state (00 "Port decisions")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from enc_helpers import animals_hea, quickstart_rung3

from polygram import Dictionary, Experiment, Feature, HEA_Rung2, MPSRung1, Rung3
from polygram.errors import DictionaryError, KnobError, PolygramError

H = {"c": ["a", "b"], "k": ["x"]}


def hea(encoding: HEA_Rung2, **theta: np.ndarray) -> Dictionary:
    feats = [
        Feature("a", "c", beta=0.3, alpha=0.2, gamma=-0.1, phi=0.4, theta=theta.get("a")),
        Feature("b", "c", beta=-0.2, phi=0.1, theta=theta.get("b")),
        Feature("x", "k", beta=0.5, theta=theta.get("x")),
    ]
    if encoding.max_features < 3:  # one qubit holds two states
        return Dictionary("H", [feats[0], feats[2]], {"c": ["a"], "k": ["x"]}, encoding)
    return Dictionary("H", feats, H, encoding)


# ------------------------------------------------------------ encoding fields
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, r"depth: got 0; must be an int in \[1, 1024\]"),
        ({"depth": 10**6}, r"depth: got 1000000; must be an int in \[1, 1024\]"),
        ({"depth": -1}, "depth"),
        ({"depth": 1.0}, "depth: got 1.0"),
        ({"depth": True}, "depth: got True"),
        ({"depth": "2"}, "depth"),
        ({"depth": 1, "entangler": "star"}, "entangler: got 'star'; allowed ring, chain"),
        ({"depth": 1, "rotations": ()}, "rotations"),
        ({"depth": 1, "rotations": ("Ry", "Rw")}, r"rotations: got \('Ry', 'Rw'\)"),
        ({"depth": 1, "rotations": "Ry"}, "rotations"),
        ({"depth": 1, "rotations": ("ry",)}, "rotations"),
        ({"depth": 1, "n_qubits": 0}, r"n_qubits: got 0; must be an int in \[1, 20\]"),
        ({"depth": 1, "n_qubits": 21}, "n_qubits"),
        ({"depth": 1, "n_qubits": 2.5}, "n_qubits"),
        ({"depth": 1, "tier_separation_bound": 1.5}, "tier_separation_bound: got 1.5"),
        ({"depth": 1, "tier_separation_bound": -0.1}, "tier_separation_bound"),
        ({"depth": 1, "tier_separation_bound": math.nan}, "tier_separation_bound"),
        ({"depth": 1, "tier_separation_bound": True}, "tier_separation_bound: got True"),
        ({"depth": 1, "tier_separation_bound": "0.1"}, "tier_separation_bound"),
    ],
)
def test_bad_hea_fields(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DictionaryError, match=match):
        HEA_Rung2(**kwargs)  # type: ignore[arg-type]


def test_hea_fields_are_normalised() -> None:
    enc = HEA_Rung2(depth=np.int64(2), rotations=["Rz", "Ry"], n_qubits=np.int32(2))
    assert (enc.depth, enc.n_qubits, enc.rotations) == (2, 2, ("Rz", "Ry"))
    assert type(enc.depth) is int and type(enc.n_qubits) is int
    assert enc.theta_shape == (2, 2, 2) and enc.max_features == 4
    assert HEA_Rung2(depth=1, tier_separation_bound=None).tier_separation_bound is None
    assert HEA_Rung2(depth=1, tier_separation_bound=0).tier_separation_bound == 0
    # Duplicates build (0.0.1 parity); only emission refuses them (test_emission).
    assert HEA_Rung2(depth=1, rotations=("Ry", "Ry")).theta_shape == (2, 1, 3)


def test_rung3_fields() -> None:
    with pytest.raises(DictionaryError, match="bond_dim"):
        Rung3(bond_dim=3)
    assert Rung3().max_features == 16
    assert repr(Rung3()) == "Rung3(bond_dim=2)"


# --------------------------------------------------------------- explicit θ
@pytest.mark.parametrize(
    ("theta", "error", "match"),
    [
        (
            np.zeros((2, 2, 2)),
            DictionaryError,
            r"theta shape \(2, 2, 2\) != encoding theta_shape \(2, 2, 3\)",
        ),
        (np.zeros((1, 2, 3)), DictionaryError, "theta shape"),
        (np.zeros((2, 6)), DictionaryError, r"theta: shape \(2, 6\)"),
        (np.zeros(12), DictionaryError, "theta: shape"),
        ([[["a"]]], DictionaryError, "not a numeric array"),
        (np.full((2, 2, 3), np.nan), DictionaryError, "non-finite"),
        (np.full((2, 2, 3), np.inf), DictionaryError, "non-finite"),
        # complex θ would silently lose its imaginary part; bools are no angles
        (np.ones((2, 2, 3), complex), DictionaryError, "dtype complex128 is not allowed"),
        (np.ones((2, 2, 3), bool), DictionaryError, "dtype bool is not allowed"),
    ],
)
def test_bad_explicit_theta(theta: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        hea(HEA_Rung2(depth=2), a=theta)  # type: ignore[arg-type]


def test_explicit_theta_is_used_and_frozen() -> None:
    theta = np.arange(12, dtype=float).reshape(2, 2, 3) / 10
    d = hea(HEA_Rung2(depth=2), a=theta)
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2)
    np.testing.assert_array_equal(enc.theta_of(d.feature("a")), theta)
    np.testing.assert_array_equal(d.knob_table[0], theta.ravel())
    theta[0, 0, 0] = 9.0  # the feature holds its own read-only copy
    assert d.feature("a").theta[0, 0, 0] == 0.0  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        d.feature("a").theta[0, 0, 0] = 1.0  # type: ignore[index]


def test_explicit_theta_is_ignored_by_other_encodings() -> None:
    f = Feature("a", "c", beta=0.3, theta=np.ones((5, 5, 5)))
    d = Dictionary("M", [f], {"c": ["a"]})
    assert d.knob_table.tolist() == [[0.0, 0.3, 0.0, 0.0]]


# ------------------------------------------------------------ knob writes
def test_theta_writes() -> None:
    d = hea(HEA_Rung2(depth=2))
    w = d.with_knob("a.theta[1,1,2]", 0.7)
    enc = d.encoding
    assert isinstance(enc, HEA_Rung2)
    want = enc.default_theta(d.feature("a"))
    want[1, 1, 2] = 0.7
    np.testing.assert_array_equal(w.feature("a").theta, want)  # default materialised first
    assert w.feature("b").theta is None
    # cluster-shared: each member's own θ, one slot overwritten
    c = d.with_knob("c.theta[0,0,0]", -1.0)
    for name in ("a", "b"):
        t = enc.default_theta(d.feature(name))
        t[0, 0, 0] = -1.0
        np.testing.assert_array_equal(c.feature(name).theta, t)
    assert c.feature("x").theta is None
    assert d.feature("a").theta is None  # the original is untouched


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("a.theta[2,0,0]", r"index r=2 out of range; theta_shape is \(2, 2, 3\)"),
        ("a.theta[0,2,0]", "index d=2 out of range"),
        ("a.theta[0,0,3]", "index q=3 out of range"),
        ("a.theta_amp", r"'\.theta_amp' has no effect on HEA_Rung2"),
        ("c.psi_aux", r"'\.psi_aux' has no effect on HEA_Rung2"),
        ("z.theta[0,0,0]", "neither a feature nor a cluster"),
        ("a.theta[0,0,0] ", "malformed"),
        ("a.theta[+0,0,0]", "malformed"),
        ("a.theta[0,0,0]\n", "malformed"),
    ],
)
def test_bad_hea_knob_paths(path: str, match: str) -> None:
    with pytest.raises(KnobError, match=match):
        hea(HEA_Rung2(depth=2)).with_knob(path, 0.1)


@pytest.mark.parametrize(
    ("encoding", "theta_on", "path"),
    [
        (HEA_Rung2(depth=2), "a", "a.phi"),  # explicit θ
        (HEA_Rung2(depth=2), "a", "c.phi"),  # cluster with an explicit-θ member
        (HEA_Rung2(depth=2, rotations=("Ry", "Rx")), None, "a.phi"),  # no Rz
        (
            HEA_Rung2(depth=2, rotations=("Ry", "Rz"), n_qubits=1),
            None,
            "a.phi",
        ),  # Rz not first, n=1
    ],
)
def test_phi_writes_without_a_theta_slot_are_refused(
    encoding: HEA_Rung2, theta_on: str | None, path: str
) -> None:
    theta = {theta_on: np.zeros(encoding.theta_shape)} if theta_on else {}
    d = hea(encoding, **theta)
    with pytest.raises(KnobError, match=r"cannot change the state.*theta\[r,d,q\]"):
        d.with_knob(path, 0.5)
    with pytest.raises(KnobError, match="cannot change the state"):
        Experiment("E", d, ("a", "x"), {"a.phi": [0.0, 1.0]})
    # constructing such features stays allowed
    assert d.gram().shape == (len(d), len(d))


def test_refused_cluster_write_names_the_path_written() -> None:
    d = hea(HEA_Rung2(depth=2), a=np.zeros((2, 2, 3)))
    with pytest.raises(KnobError, match=r"^knob 'c\.phi' \(cluster 'c'\): knob 'a\.phi' cannot"):
        d.with_knob("c.phi", 0.5)


def test_integer_theta_is_read_as_float() -> None:
    d = hea(HEA_Rung2(depth=2), a=np.ones((2, 2, 3), dtype=np.int64))
    assert d.feature("a").theta is not None and d.feature("a").theta.dtype == np.float64


@pytest.mark.parametrize(
    ("encoding", "slot"),
    [
        (HEA_Rung2(depth=2), (1, 0, 1)),  # Rz second: θ[r_Rz, 0, 1]
        (HEA_Rung2(depth=1, rotations=("Rx", "Ry", "Rz")), (2, 0, 1)),
        (HEA_Rung2(depth=2, rotations=("Rz", "Ry"), n_qubits=2), (0, 0, 1)),  # overwrites β
        (HEA_Rung2(depth=1, rotations=("Rz",), n_qubits=1), (0, 0, 0)),  # overwrites α
    ],
)
def test_phi_writes_land_in_their_slot(encoding: HEA_Rung2, slot: tuple[int, int, int]) -> None:
    d = hea(encoding)
    w = d.with_knob("a.phi", 1.25)
    assert w.feature("a").phi == 1.25 and w.feature("a").theta is None
    assert encoding.theta_of(w.feature("a"))[slot] == 1.25
    assert encoding.phi_slot(d.feature("a")) == slot
    # sweep and with_knob agree (same cell of the knob table)
    assert d.knob_slots("a.phi") == [encoding.flat(*slot)]
    r = Experiment("E", d, ("a", "x"), {"a.phi": [1.25]}).run()
    np.testing.assert_array_equal(r.gram_matrices[0], w.gram())


def test_theta_then_phi_in_one_write_matches_a_sweep() -> None:
    """A θ write materialises θ; a later φ write in the same call goes into its slot."""
    d = hea(HEA_Rung2(depth=2))
    knobs = {"a.theta[0,1,2]": 0.7, "a.phi": 1.3}
    w = d.with_knobs(knobs)
    theta = w.feature("a").theta
    assert theta is not None and theta[1, 0, 1] == 1.3 and theta[0, 1, 2] == 0.7
    r = Experiment("E", d, ("a", "x"), {k: [v] for k, v in knobs.items()}).run()
    np.testing.assert_allclose(r.gram_matrices[0, 0], w.gram(), atol=1e-15, rtol=0)
    # the reverse order agrees as well
    w2 = d.with_knobs({"a.phi": 1.3, "a.theta[0,1,2]": 0.7})
    np.testing.assert_array_equal(w2.gram(), w.gram())


def test_rz_first_phi_zero_edge() -> None:
    """Documented edge (docs/encodings.md): with Rz first the φ slot is a global
    phase.  ``with_knob(φ = 0.0)`` keeps the pinned synthesis (β stays in the
    slot) while a sweep writes the angle 0.0 — complex Gram entries differ by
    a per-feature phase at that one value; every overlap agrees."""
    enc = HEA_Rung2(depth=2, rotations=("Rz", "Ry"), entangler="chain", n_qubits=2)
    d = hea(enc)
    values = [0.0, 1e-300, 0.5]
    r = Experiment("E", d, ("a", "x"), {"a.phi": values}).run()
    for i, v in enumerate(values):
        w = d.with_knob("a.phi", v)
        np.testing.assert_allclose(r.overlaps[i], abs(w.gram()[0, 2]) ** 2, atol=1e-15, rtol=0)
        np.testing.assert_allclose(r.gram_matrices[i], w.gram() if v else r.gram_matrices[i])
    w0 = d.with_knob("a.phi", 0.0)
    assert enc.theta_of(w0.feature("a"))[0, 0, 1] == 0.3  # β, the pinned synthesis
    # the sweep's state at φ = 0.0 is ψ(slot = 0) = e^{+iβ/2}·ψ(slot = β)
    phase = complex(math.cos(0.15), math.sin(0.15))
    np.testing.assert_allclose(
        r.gram_matrices[0][0, 2], phase.conjugate() * w0.gram()[0, 2], atol=1e-15
    )
    # a φ write on Rz-first never changes an overlap (global phase)
    np.testing.assert_allclose(r.overlaps, r.overlaps[0], atol=1e-15)


def test_amp_knobs_only_on_rung3() -> None:
    mps = Dictionary(
        "M", [Feature("a", "c", beta=0.1), Feature("x", "k", beta=0.2)], {"c": ["a"], "k": ["x"]}
    )
    for d, enc_name in ((mps, "MPSRung1"), (animals_hea(), "HEA_Rung2")):
        name = d.feature_names[0]
        cluster = next(iter(d.hierarchy))
        for path in (f"{name}.theta_amp", f"{name}.psi_aux", f"{cluster}.theta_amp"):
            with pytest.raises(KnobError, match=f"no effect on {enc_name}"):
                d.with_knob(path, 0.3)
            with pytest.raises(KnobError, match="no effect"):
                Experiment("E", d, (d.feature_names[0], d.feature_names[-1]), {path: [0.1]})
    # and on Rung3 they write, per feature or per cluster
    r3 = quickstart_rung3()
    w = r3.with_knobs({"bird_hawk.theta_amp": 0.3, "dogs.psi_aux": 2.0})
    assert w.feature("bird_hawk").theta_amp == 0.3
    assert [w.feature(n).psi_aux for n in ("dog_poodle", "dog_beagle", "bird_hawk")] == [
        2.0,
        2.0,
        0.0,
    ]
    with pytest.raises(KnobError, match="needs an HEA_Rung2"):
        r3.with_knob("bird_hawk.theta[0,0,0]", 0.1)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "x", None, True])
def test_non_finite_or_non_numeric_writes(value: object) -> None:
    for d, path in (
        (quickstart_rung3(), "bird_hawk.theta_amp"),
        (animals_hea(), "dogs.theta[0,0,0]"),
    ):
        with pytest.raises(DictionaryError):
            d.with_knob(path, value)  # type: ignore[arg-type]


def test_errors_are_polygram_value_errors() -> None:
    with pytest.raises(PolygramError):
        HEA_Rung2(depth=0)
    with pytest.raises(ValueError):
        quickstart_rung3().with_knob("dog_poodle.theta[0,0,0]", 0.0)
    assert isinstance(MPSRung1(), MPSRung1)
