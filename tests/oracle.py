"""An independent numpy oracle: dense gate matrices and Kronecker products,
sharing no code with the Rust core (spec 01 §1.1 conventions)."""

from __future__ import annotations

import numpy as np


def ry(t: float) -> np.ndarray:
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def rz(t: float) -> np.ndarray:
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])


def rx(t: float) -> np.ndarray:
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def on(n: int, q: int, g: np.ndarray) -> np.ndarray:
    """``g`` on qubit ``q`` of ``n`` (qubit 0 = most significant)."""
    out = np.array([[1.0 + 0j]])
    for k in range(n):
        out = np.kron(out, g if k == q else np.eye(2))
    return out


def cnot(n: int, c: int, t: int) -> np.ndarray:
    dim = 2**n
    m = np.zeros((dim, dim))
    for k in range(dim):
        bit_c = (k >> (n - 1 - c)) & 1
        m[k ^ (bit_c << (n - 1 - t)), k] = 1
    return m


def mps_state(alpha: float, beta: float, gamma: float, phi: float) -> np.ndarray:
    s = np.zeros(8, dtype=complex)
    s[0] = 1
    for g in (
        on(3, 0, ry(alpha)),
        cnot(3, 0, 1),
        on(3, 1, ry(alpha + beta)),
        on(3, 1, rz(phi)),
        cnot(3, 1, 2),
        on(3, 2, ry(beta + gamma)),
    ):
        s = g @ s
    return s


def hea_state(theta: np.ndarray, rotations: tuple[str, ...], entangler: str) -> np.ndarray:
    r_count, depth, n = theta.shape
    gates = {"Rx": rx, "Ry": ry, "Rz": rz}
    s = np.zeros(2**n, dtype=complex)
    s[0] = 1
    pairs = [(q, q + 1) for q in range(n - 1)]
    if entangler == "ring" and n >= 2:
        pairs.append((n - 1, 0))
    for layer in range(depth):
        for r in range(r_count):
            for q in range(n):
                s = on(n, q, gates[rotations[r]](theta[r, layer, q])) @ s
        for c, t in pairs:
            s = cnot(n, c, t) @ s
    return s


def gram(states: np.ndarray) -> np.ndarray:
    return states.conj() @ states.T
