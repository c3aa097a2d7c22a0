//! Encodings: how a knob row becomes a state vector.
//!
//! | encoding | knob row | state dimension |
//! |---|---|---|
//! | [`Encoding::Mps`] (rung-1 MPS) | `[α, β, γ, φ]` | 8 |
//! | [`Encoding::Rung3`] | `[α, β, γ, φ, θ_amp, ψ_aux]` | 16 (MPS ⊗ amp branch in span{|00⟩,|11⟩}) |
//! | [`Encoding::Hea`] | θ flattened C-order `(rotation, layer, qubit)` | 2^n |

pub mod hea;
pub mod mps;
pub mod rung3;

pub use hea::{Entangler, Hea, Rotation};

use crate::gram::inner;
use crate::{Error, Result, C64};

#[derive(Clone, Debug, PartialEq)]
pub enum Encoding {
    Mps,
    Rung3,
    Hea(Hea),
}

impl Encoding {
    /// Number of real parameters per feature.
    pub fn width(&self) -> usize {
        match self {
            Encoding::Mps => 4,
            Encoding::Rung3 => 6,
            Encoding::Hea(h) => h.width(),
        }
    }

    /// Length of a feature's state vector.
    pub fn dim(&self) -> usize {
        match self {
            Encoding::Mps => 8,
            Encoding::Rung3 => 16,
            Encoding::Hea(h) => 1usize << h.n_qubits,
        }
    }

    /// Write the state of one knob row into `out` (`out.len() == dim()`).
    pub fn state_into(&self, row: &[f64], out: &mut [C64]) {
        match self {
            Encoding::Mps => out.copy_from_slice(&mps::amplitudes(row[0], row[1], row[2], row[3])),
            Encoding::Rung3 => rung3::state_into(row, out),
            Encoding::Hea(h) => h.state_into(row, out),
        }
    }

    /// Length of the representation the Gram and scan kernels work on.
    pub fn repr_dim(&self) -> usize {
        match self {
            Encoding::Rung3 => 8 + 2,
            _ => self.dim(),
        }
    }

    /// The kernels' representation of one knob row (`out.len() == repr_dim()`):
    /// the state itself, except that Rung-3 keeps its two factors apart
    /// (`[MPS 8-vector, amp 2-vector]`) so [`Encoding::inner`] is exactly
    /// `G_MPS · a` — bit for bit the MPS Gram at the default amp knobs.
    pub fn repr_into(&self, row: &[f64], out: &mut [C64]) {
        match self {
            Encoding::Rung3 => {
                out[..8].copy_from_slice(&mps::amplitudes(row[0], row[1], row[2], row[3]));
                out[8..].copy_from_slice(&rung3::amp_branch(row[4], row[5]));
            }
            _ => self.state_into(row, out),
        }
    }

    /// `⟨a|b⟩` of two representations made by [`Encoding::repr_into`].
    #[inline]
    pub fn inner(&self, a: &[C64], b: &[C64]) -> C64 {
        match self {
            Encoding::Rung3 => inner(&a[..8], &b[..8]) * inner(&a[8..], &b[8..]),
            _ => inner(a, b),
        }
    }

    /// Check a knob table of `n_features × width` values (row-major).
    pub fn check_table(&self, table: &[f64], n_features: usize) -> Result<()> {
        let w = self.width();
        if table.len() != n_features * w {
            return Err(Error::invalid(
                "params",
                format!(
                    "expected {n_features} rows of {w} knobs ({} values), got {}",
                    n_features * w,
                    table.len()
                ),
            ));
        }
        if let Some(pos) = table.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "params",
                format!(
                    "knob {} of feature {} is {}; knob values must be finite",
                    pos % w,
                    pos / w,
                    table[pos]
                ),
            ));
        }
        Ok(())
    }
}
