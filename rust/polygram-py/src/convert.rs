//! Arguments from Python: sizes and edge lists, refused with a
//! `KernelError` naming the field instead of a bare `OverflowError` or
//! `TypeError` from the conversion.

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::errors::invalid;

/// A non-negative integer that fits a `usize` (bools refused).
pub fn size(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid(
            field,
            format!("got {obj}; expected an integer >= 0"),
        ));
    }
    obj.extract::<usize>().map_err(|_| {
        invalid(
            field,
            format!("got {obj}; expected an integer in 0..={}", usize::MAX),
        )
    })
}

/// A list of sizes.
pub fn sizes(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    obj.try_iter()
        .map_err(|_| {
            invalid(
                field,
                format!("got {obj}; expected a list of integers >= 0"),
            )
        })?
        .enumerate()
        .map(|(k, item)| size(&format!("{field}[{k}]"), &item?))
        .collect()
}

/// An `(E, 2)` int64 edge array as pairs of positions (`>= 0`).
pub fn edges(field: &str, edges: &PyReadonlyArray2<'_, i64>) -> PyResult<Vec<(usize, usize)>> {
    let e = edges.as_array();
    if e.ncols() != 2 {
        return Err(invalid(
            field,
            format!(
                "got shape ({}, {}); expected (n_edges, 2)",
                e.nrows(),
                e.ncols()
            ),
        ));
    }
    if let Some(((r, c), v)) = e.indexed_iter().find(|(_, &v)| v < 0) {
        return Err(invalid(
            field,
            format!("id {v} at [{r}, {c}] is negative; ids must be >= 0"),
        ));
    }
    // every id is >= 0 and an i64, so it fits a usize on 64-bit targets
    Ok(e.rows()
        .into_iter()
        .map(|r| (r[0] as usize, r[1] as usize))
        .collect())
}
