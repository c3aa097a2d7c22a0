//! The memory budget of `polygram_core::budget`, read from Python (one home:
//! `polygram._budget` asks here).

use polygram_core::budget;
use pyo3::prelude::*;

use crate::errors::to_py;

/// Bytes one result may use: `override`, else `$POLYGRAM_MAX_GRID_BYTES`,
/// else half of physical memory — never more than [`memory_headroom`].
#[pyfunction]
#[pyo3(signature = (override_bytes=None))]
fn memory_budget(override_bytes: Option<u64>) -> PyResult<(u64, &'static str)> {
    let l = budget::policy(override_bytes).map_err(to_py)?;
    Ok((l.bytes, l.source))
}

/// Bytes any one call may allocate now: the least of available memory, the
/// address-space limit above the process size and the memory cgroup's room.
#[pyfunction]
fn memory_headroom() -> (u64, &'static str) {
    let l = budget::headroom();
    (l.bytes, l.source)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(memory_budget, m)?)?;
    m.add_function(wrap_pyfunction!(memory_headroom, m)?)?;
    m.add("BUDGET_SMALL_BYTES", budget::SMALL)?;
    Ok(())
}
