//! Pure-Rust kernels of Polygram.
//!
//! Every feature of a dictionary is a small quantum state built from a row of
//! real parameters (its *knob row*).  The crate turns knob tables into states,
//! states into Gram matrices, and grids of knob writes into overlap landscapes.
//! It has no Python in it: the `polygram-py` crate only converts arrays,
//! releases the GIL and maps [`Error`] to Python exceptions.

pub mod encoding;
pub mod error;
pub mod gates;
pub mod gram;
pub mod panels;
pub mod scan;
pub mod tiers;
pub mod union_find;

pub use encoding::{Encoding, Entangler, Hea, Rotation};
pub use error::{Error, Result};
pub use num_complex::Complex64 as C64;
