//! A tiny n-qubit statevector simulator.
//!
//! Conventions (spec 01 §1.1): basis index `k = Σ q_m · 2^(n−1−m)` (qubit 0 is
//! the most significant bit), `Ry(t) = exp(−i t Y/2)`, `Rz(t) =
//! diag(e^{−it/2}, e^{it/2})`, `Rx(t) = exp(−i t X/2)`.  It is the independent
//! oracle for the closed-form MPS amplitudes and the engine of the HEA
//! encoding.

use crate::C64;

#[derive(Clone, Debug, PartialEq)]
pub struct StateVector {
    n_qubits: usize,
    amps: Vec<C64>,
}

impl StateVector {
    /// `|0…0⟩` on `n_qubits` qubits.
    pub fn zero(n_qubits: usize) -> Self {
        let mut amps = vec![C64::new(0.0, 0.0); 1usize << n_qubits];
        amps[0] = C64::new(1.0, 0.0);
        StateVector { n_qubits, amps }
    }

    pub fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    pub fn amplitudes(&self) -> &[C64] {
        &self.amps
    }

    pub fn into_amplitudes(self) -> Vec<C64> {
        self.amps
    }

    fn mask(&self, q: usize) -> usize {
        1usize << (self.n_qubits - 1 - q)
    }

    /// Apply the 2×2 matrix `[[m00, m01], [m10, m11]]` to qubit `q`.
    pub fn apply_1q(&mut self, q: usize, m: [[C64; 2]; 2]) {
        let mask = self.mask(q);
        for k in 0..self.amps.len() {
            if k & mask == 0 {
                let (a0, a1) = (self.amps[k], self.amps[k | mask]);
                self.amps[k] = m[0][0] * a0 + m[0][1] * a1;
                self.amps[k | mask] = m[1][0] * a0 + m[1][1] * a1;
            }
        }
    }

    pub fn ry(&mut self, q: usize, t: f64) {
        let (s, c) = (t / 2.0).sin_cos();
        let (c, s) = (C64::new(c, 0.0), C64::new(s, 0.0));
        self.apply_1q(q, [[c, -s], [s, c]]);
    }

    pub fn rz(&mut self, q: usize, t: f64) {
        let z = C64::new(0.0, 0.0);
        let half = C64::new(0.0, t / 2.0);
        self.apply_1q(q, [[(-half).exp(), z], [z, half.exp()]]);
    }

    pub fn rx(&mut self, q: usize, t: f64) {
        let (s, c) = (t / 2.0).sin_cos();
        let (c, ms) = (C64::new(c, 0.0), C64::new(0.0, -s));
        self.apply_1q(q, [[c, ms], [ms, c]]);
    }

    /// Flip qubit `target` on the subspace where `control` is 1.
    pub fn cnot(&mut self, control: usize, target: usize) {
        let (cm, tm) = (self.mask(control), self.mask(target));
        for k in 0..self.amps.len() {
            if k & cm != 0 && k & tm == 0 {
                self.amps.swap(k, k | tm);
            }
        }
    }

    /// Phase −1 on the subspace where both qubits are 1.
    pub fn cz(&mut self, a: usize, b: usize) {
        let (am, bm) = (self.mask(a), self.mask(b));
        for (k, amp) in self.amps.iter_mut().enumerate() {
            if k & am != 0 && k & bm != 0 {
                *amp = -*amp;
            }
        }
    }

    pub fn norm_sqr(&self) -> f64 {
        self.amps.iter().map(|a| a.norm_sqr()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: C64, b: C64) -> bool {
        (a - b).norm() < 1e-14
    }

    #[test]
    fn ry_pi_flips_zero_to_one() {
        let mut s = StateVector::zero(1);
        s.ry(0, std::f64::consts::PI);
        assert!(close(s.amplitudes()[1], C64::new(1.0, 0.0)));
    }

    #[test]
    fn qubit_zero_is_most_significant() {
        let mut s = StateVector::zero(3);
        s.ry(0, std::f64::consts::PI);
        assert!(close(s.amplitudes()[4], C64::new(1.0, 0.0)));
    }

    #[test]
    fn cnot_and_cz_act_on_the_control_subspace() {
        let mut s = StateVector::zero(2);
        s.ry(0, std::f64::consts::FRAC_PI_2);
        s.cnot(0, 1);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!(close(s.amplitudes()[0], C64::new(h, 0.0)));
        assert!(close(s.amplitudes()[3], C64::new(h, 0.0)));
        s.cz(0, 1);
        assert!(close(s.amplitudes()[3], C64::new(-h, 0.0)));
    }

    #[test]
    fn rotations_preserve_the_norm() {
        let mut s = StateVector::zero(3);
        for (q, t) in [(0, 0.3), (1, -1.7), (2, 2.9)] {
            s.ry(q, t);
            s.rz(q, t * 0.5);
            s.rx(q, t * 1.3);
        }
        s.cnot(0, 2);
        s.cz(1, 2);
        assert!((s.norm_sqr() - 1.0).abs() < 1e-14);
    }

    #[test]
    fn rz_phases_match_the_convention() {
        let mut s = StateVector::zero(1);
        s.rx(0, std::f64::consts::FRAC_PI_2);
        let before = s.clone();
        s.rz(0, 0.8);
        assert!(close(
            s.amplitudes()[0],
            before.amplitudes()[0] * C64::from_polar(1.0, -0.4)
        ));
        assert!(close(
            s.amplitudes()[1],
            before.amplitudes()[1] * C64::from_polar(1.0, 0.4)
        ));
    }
}
