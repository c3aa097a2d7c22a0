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

use crate::ctx::Ctx;
use crate::gram::inner;
use crate::{size, Error, Result, C64};

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

    /// Rough elementary steps to build one state (gates × amplitudes for
    /// HEA): what a caller weighs to decide whether a call is worth a pool.
    pub fn state_work(&self) -> u64 {
        match self {
            Encoding::Mps => 32,
            Encoding::Rung3 => 64,
            Encoding::Hea(h) => (h.width() as u64).saturating_mul(self.dim() as u64),
        }
    }

    /// Write the state of one knob row into `out` (`out.len() == dim()`);
    /// only HEA circuits are long enough to poll `ctx` (per layer).
    pub fn state_into(&self, row: &[f64], out: &mut [C64], ctx: &Ctx) -> Result<()> {
        match self {
            Encoding::Mps => out.copy_from_slice(&mps::amplitudes(row[0], row[1], row[2], row[3])),
            Encoding::Rung3 => rung3::state_into(row, out),
            Encoding::Hea(h) => return h.state_into(row, out, ctx),
        }
        Ok(())
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
    pub fn repr_into(&self, row: &[f64], out: &mut [C64], ctx: &Ctx) -> Result<()> {
        match self {
            Encoding::Rung3 => {
                out[..8].copy_from_slice(&mps::amplitudes(row[0], row[1], row[2], row[3]));
                out[8..].copy_from_slice(&rung3::amp_branch(row[4], row[5]));
                Ok(())
            }
            _ => self.state_into(row, out, ctx),
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
        if size::count(&[n_features, w]) != Some(table.len()) {
            return Err(Error::invalid(
                "params",
                format!(
                    "expected {n_features} rows of {w} knobs, got {} values",
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
