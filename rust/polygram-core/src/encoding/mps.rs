//! Rung-1 MPS in closed form (spec 01 §1.2.2) and its X/Y branch law (§1.3.1).
//!
//! Circuit: `Ry(q0,α) · CNOT(0→1) · Ry(q1,α+β) · Rz(q1,φ) · CNOT(1→2) · Ry(q2,β+γ) |000⟩`.

use crate::C64;

/// The 8 amplitudes of the rung-1 MPS state.
pub fn amplitudes(alpha: f64, beta: f64, gamma: f64, phi: f64) -> [C64; 8] {
    let (a1, a0) = (alpha / 2.0).sin_cos();
    let (s1, c1) = ((alpha + beta) / 2.0).sin_cos();
    let (s2, c2) = ((beta + gamma) / 2.0).sin_cos();
    let p = C64::from_polar(1.0, -phi / 2.0);
    let pb = p.conj();
    [
        p * (a0 * c1 * c2),
        p * (a0 * c1 * s2),
        pb * (-a0 * s1 * s2),
        pb * (a0 * s1 * c2),
        p * (-a1 * s1 * c2),
        p * (-a1 * s1 * s2),
        pb * (-a1 * c1 * s2),
        pb * (a1 * c1 * c2),
    ]
}

/// Branch overlaps `(X, Y)` of two knob rows `[α, β, γ, …]`: the q1 = 0 and
/// q1 = 1 parts of ⟨ψ_i|ψ_j⟩ with the φ phases stripped.  Then
/// `G_ij = X·e^{iδ/2} + Y·e^{−iδ/2}` with `δ = φ_i − φ_j`.
pub fn branch_xy(i: &[f64], j: &[f64]) -> (f64, f64) {
    let (sai, cai) = (i[0] / 2.0).sin_cos();
    let (saj, caj) = (j[0] / 2.0).sin_cos();
    let (sti, cti) = ((i[0] + i[1]) / 2.0).sin_cos();
    let (stj, ctj) = ((j[0] + j[1]) / 2.0).sin_cos();
    let d = (((i[1] + i[2]) - (j[1] + j[2])) / 2.0).cos();
    let x = d * (cai * caj * cti * ctj + sai * saj * sti * stj);
    let y = d * (cai * caj * sti * stj + sai * saj * cti * ctj);
    (x, y)
}

/// `(M, V)` of the law `|G|² = M + V·cos δ`: `M = X² + Y²`, `V = 2XY` (signed).
pub fn branch_law(i: &[f64], j: &[f64]) -> (f64, f64) {
    let (x, y) = branch_xy(i, j);
    (x * x + y * y, 2.0 * x * y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::StateVector;

    fn simulate(alpha: f64, beta: f64, gamma: f64, phi: f64) -> Vec<C64> {
        let mut s = StateVector::zero(3);
        s.ry(0, alpha);
        s.cnot(0, 1);
        s.ry(1, alpha + beta);
        s.rz(1, phi);
        s.cnot(1, 2);
        s.ry(2, beta + gamma);
        s.into_amplitudes()
    }

    #[test]
    fn closed_form_equals_the_simulated_circuit() {
        for &(a, b, g, p) in &[
            (0.0, -0.5, 0.0, 0.0),
            (0.9, 0.2, 0.1, 1.3),
            (-2.1, 3.0, -0.7, 5.9),
            (std::f64::consts::PI, 0.2, 0.0, -4.0),
        ] {
            let closed = amplitudes(a, b, g, p);
            for (x, y) in closed.iter().zip(simulate(a, b, g, p)) {
                assert!((x - y).norm() < 1e-14, "{a} {b} {g} {p}");
            }
        }
    }

    #[test]
    fn seed_figure_is_cos_half_to_the_fourth() {
        let a = amplitudes(0.0, -0.5, 0.0, 0.0);
        let b = amplitudes(0.0, 0.5, 0.0, 0.0);
        let g: C64 = a.iter().zip(b.iter()).map(|(x, y)| x.conj() * y).sum();
        assert!((g.norm_sqr() - 0.5f64.cos().powi(4)).abs() < 1e-15);
    }

    #[test]
    fn branch_law_reproduces_the_overlap_for_any_delta() {
        let i = [0.9, 0.2, 0.1, 0.0];
        let j = [0.9, -0.4, 0.3, 0.0];
        let (m, v) = branch_law(&i, &j);
        for k in 0..17 {
            let delta = -7.0 + 0.9 * k as f64;
            let a = amplitudes(i[0], i[1], i[2], delta);
            let b = amplitudes(j[0], j[1], j[2], 0.0);
            let g: C64 = a.iter().zip(b.iter()).map(|(x, y)| x.conj() * y).sum();
            assert!((g.norm_sqr() - (m + v * delta.cos())).abs() < 1e-14);
        }
    }
}
