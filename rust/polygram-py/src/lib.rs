//! `polygram._core`: the thin PyO3 face of `polygram-core`.
//!
//! One module per Python class or family of functions; each converts its
//! arguments, runs the kernel through the single [`enter::enter`] helper
//! (GIL released, rayon pool, Ctrl-C → cancel flag → `KeyboardInterrupt`,
//! panic → `KernelError`) and hands the result arrays to numpy without a
//! copy.  No math lives here.

mod budget;
mod clustered;
mod convert;
mod encoder;
mod enter;
mod errors;
mod graph;
mod panels;
mod pool;
mod scan;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    pool::register(m)?;
    budget::register(m)?;
    encoder::register(m)?;
    scan::register(m)?;
    graph::register(m)?;
    panels::register(m)?;
    clustered::register(m)?;
    Ok(())
}
