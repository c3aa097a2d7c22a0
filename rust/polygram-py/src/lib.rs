//! `polygram._core`: the thin PyO3 face of `polygram-core`.
//!
//! It converts numpy arrays, releases the GIL for anything that scales with
//! the input, polls Ctrl-C between chunks of work and maps core errors to
//! `KernelError` (a `ValueError`).  No math lives here.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
};
use polygram_core::panels::{self, PanelParams};
use polygram_core::scan::{self, Axis, SWEEP_STATS};
use polygram_core::tiers::Tiers;
use polygram_core::{gram, union_find, Encoding, Entangler, Error, Hea, Rotation, C64};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _core,
    KernelError,
    PyValueError,
    "A kernel argument is out of its domain."
);

fn to_py(e: Error) -> PyErr {
    match e {
        Error::Invalid { .. } => KernelError::new_err(e.to_string()),
        Error::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
    }
}

/// Points per chunk between two Ctrl-C polls.
const CHUNK: usize = 1 << 18;

/// The rayon pool, rebuilt in a forked child (the parent's threads are gone there).
static POOL: Mutex<Option<(u32, usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

fn default_threads() -> usize {
    std::env::var("POLYGRAM_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(0)
}

fn build_pool(n: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("polygram-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| KernelError::new_err(format!("cannot start threads: {e}")))
}

fn pool() -> PyResult<Arc<rayon::ThreadPool>> {
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    match guard.as_ref() {
        Some((p, _, pool)) if *p == pid => Ok(pool.clone()),
        other => {
            let n = other.map(|(_, n, _)| *n).unwrap_or_else(default_threads);
            if let Some(old) = guard.take() {
                // Threads of a pool inherited through fork do not exist here.
                std::mem::forget(old);
            }
            let pool = build_pool(n)?;
            *guard = Some((pid, n, pool.clone()));
            Ok(pool)
        }
    }
}

/// Size the worker pool (0 = one thread per core).  Also read once from
/// `POLYGRAM_NUM_THREADS`.
#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    let pool = build_pool(n)?;
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    *guard = Some((std::process::id(), n, pool));
    Ok(())
}

#[pyfunction]
fn num_threads() -> PyResult<usize> {
    Ok(pool()?.current_num_threads())
}

/// Run `work` over `0..total` in steps of `step`, GIL released, polling Ctrl-C between steps.
fn chunked<F>(py: Python<'_>, total: usize, step: usize, mut work: F) -> PyResult<()>
where
    F: FnMut(Range<usize>) -> Result<(), Error> + Send,
{
    let pool = pool()?;
    let mut start = 0;
    while start < total {
        let end = (start + step).min(total);
        py.detach(|| pool.install(|| work(start..end)))
            .map_err(to_py)?;
        py.check_signals()?;
        start = end;
    }
    Ok(())
}

/// An encoding: how knob rows become states.
#[pyclass(module = "polygram._core", frozen)]
struct Encoder {
    enc: Encoding,
}

fn parse_rotation(s: &str) -> PyResult<Rotation> {
    match s {
        "Rx" => Ok(Rotation::Rx),
        "Ry" => Ok(Rotation::Ry),
        "Rz" => Ok(Rotation::Rz),
        _ => Err(KernelError::new_err(format!(
            "rotations: unknown rotation {s:?}; allowed Rx, Ry, Rz"
        ))),
    }
}

#[pymethods]
impl Encoder {
    #[new]
    #[pyo3(signature = (kind, n_qubits=3, depth=1, rotations=vec!["Ry".to_string()], entangler="ring"))]
    fn new(
        kind: &str,
        n_qubits: usize,
        depth: usize,
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
                let ent = match entangler {
                    "ring" => Entangler::Ring,
                    "chain" => Entangler::Chain,
                    _ => {
                        return Err(KernelError::new_err(format!(
                            "entangler: unknown entangler {entangler:?}; allowed ring, chain"
                        )))
                    }
                };
                Encoding::Hea(Hea::new(n_qubits, depth, rots, ent).map_err(to_py)?)
            }
            _ => {
                return Err(KernelError::new_err(format!(
                    "kind: unknown encoding {kind:?}; allowed mps, rung3, hea"
                )))
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
        Ok(gram::states(&self.enc, p).map_err(to_py)?.into_pyarray(py))
    }

    fn gram<'py>(
        &self,
        py: Python<'py>,
        params: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<C64>>> {
        let p = params.as_array();
        Ok(gram::gram(&self.enc, p).map_err(to_py)?.into_pyarray(py))
    }

    /// Grams of a stack of knob tables `(batch, n_features, width)`.
    fn gram_batch<'py>(
        &self,
        py: Python<'py>,
        tables: PyReadonlyArray3<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray3<C64>>> {
        let t = tables.as_array();
        let pool = pool()?;
        let out: Array3<C64> = py
            .detach(|| pool.install(|| gram::gram_batch(&self.enc, t)))
            .map_err(to_py)?;
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
        let (m, v, f) = gram::branch_law(&self.enc, params.as_array()).map_err(to_py)?;
        Ok((m.into_pyarray(py), v.into_pyarray(py), f.into_pyarray(py)))
    }

    /// Schmidt rank (qubit 0 | rest) of every row's state.
    fn schmidt_ranks<'py>(
        &self,
        py: Python<'py>,
        params: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let s = gram::states(&self.enc, params.as_array()).map_err(to_py)?;
        let r: Array1<u8> = s
            .rows()
            .into_iter()
            .map(|row| gram::schmidt_rank(&row.to_vec()))
            .collect();
        Ok(r.into_pyarray(py))
    }
}

/// A grid of knob writes over a base knob table, with the dictionary's tiers.
#[pyclass(module = "polygram._core", frozen)]
struct Scan {
    scan: scan::Scan,
    tiers: Tiers,
}

#[pymethods]
impl Scan {
    /// `slots[k]`: flat knob-table slots written by axis `k`; `values[k]`: its values.
    /// `clusters[f]`: cluster index of feature `f`.
    #[new]
    fn new(
        encoder: &Encoder,
        base: PyReadonlyArray2<'_, f64>,
        slots: Vec<Vec<usize>>,
        values: Vec<PyReadonlyArray1<'_, f64>>,
        clusters: Vec<usize>,
        n_clusters: usize,
    ) -> PyResult<Self> {
        if slots.len() != values.len() {
            return Err(KernelError::new_err(format!(
                "axes: {} slot lists for {} value arrays",
                slots.len(),
                values.len()
            )));
        }
        let axes = slots
            .into_iter()
            .zip(values)
            .map(|(s, v)| Axis {
                slots: s,
                values: v.as_array().to_vec(),
            })
            .collect();
        let scan = scan::Scan::new(encoder.enc.clone(), base.as_array(), axes).map_err(to_py)?;
        let tiers = Tiers::new(clusters, n_clusters).map_err(to_py)?;
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
        target: (usize, usize),
    ) -> PyResult<(
        Bound<'py, PyArray3<C64>>,
        Bound<'py, PyArray2<u8>>,
        Bound<'py, PyArray2<f64>>,
    )> {
        let (p, n) = (self.scan.n_points(), self.scan.n_features());
        let mut g = Array3::<C64>::zeros((p, n, n));
        let mut r = Array2::<u8>::zeros((p, n));
        let mut s = Array2::<f64>::zeros((p, SWEEP_STATS));
        {
            let (gs, rs, ss) = (
                g.as_slice_mut().expect("contiguous"),
                r.as_slice_mut().expect("contiguous"),
                s.as_slice_mut().expect("contiguous"),
            );
            let mut chunks = split3(gs, rs, ss, n * n, n, SWEEP_STATS, p);
            chunked(py, chunks.len(), 64, |range| {
                for c in &mut chunks[range] {
                    self.scan
                        .sweep_chunk(c.0.clone(), &self.tiers, target, c.1, c.2, c.3)?;
                }
                Ok(())
            })?;
        }
        Ok((g.into_pyarray(py), r.into_pyarray(py), s.into_pyarray(py)))
    }

    /// Cancellation grid: `(overlaps (P,), feasible (P,), knob values (P, K) or None, best index)`.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (target, preserve_tiers, with_knobs=true))]
    fn grid<'py>(
        &self,
        py: Python<'py>,
        target: (usize, usize),
        preserve_tiers: bool,
        with_knobs: bool,
    ) -> PyResult<(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
        Option<Bound<'py, PyArray2<f64>>>,
        usize,
    )> {
        let (p, k) = (self.scan.n_points(), self.scan.n_axes());
        let mut o = Array1::<f64>::zeros(p);
        let mut f = Array1::<bool>::from_elem(p, false);
        let mut kv = if with_knobs {
            Some(Array2::<f64>::zeros((p, k)))
        } else {
            None
        };
        {
            let os = o.as_slice_mut().expect("contiguous");
            let fs = f.as_slice_mut().expect("contiguous");
            let mut ks = kv.as_mut().map(|a| a.as_slice_mut().expect("contiguous"));
            let mut start = 0;
            let pool = pool()?;
            while start < p {
                let end = (start + CHUNK).min(p);
                let kc = ks.as_deref_mut().map(|s| &mut s[start * k..end * k]);
                let (oc, fc) = (&mut os[start..end], &mut fs[start..end]);
                py.detach(|| {
                    pool.install(|| {
                        self.scan.grid_chunk(
                            start..end,
                            &self.tiers,
                            target,
                            preserve_tiers,
                            oc,
                            fc,
                            kc,
                        )
                    })
                })
                .map_err(to_py)?;
                py.check_signals()?;
                start = end;
            }
        }
        let pool = pool()?;
        let best = py
            .detach(|| {
                pool.install(|| {
                    scan::best_index(
                        o.as_slice().expect("contiguous"),
                        f.as_slice().expect("contiguous"),
                    )
                })
            })
            .ok_or_else(|| KernelError::new_err("grid: the grid has no points"))?;
        Ok((
            o.into_pyarray(py),
            f.into_pyarray(py),
            kv.map(|a| a.into_pyarray(py)),
            best,
        ))
    }
}

type SweepChunk<'a> = (Range<usize>, &'a mut [C64], &'a mut [u8], &'a mut [f64]);

