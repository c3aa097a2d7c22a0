//! `Encoder`: an encoding, and the states, Grams, phase laws and Schmidt
//! ranks of knob tables.

use numpy::ndarray::Array3;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray2, PyReadonlyArray3};
use polygram_core::encoding::hea;
use polygram_core::{gram, Encoding, Entangler, Hea, Rotation, C64};
use pyo3::prelude::*;

use crate::convert::size;
use crate::enter::{enter, work_of};
use crate::errors::{invalid, to_py};

/// An encoding: how knob rows become states.
#[pyclass(module = "polygram._core", frozen)]
pub struct Encoder {
    pub enc: Encoding,
}

fn parse_rotation(s: &str) -> PyResult<Rotation> {
    match s {
        "Rx" => Ok(Rotation::Rx),
        "Ry" => Ok(Rotation::Ry),
        "Rz" => Ok(Rotation::Rz),
        _ => Err(invalid(
            "rotations",
            format!("unknown rotation {s:?}; allowed Rx, Ry, Rz"),
        )),
    }
}

fn parse_entangler(s: &str) -> PyResult<Entangler> {
    match s {
        "ring" => Ok(Entangler::Ring),
        "chain" => Ok(Entangler::Chain),
        _ => Err(invalid(
            "entangler",
            format!("unknown entangler {s:?}; allowed ring, chain"),
        )),
    }
}

#[pymethods]
impl Encoder {
    #[new]
    #[pyo3(signature = (kind, n_qubits=None, depth=None, rotations=vec!["Ry".to_string()], entangler="ring"))]
    fn new(
        kind: &str,
        n_qubits: Option<&Bound<'_, PyAny>>,
        depth: Option<&Bound<'_, PyAny>>,
        rotations: Vec<String>,
        entangler: &str,
    ) -> PyResult<Self> {
        let enc = match kind {
            "mps" => Encoding::Mps,
            "rung3" => Encoding::Rung3,
            "hea" => {
                let rots = rotations
                    .iter()
                    .map(|r| parse_rotation(r))
                    .collect::<PyResult<Vec<_>>>()?;
                let or = |field: &str, v: Option<&Bound<'_, PyAny>>, default: usize| {
                    v.map_or(Ok(default), |v| size(field, v))
                };
                let hea = Hea::new(
                    or("n_qubits", n_qubits, 3)?,
                    or("depth", depth, 1)?,
                    rots,
                    parse_entangler(entangler)?,
                );
                Encoding::Hea(hea.map_err(to_py)?)
            }
            _ => {
                return Err(invalid(
                    "kind",
                    format!("unknown encoding {kind:?}; allowed mps, rung3, hea"),
                ))
            }
        };
        Ok(Encoder { enc })
    }

    /// Knob values per feature.
    #[getter]
    fn width(&self) -> usize {
        self.enc.width()
    }

    /// State-vector length.
    #[getter]
    fn dim(&self) -> usize {
        self.enc.dim()
    }

    fn states<'py>(
        &self,
        py: Python<'py>,
        params: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<C64>>> {
        let p = params.as_array();
        let work = self.state_work(p.nrows());
        Ok(enter(py, work, |c| gram::states(&self.enc, p, c))?.into_pyarray(py))
    }

    fn gram<'py>(
        &self,
        py: Python<'py>,
        params: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<C64>>> {
        let p = params.as_array();
        let work = self.gram_work(p.nrows());
        Ok(enter(py, work, |c| gram::gram(&self.enc, p, c))?.into_pyarray(py))
    }

    /// Grams of a stack of knob tables `(batch, n_features, width)`.
    fn gram_batch<'py>(
        &self,
        py: Python<'py>,
        tables: PyReadonlyArray3<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray3<C64>>> {
        let t = tables.as_array();
        let work = self.gram_work(t.dim().1).saturating_mul(t.dim().0 as u64);
        let out: Array3<C64> = enter(py, work, |c| gram::gram_batch(&self.enc, t, c))?;
        Ok(out.into_pyarray(py))
    }

    /// `(M, V, floor)` tables of the phase law `|G|² = M + V·cos δ`.
    #[allow(clippy::type_complexity)]
    fn branch_law<'py>(
        &self,
        py: Python<'py>,
        params: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<f64>>,
    )> {
        let p = params.as_array();
        let work = work_of(&[p.nrows(), p.nrows(), 64]);
        let (m, v, f) = enter(py, work, |c| gram::branch_law(&self.enc, p, c))?;
        Ok((m.into_pyarray(py), v.into_pyarray(py), f.into_pyarray(py)))
    }

    /// Schmidt rank (qubit 0 | rest) of every row's state.
    fn schmidt_ranks<'py>(
        &self,
        py: Python<'py>,
        params: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let p = params.as_array();
        let work = self.state_work(p.nrows());
        Ok(enter(py, work, |c| gram::schmidt_ranks(&self.enc, p, c))?.into_pyarray(py))
    }
}

impl Encoder {
    /// Steps to build `n` states.
    pub fn state_work(&self, n: usize) -> u64 {
        self.enc.state_work().saturating_mul(n as u64)
    }

    /// Steps of a Gram of `n` features: the states, then `n²` inner products.
    fn gram_work(&self, n: usize) -> u64 {
        self.state_work(n)
            .saturating_add(work_of(&[n, n, self.enc.repr_dim()]))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Encoder>()?;
    m.add("HEA_MAX_QUBITS", hea::MAX_QUBITS)?;
    m.add("HEA_MAX_DEPTH", hea::MAX_DEPTH)?;
    m.add("HEA_MAX_ROTATIONS", hea::MAX_ROTATIONS)?;
    Ok(())
}
