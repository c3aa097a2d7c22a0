"""Builders shared by the encoding tests (reference dictionaries, closed forms)."""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from conftest import REFERENCE, dictionary_from_spec
from polygram import Dictionary, Feature, HEA_Rung2, Rung3

QUICKSTART_HIERARCHY = {
    "dogs": ["dog_poodle", "dog_beagle"],
    "birds": ["bird_hawk", "bird_sparrow"],
}


def complex_matrix(rows: list[Any]) -> np.ndarray:
    """A reference matrix stored as ``[re, im]`` pairs."""
    return np.array([[complex(*x) for x in row] for row in rows])


def hea_from_repr(text: str) -> HEA_Rung2:
    """``HEA_Rung2(depth=…, …)`` as written in reference_values.json, without eval."""
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == "HEA_Rung2"
    return HEA_Rung2(**{k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg})


def animals_hea(encoding: HEA_Rung2 | None = None) -> Dictionary:
    spec = REFERENCE["hea_rung2"]["dictionary"]
    return dictionary_from_spec(spec, encoding or hea_from_repr(spec["encoding"]))


def variant_dictionary(case: dict[str, Any]) -> Dictionary:
    """One ``hea_rung2_variants`` case (the explicit-θ case builds p and q)."""
    enc = hea_from_repr(case["encoding"])
    if "explicit_theta_p" in case:
        feats = [
            Feature("p", "k1", beta=0.0, theta=np.array(case["explicit_theta_p"])),
            Feature("q", "k1", beta=0.0),
        ]
        return Dictionary("Explicit", feats, {"k1": ["p", "q"]}, enc)
    return dictionary_from_spec({"name": "Variant", "features": case["features"]}, enc)


def quickstart_rung3(**amps: tuple[float, float]) -> Dictionary:
    """The README quickstart on Rung3; ``amps[name] = (theta_amp, psi_aux)``."""
    feats = []
    for cluster, members in QUICKSTART_HIERARCHY.items():
        for m in members:
            th, ps = amps.get(m, (math.pi / 4, 0.0))
            beta = -0.5 if cluster == "dogs" else 0.5
            feats.append(Feature(m, cluster, beta=beta, theta_amp=th, psi_aux=ps))
    return Dictionary("AnimalsRung3", feats, QUICKSTART_HIERARCHY, Rung3())


def mps_closed_form(alpha: float, beta: float, gamma: float, phi: float) -> np.ndarray:
    """Spec 01 §1.2.2 amplitude table, written out (not simulated)."""
    a0, a1 = math.cos(alpha / 2), math.sin(alpha / 2)
    c1, s1 = math.cos((alpha + beta) / 2), math.sin((alpha + beta) / 2)
    c2, s2 = math.cos((beta + gamma) / 2), math.sin((beta + gamma) / 2)
    p, pb = (
        complex(math.cos(phi / 2), -math.sin(phi / 2)),
        complex(math.cos(phi / 2), math.sin(phi / 2)),
    )
    return np.array(
        [
            a0 * c1 * c2 * p,
            a0 * c1 * s2 * p,
            -a0 * s1 * s2 * pb,
            a0 * s1 * c2 * pb,
            -a1 * s1 * c2 * p,
            -a1 * s1 * s2 * p,
            -a1 * c1 * s2 * pb,
            a1 * c1 * c2 * pb,
        ]
    )


def amp_vector(theta: float, psi: float) -> np.ndarray:
    """``cos θ|00⟩ + e^{iψ} sin θ|11⟩`` in the basis (|00⟩, |11⟩)."""
    return np.array([math.cos(theta), complex(math.cos(psi), math.sin(psi)) * math.sin(theta)])


def amp_overlap(ta: float, pa: float, tb: float, pb: float) -> complex:
    """``a = cos θ_a cos θ_b + e^{i(ψ_b − ψ_a)} sin θ_a sin θ_b`` (spec 01 §1.7)."""
    return math.cos(ta) * math.cos(tb) + complex(math.cos(pb - pa), math.sin(pb - pa)) * (
        math.sin(ta) * math.sin(tb)
    )


def schmidt_rank_oracle(state: np.ndarray, tol: float = 1e-9) -> int:
    """Singular values of the (2, dim/2) C-order reshape above ``tol``."""
    sv = np.linalg.svd(state.reshape(2, -1), compute_uv=False)
    return int(np.sum(sv > tol))