/// Split the sweep buffers into per-chunk pieces of at most 1024 points.
fn split3<'a>(
    g: &'a mut [C64],
    r: &'a mut [u8],
    s: &'a mut [f64],
    gw: usize,
    rw: usize,
    sw: usize,
    p: usize,
) -> Vec<SweepChunk<'a>> {
    const PTS: usize = 1024;
    let mut out = Vec::new();
    let (mut g, mut r, mut s) = (g, r, s);
    let mut start = 0;
    while start < p {
        let len = PTS.min(p - start);
        let (g0, g1) = std::mem::take(&mut g).split_at_mut(len * gw);
        let (r0, r1) = std::mem::take(&mut r).split_at_mut(len * rw);
        let (s0, s1) = std::mem::take(&mut s).split_at_mut(len * sw);
        out.push((start..start + len, g0, r0, s0));
        (g, r, s) = (g1, r1, s1);
        start += len;
    }
    out
}

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
    let e = edges.as_array();
    if e.ncols() != 2 {
        return Err(KernelError::new_err(format!(
            "edges: got shape ({}, {}); expected (n_edges, 2)",
            e.nrows(),
            e.ncols()
        )));
    }
    if let Some((r, c)) = e.indexed_iter().find(|(_, &v)| v < 0).map(|(rc, _)| rc) {
        return Err(KernelError::new_err(format!(
            "edges: id {} at [{r}, {c}] is negative; ids must be >= 0",
            e[[r, c]]
        )));
    }
    let pairs: Vec<(u64, u64)> = e
        .rows()
        .into_iter()
        .map(|r| (r[0] as u64, r[1] as u64))
        .collect();
    let comps = py.detach(|| union_find::components(pairs));
    let total: usize = comps.iter().map(Vec::len).sum();
    let mut members = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(comps.len() + 1);
    offsets.push(0i64);
    for c in &comps {
        members.extend(c.iter().map(|&v| v as i64)); // < 2^63: came from i64 >= 0
        offsets.push(members.len() as i64);
    }
    Ok((
        Array1::from(members).into_pyarray(py),
        Array1::from(offsets).into_pyarray(py),
    ))
}

