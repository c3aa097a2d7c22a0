//! The exceptions of `polygram._core` and the mapping from core errors.

use polygram_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _core,
    KernelError,
    PyValueError,
    "A kernel argument is out of its domain."
);

create_exception!(
    _core,
    MemoryBudgetError,
    KernelError,
    "The work would need more memory than the budget (available memory, \
     RLIMIT_AS, the memory cgroup) allows; refused before allocating."
);

/// The Python face of a core error.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::Invalid { .. } => KernelError::new_err(e.to_string()),
        Error::TooLarge { .. } => MemoryBudgetError::new_err(e.to_string()),
        Error::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
    }
}

/// A `KernelError` for `field`, naming what was given and what is allowed.
pub fn invalid(field: &str, message: impl std::fmt::Display) -> PyErr {
    KernelError::new_err(format!("{field}: {message}"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("KernelError", m.py().get_type::<KernelError>())?;
    m.add("MemoryBudgetError", m.py().get_type::<MemoryBudgetError>())?;
    Ok(())
}
