//! Rung-2 hardware-efficient ansatz (spec 01 §1.6), run on the simulator.
//!
//! For each layer: every declared rotation in order on every qubit, then the
//! entangler's CNOTs (chain `(0,1)…(n−2,n−1)`, ring adds `(n−1,0)`).

use crate::gates::StateVector;
use crate::{Error, Result, C64};

/// Largest register the HEA path accepts (2^20 amplitudes per feature).
pub const MAX_QUBITS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    Rx,
    Ry,
    Rz,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entangler {
    Chain,
    Ring,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hea {
    pub n_qubits: usize,
    pub depth: usize,
    pub rotations: Vec<Rotation>,
    pub entangler: Entangler,
}

impl Hea {
    pub fn new(
        n_qubits: usize,
        depth: usize,
        rotations: Vec<Rotation>,
        entangler: Entangler,
    ) -> Result<Self> {
        if !(1..=MAX_QUBITS).contains(&n_qubits) {
            return Err(Error::invalid(
                "n_qubits",
                format!("got {n_qubits}; allowed 1..={MAX_QUBITS}"),
            ));
        }
        if depth < 1 {
            return Err(Error::invalid("depth", "got 0; depth must be >= 1"));
        }
        if rotations.is_empty() {
            return Err(Error::invalid(
                "rotations",
                "must name at least one rotation",
            ));
        }
        Ok(Hea {
            n_qubits,
            depth,
            rotations,
            entangler,
        })
    }

    pub fn width(&self) -> usize {
        self.rotations.len() * self.depth * self.n_qubits
    }

    /// The CNOT pairs applied after every layer.
    pub fn cnots(&self) -> Vec<(usize, usize)> {
        let n = self.n_qubits;
        if n < 2 {
            return Vec::new();
        }
        let mut pairs: Vec<(usize, usize)> = (0..n - 1).map(|q| (q, q + 1)).collect();
        if self.entangler == Entangler::Ring {
            pairs.push((n - 1, 0));
        }
        pairs
    }

    pub fn state(&self, theta: &[f64]) -> StateVector {
        let (n, d) = (self.n_qubits, self.depth);
        let cnots = self.cnots();
        let mut s = StateVector::zero(n);
        for layer in 0..d {
            for (r, rot) in self.rotations.iter().enumerate() {
                for q in 0..n {
                    let t = theta[(r * d + layer) * n + q];
                    match rot {
                        Rotation::Rx => s.rx(q, t),
                        Rotation::Ry => s.ry(q, t),
                        Rotation::Rz => s.rz(q, t),
                    }
                }
            }
            for &(c, t) in &cnots {
                s.cnot(c, t);
            }
        }
        s
    }

    pub fn state_into(&self, theta: &[f64], out: &mut [C64]) {
        out.copy_from_slice(self.state(theta).amplitudes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::mps;

    #[test]
    fn rejects_bad_shapes() {
        assert!(Hea::new(0, 1, vec![Rotation::Ry], Entangler::Ring).is_err());
        assert!(Hea::new(3, 0, vec![Rotation::Ry], Entangler::Ring).is_err());
        assert!(Hea::new(3, 1, vec![], Entangler::Ring).is_err());
    }

    #[test]
    fn one_ry_layer_without_entanglers_is_a_product_state() {
        let h = Hea::new(1, 1, vec![Rotation::Ry], Entangler::Chain).unwrap();
        let s = h.state(&[0.6]);
        assert!((s.amplitudes()[0].re - 0.3f64.cos()).abs() < 1e-15);
        assert!((s.amplitudes()[1].re - 0.3f64.sin()).abs() < 1e-15);
    }

    #[test]
    fn states_are_normalised() {
        let h = Hea::new(
            4,
            3,
            vec![Rotation::Rx, Rotation::Ry, Rotation::Rz],
            Entangler::Ring,
        )
        .unwrap();
        let theta: Vec<f64> = (0..h.width())
            .map(|k| (k as f64 * 0.37).sin() * 3.0)
            .collect();
        assert!((h.state(&theta).norm_sqr() - 1.0).abs() < 1e-13);
        // not the MPS staircase, but the same simulator conventions
        assert_eq!(mps::amplitudes(0.0, 0.0, 0.0, 0.0)[0].re, 1.0);
    }
}