/// Rows of the pair graph between two Ctrl-C polls.
const GRAPH_ROWS: usize = 1024;

fn edge_list(field: &str, edges: &PyReadonlyArray2<'_, i64>) -> PyResult<Vec<(usize, usize)>> {
    let e = edges.as_array();
    if e.ncols() != 2 {
        return Err(KernelError::new_err(format!(
            "{field}: got shape ({}, {}); expected (n_edges, 2)",
            e.nrows(),
            e.ncols()
        )));
    }
    e.rows()
        .into_iter()
        .enumerate()
        .map(
            |(k, r)| match (usize::try_from(r[0]), usize::try_from(r[1])) {
                (Ok(a), Ok(b)) => Ok((a, b)),
                _ => Err(KernelError::new_err(format!(
                    "{field}: edge {k} is ({}, {}); positions must be >= 0",
                    r[0], r[1]
                ))),
            },
        )
        .collect()
}

/// Signed-cosine pair graph of float32 decoder rows: every `(a, b)`, `a < b`,
/// with `cos >= threshold`, as an `(E, 2)` int64 array in row-major order.
#[pyfunction]
fn cosine_pair_graph<'py>(
    py: Python<'py>,
    rows: PyReadonlyArray2<'py, f32>,
    threshold: f64,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    panels::check_threshold(threshold).map_err(to_py)?;
    let view = rows.as_array();
    let unit = py.detach(|| pool()?.install(|| panels::unit_rows(view).map_err(to_py)))?;
    let n = unit.nrows();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    chunked(py, n, GRAPH_ROWS, |r| {
        pairs.extend(panels::pair_graph_rows(unit.view(), threshold, r));
        Ok(())
    })?;
    let mut flat = Vec::with_capacity(pairs.len() * 2);
    for (a, b) in pairs {
        flat.push(a as i64);
        flat.push(b as i64);
    }
    let e = flat.len() / 2;
    let arr = Array2::from_shape_vec((e, 2), flat)
        .map_err(|err| KernelError::new_err(format!("pair graph: {err}")))?;
    Ok(arr.into_pyarray(py))
}

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
    panel_size: usize,
    n_visits: usize,
    n_panels_max: usize,
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
    let edge_vec = edge_list("edges", &edges)?;
    let (r, p) = (rows.as_array(), priority.as_array());
    let params = PanelParams {
        panel_size,
        n_visits,
        n_panels_max,
        coverage_target,
    };
    let sel = py.detach(|| {
        pool()?.install(|| panels::select_panels(r, p, &edge_vec, params).map_err(to_py))
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

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("KernelError", m.py().get_type::<KernelError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Encoder>()?;
    m.add_class::<Scan>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(connected_components, m)?)?;
    m.add_function(wrap_pyfunction!(cosine_pair_graph, m)?)?;
    m.add_function(wrap_pyfunction!(select_panels, m)?)?;
    Ok(())
}
