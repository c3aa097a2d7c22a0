//! Rung-2 hardware-efficient ansatz (spec 01 §1.6), run on the simulator.
//!
//! For each layer: every declared rotation in order on every qubit, then the
//! entangler's CNOTs (chain `(0,1)…(n−2,n−1)`, ring adds `(n−1,0)`).

use crate::ctx::Ctx;
use crate::gates::StateVector;
use crate::{Error, Result, C64};

/// Largest register the HEA path accepts (2^20 amplitudes per feature).
pub const MAX_QUBITS: usize = 20;
/// Deepest circuit accepted: beyond it a single 20-qubit state takes minutes
/// and the knob row alone megabytes; no encoding study needs more.
pub const MAX_DEPTH: usize = 1024;
/// Most rotation gates per layer and qubit (repeats allowed, e.g. Rz·Ry·Rz).
pub const MAX_ROTATIONS: usize = 16;

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
        if !(1..=MAX_DEPTH).contains(&depth) {
            return Err(Error::invalid(
                "depth",
                format!("got {depth}; allowed 1..={MAX_DEPTH}"),
            ));
        }
        if !(1..=MAX_ROTATIONS).contains(&rotations.len()) {
            return Err(Error::invalid(
                "rotations",
                format!(
                    "got {} rotations; allowed 1..={MAX_ROTATIONS}",
                    rotations.len()
                ),
            ));
        }
        Ok(Hea {
            n_qubits,
            depth,
            rotations,
            entangler,
        })
    }

    /// Knobs per feature; the caps above keep it below 2^19.
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

    /// The state of one θ row, polling `ctx` once per layer.
    pub fn state(&self, theta: &[f64], ctx: &Ctx) -> Result<StateVector> {
        let (n, d) = (self.n_qubits, self.depth);
        let cnots = self.cnots();
        let mut s = StateVector::zero(n);
        for layer in 0..d {
            ctx.check()?;
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
        Ok(s)
    }

    pub fn state_into(&self, theta: &[f64], out: &mut [C64], ctx: &Ctx) -> Result<()> {
        out.copy_from_slice(self.state(theta, ctx)?.amplitudes());
        Ok(())
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
    fn caps_depth_qubits_and_rotations() {
        let ry = || vec![Rotation::Ry];
        // 2^60 layers used to wrap the width to 0 (issue 15)
        let deep = Hea::new(16, 1 << 60, ry(), Entangler::Ring).unwrap_err();
        assert!(deep.to_string().contains("depth"), "{deep}");
        assert!(Hea::new(16, MAX_DEPTH, ry(), Entangler::Ring).is_ok());
        assert!(Hea::new(16, MAX_DEPTH + 1, ry(), Entangler::Ring).is_err());
        assert!(Hea::new(MAX_QUBITS + 1, 1, ry(), Entangler::Ring).is_err());
        assert!(Hea::new(3, 1, vec![Rotation::Rz; MAX_ROTATIONS + 1], Entangler::Ring).is_err());
        let widest = Hea::new(
            MAX_QUBITS,
            MAX_DEPTH,
            vec![Rotation::Rz; MAX_ROTATIONS],
            Entangler::Ring,
        )
        .unwrap();
        assert_eq!(widest.width(), MAX_QUBITS * MAX_DEPTH * MAX_ROTATIONS);
    }

    #[test]
    fn a_cancelled_state_stops_at_the_next_layer() {
        let h = Hea::new(3, 4, vec![Rotation::Ry], Entangler::Ring).unwrap();
        let stop = Ctx::serial();
        stop.cancel();
        assert_eq!(h.state(&[0.1; 12], &stop), Err(Error::Interrupted));
    }

    #[test]
    fn one_ry_layer_without_entanglers_is_a_product_state() {
        let h = Hea::new(1, 1, vec![Rotation::Ry], Entangler::Chain).unwrap();
        let s = h.state(&[0.6], &Ctx::serial()).unwrap();
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
        assert!((h.state(&theta, &Ctx::serial()).unwrap().norm_sqr() - 1.0).abs() < 1e-13);
        // not the MPS staircase, but the same simulator conventions
        assert_eq!(mps::amplitudes(0.0, 0.0, 0.0, 0.0)[0].re, 1.0);
    }
}
