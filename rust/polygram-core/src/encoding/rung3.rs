//! Rung-3: the MPS state on qubits 0–2 times an amplitude branch
//! `cos θ|00⟩ + e^{iψ} sin θ|11⟩` on qubits 3–4 (full angles, spec 01 §1.7).
//!
//! The branch only ever lives in span{|00⟩, |11⟩}, so the state is stored as
//! the 16-vector `mps ⊗ (cos θ, e^{iψ} sin θ)`; inner products of such vectors
//! are exactly the products `G_MPS · a` of the spec.

use super::mps;
use crate::C64;

/// The 2-vector of the amplitude branch in the basis (|00⟩, |11⟩).
pub fn amp_branch(theta: f64, psi: f64) -> [C64; 2] {
    let (s, c) = theta.sin_cos();
    [C64::new(c, 0.0), C64::from_polar(s, psi)]
}

pub fn state_into(row: &[f64], out: &mut [C64]) {
    let m = mps::amplitudes(row[0], row[1], row[2], row[3]);
    let a = amp_branch(row[4], row[5]);
    for (k, mk) in m.iter().enumerate() {
        out[2 * k] = mk * a[0];
        out[2 * k + 1] = mk * a[1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::StateVector;

    /// Expand the compact 16-vector onto the real 5-qubit register.
    fn full(row: &[f64]) -> Vec<C64> {
        let mut s = vec![C64::new(0.0, 0.0); 16];
        state_into(row, &mut s);
        let mut out = vec![C64::new(0.0, 0.0); 32];
        for k in 0..8 {
            out[4 * k] = s[2 * k];
            out[4 * k + 3] = s[2 * k + 1];
        }
        out
    }

    #[test]
    fn default_amp_knobs_give_exactly_the_mps_gram() {
        use crate::ctx::Ctx;
        use crate::encoding::Encoding;
        use crate::gram::gram;
        use ndarray::Array2;
        let rows = [
            [0.3, -0.7, 0.2, 1.1],
            [1.0, 0.5, -0.4, 2.5],
            [-0.8, 2.0, 1.3, -0.6],
        ];
        let mps = Array2::from_shape_fn((3, 4), |(i, j)| rows[i][j]);
        let r3 = Array2::from_shape_fn((3, 6), |(i, j)| match j {
            4 => std::f64::consts::FRAC_PI_4,
            5 => 0.0,
            _ => rows[i][j],
        });
        // Bit for bit: the amp factor is exactly 1 + 0i at the defaults.
        assert_eq!(
            gram(&Encoding::Mps, mps.view(), &Ctx::serial()).unwrap(),
            gram(&Encoding::Rung3, r3.view(), &Ctx::serial()).unwrap()
        );
    }

    #[test]
    fn matches_a_five_qubit_circuit() {
        // cos θ|00⟩ + e^{iψ} sin θ|11⟩ = Rz-corrected Ry(2θ) on q3, CNOT(3→4).
        let row = [0.4, -0.3, 0.2, 1.1, 0.7, 2.3];
        let mut s = StateVector::zero(5);
        s.ry(0, row[0]);
        s.cnot(0, 1);
        s.ry(1, row[0] + row[1]);
        s.rz(1, row[3]);
        s.cnot(1, 2);
        s.ry(2, row[1] + row[2]);
        s.ry(3, 2.0 * row[4]);
        s.rz(3, row[5]);
        s.cnot(3, 4);
        // Rz(ψ) on q3 gives phases e^{∓iψ/2}; remove the global e^{−iψ/2}.
        let global = C64::from_polar(1.0, row[5] / 2.0);
        for (x, y) in full(&row).iter().zip(s.amplitudes()) {
            assert!((x - y * global).norm() < 1e-14);
        }
    }
}
