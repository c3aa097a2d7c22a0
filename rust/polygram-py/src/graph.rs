//! Graph functions: connected components of an edge list and the signed
//! cosine pair graph of decoder rows.

use numpy::ndarray::Array1;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use polygram_core::{panels, union_find};
use pyo3::prelude::*;

use crate::convert::edges;
use crate::enter::{enter, work_of};

/// Connected components of an `(E, 2)` int64 edge array (ids >= 0), as a
/// CSR pair `(members, offsets)`: component `c` is
/// `members[offsets[c]:offsets[c + 1]]`, components sorted by minimum id,
/// members ascending.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn connected_components<'py>(
    py: Python<'py>,
    edges: PyReadonlyArray2<'py, i64>,
) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>)> {
    let pairs = edges_u64(&edges)?;
    let work = work_of(&[pairs.len(), 16]);
    let (members, offsets) = enter(py, work, |_| {
        let comps = union_find::components(pairs);
        let total: usize = comps.iter().map(Vec::len).sum();
        let mut members = Vec::with_capacity(total);
        let mut offsets = Vec::with_capacity(comps.len() + 1);
        offsets.push(0i64);
        for c in &comps {
            members.extend(c.iter().map(|&v| v as i64)); // < 2^63: came from i64 >= 0
            offsets.push(members.len() as i64);
        }
        Ok((members, offsets))
    })?;
    Ok((
        Array1::from(members).into_pyarray(py),
        Array1::from(offsets).into_pyarray(py),
    ))
}

fn edges_u64(e: &PyReadonlyArray2<'_, i64>) -> PyResult<Vec<(u64, u64)>> {
    Ok(edges("edges", e)?
        .into_iter()
        .map(|(a, b)| (a as u64, b as u64))
        .collect())
}

/// Signed-cosine pair graph of float32 decoder rows: every `(a, b)`, `a < b`,
/// with `cos >= threshold`, as an `(E, 2)` int64 array in row-major order.
#[pyfunction]
fn cosine_pair_graph<'py>(
    py: Python<'py>,
    rows: PyReadonlyArray2<'py, f32>,
    threshold: f64,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let view = rows.as_array();
    let work = work_of(&[view.nrows(), view.nrows(), view.ncols()]) / 2;
    Ok(enter(py, work, |c| panels::cosine_pair_graph(view, threshold, c))?.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(connected_components, m)?)?;
    m.add_function(wrap_pyfunction!(cosine_pair_graph, m)?)?;
    Ok(())
}
