//! Pure-Rust kernels of Polygram.
//!
//! Every feature of a dictionary is a small quantum state built from a row of
//! real parameters (its *knob row*).  The crate turns knob tables into states,
//! states into Gram matrices, and grids of knob writes into overlap landscapes.
//! It has no Python in it: the `polygram-py` crate only converts arrays,
//! releases the GIL and maps [`Error`] to Python exceptions.
//!
//! Every kernel takes a [`Ctx`] it polls inside its loops, computes sizes
//! from user data with checked arithmetic ([`size`]) and checks what it will
//! allocate against the memory [`budget`] first.

pub mod blocks;
pub mod budget;
pub mod cofiring;
pub mod cosine;
pub mod ctx;
pub mod encoding;
pub mod error;
pub mod gates;
pub mod gram;
pub mod kmeans;
pub mod output;
pub mod panels;
pub mod route;
pub mod scan;
pub mod size;
pub mod tiers;
pub mod union_find;

pub use ctx::Ctx;
pub use encoding::{Encoding, Entangler, Hea, Rotation};
pub use error::{Error, Result};
pub use num_complex::Complex64 as C64;
