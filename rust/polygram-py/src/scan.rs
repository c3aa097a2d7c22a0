//! `Scan`: a grid of knob writes over a base knob table, swept point by
//! point or searched for its cancelling point.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use polygram_core::scan::{self, Axis};
use polygram_core::tiers::{self, Tiers};
use polygram_core::C64;
use pyo3::prelude::*;

use crate::convert::{size, sizes};
use crate::encoder::Encoder;
use crate::enter::{enter, work_of};
use crate::errors::{invalid, to_py};

/// A grid of knob writes over a base knob table, with the dictionary's tiers.
#[pyclass(module = "polygram._core", frozen)]
struct Scan {
    scan: scan::Scan,
    tiers: Tiers,
}

fn target_pair(obj: &Bound<'_, PyAny>) -> PyResult<(usize, usize)> {
    let (a, b): (Bound<'_, PyAny>, Bound<'_, PyAny>) = obj.extract().map_err(|_| {
        invalid(
            "target",
            format!("got {obj}; expected a pair of feature indices"),
        )
    })?;
    Ok((size("target[0]", &a)?, size("target[1]", &b)?))
}

#[pymethods]
impl Scan {
    /// `slots[k]`: flat knob-table slots written by axis `k`; `values[k]`: its values.
    /// `clusters[f]`: cluster index of feature `f`.
    #[new]
    fn new(
        py: Python<'_>,
        encoder: &Encoder,
        base: PyReadonlyArray2<'_, f64>,
        slots: Vec<Bound<'_, PyAny>>,
        values: Vec<PyReadonlyArray1<'_, f64>>,
        clusters: &Bound<'_, PyAny>,
        n_clusters: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if slots.len() != values.len() {
            return Err(invalid(
                "axes",
                format!(
                    "{} slot lists for {} value arrays",
                    slots.len(),
                    values.len()
                ),
            ));
        }
        let mut axes = Vec::with_capacity(slots.len());
        for (k, (s, v)) in slots.iter().zip(&values).enumerate() {
            axes.push(Axis {
                slots: sizes(&format!("slots[{k}]"), s)?,
                values: v.as_array().to_vec(),
            });
        }
        let tiers = Tiers::new(
            sizes("clusters", clusters)?,
            size("n_clusters", n_clusters)?,
        )
        .map_err(to_py)?;
        let (enc, base) = (encoder.enc.clone(), base.as_array());
        // the base states and one state per value of every axis slot
        let states = axes.iter().fold(base.nrows() as u64, |acc, ax| {
            acc.saturating_add(work_of(&[ax.values.len(), ax.slots.len()]))
        });
        let work = encoder.state_work(1).saturating_mul(states);
        let scan = enter(py, work, |c| scan::Scan::new(enc, base, axes, c))?;
        Ok(Scan { scan, tiers })
    }

    #[getter]
    fn n_points(&self) -> usize {
        self.scan.n_points()
    }

    /// Every point's Gram `(P, N, N)`, Schmidt ranks `(P, N)` and statistics
    /// `(P, 5)`: target overlap, sibling mean, cross mean, tier separation, ordering ok.
    #[allow(clippy::type_complexity)]
    fn sweep<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArray3<C64>>,
        Bound<'py, PyArray2<u8>>,
        Bound<'py, PyArray2<f64>>,
    )> {
        let target = target_pair(target)?;
        let n = self.scan.n_features();
        let work = work_of(&[self.scan.n_points(), n, n]);
        let s = enter(py, work, |c| self.scan.sweep(&self.tiers, target, c))?;
        Ok((
            s.gram.into_pyarray(py),
            s.ranks.into_pyarray(py),
            s.stats.into_pyarray(py),
        ))
    }

    /// Cancellation grid: `(overlaps (P,), feasible (P,), knob values (P, K) or None, best index)`.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (target, preserve_tiers, with_knobs=true))]
    fn grid<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        preserve_tiers: bool,
        with_knobs: bool,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
        Option<Bound<'py, PyArray2<f64>>>,
        usize,
    )> {
        let target = target_pair(target)?;
        let work = work_of(&[self.scan.n_points(), self.scan.n_features() + 1]);
        let g = enter(py, work, |c| {
            self.scan
                .grid(&self.tiers, target, preserve_tiers, with_knobs, c)
        })?;
        Ok((
            g.overlaps.into_pyarray(py),
            g.feasible.into_pyarray(py),
            g.knobs.map(|k| k.into_pyarray(py)),
            g.best,
        ))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scan>()?;
    m.add("SCAN_MAX_AXES", scan::MAX_AXES)?;
    m.add("MAX_CLUSTERS", tiers::MAX_CLUSTERS)?;
    Ok(())
}
