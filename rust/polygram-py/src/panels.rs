//! Greedy seeded panel selection over decoder rows (the epoch's panels).

use numpy::ndarray::Array1;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use polygram_core::panels::{self, PanelParams};
use pyo3::prelude::*;

use crate::convert::{self, size};
use crate::enter::{enter, work_of};

/// Greedy seeded panel selection.  Returns `(anchors, members, offsets,
/// cosines, coverage, n_covered, n_edges, single_feature)`: panel `p` is
/// `members[offsets[p]:offsets[p + 1]]` (ascending positions) and
/// `cosines` is aligned with `members` (the anchor's own entry is NaN).
#[pyfunction]
#[pyo3(signature = (rows, priority, edges, panel_size, n_visits, n_panels_max, coverage_target))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn select_panels<'py>(
    py: Python<'py>,
    rows: PyReadonlyArray2<'py, f32>,
    priority: PyReadonlyArray1<'py, f64>,
    edges: PyReadonlyArray2<'py, i64>,
    panel_size: &Bound<'py, PyAny>,
    n_visits: &Bound<'py, PyAny>,
    n_panels_max: &Bound<'py, PyAny>,
    coverage_target: f64,
) -> PyResult<(
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    f64,
    usize,
    usize,
    bool,
)> {
    let edge_vec = convert::edges("edges", &edges)?;
    let params = PanelParams {
        panel_size: size("panel_size", panel_size)?,
        n_visits: size("n_visits", n_visits)?,
        n_panels_max: size("n_panels_max", n_panels_max)?,
        coverage_target,
    };
    let (r, p) = (rows.as_array(), priority.as_array());
    let work = work_of(&[r.nrows(), r.ncols(), params.panel_size.max(1)]);
    let sel = enter(py, work, |c| {
        panels::select_panels(r, p, &edge_vec, params, c)
    })?;
    let mut anchors = Vec::with_capacity(sel.panels.len());
    let mut members = Vec::new();
    let mut cosines = Vec::new();
    let mut offsets = vec![0i64];
    for panel in &sel.panels {
        anchors.push(panel.anchor as i64);
        let mut others = panel.cosines.iter();
        for &m in &panel.members {
            members.push(m as i64);
            cosines.push(if m == panel.anchor {
                f64::NAN
            } else {
                *others.next().unwrap_or(&f64::NAN)
            });
        }
        offsets.push(members.len() as i64);
    }
    Ok((
        Array1::from(anchors).into_pyarray(py),
        Array1::from(members).into_pyarray(py),
        Array1::from(offsets).into_pyarray(py),
        Array1::from(cosines).into_pyarray(py),
        sel.coverage,
        sel.n_covered,
        sel.n_edges,
        sel.single_feature,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(select_panels, m)?)?;
    Ok(())
}
