//! The clustered-dictionary kernels of `polygram._core` (spec 17 §17.13):
//! the tiled pair pass, block formation, cross-block edges, per-block Grams,
//! float64 edge cosines, k-means assignment and expert routing.
//!
//! Arrays cross whole; every call runs through [`enter`] (GIL released, the
//! pool, Ctrl-C → the stop flag polled between row-block steps).  An exceeded
//! edge budget is returned as data (`over_budget`), so Python raises its own
//! `GraphTooLargeError`.

use numpy::ndarray::{Array1, Array2, ArrayView2};
use numpy::{Element, IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use polygram_core::blocks::{self, Partition};
use polygram_core::cofiring::{self, FiringSets};
use polygram_core::cosine::{self, Edges, PairPass, Real, StateRows};
use polygram_core::{kmeans, route, Error, C64};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::encoder::Encoder;
use crate::enter::{enter, INLINE_WORK};
use crate::errors::KernelError;

/// Work of these kernels uses rayon inside: always hand it to the pool.
const POOLED: u64 = INLINE_WORK;

/// Decoder rows as given: float32 or float64.
#[derive(FromPyObject)]
enum Rows<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

type Arr1<'py, T> = Bound<'py, PyArray1<T>>;

fn i64s<'py>(py: Python<'py>, v: impl IntoIterator<Item = usize>) -> Bound<'py, PyArray1<i64>> {
    // every value indexes an in-memory array, so it is < isize::MAX
    Array1::from_iter(v.into_iter().map(|x| x as i64)).into_pyarray(py)
}

fn usizes(field: &str, a: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<usize>> {
    a.as_array()
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            usize::try_from(v).map_err(|_| {
                KernelError::new_err(format!("{field}: entry {k} is {v}; must be >= 0"))
            })
        })
        .collect()
}

fn u32s(field: &str, a: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<u32>> {
    a.as_array()
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            u32::try_from(v).map_err(|_| {
                KernelError::new_err(format!(
                    "{field}: entry {k} is {v}; allowed 0..={}",
                    u32::MAX
                ))
            })
        })
        .collect()
}

/// `(edges or None, max_c32 or None, reached or None)`.
type GraphOut<'py> = (
    Option<Bound<'py, PyArray2<i64>>>,
    Option<f64>,
    Option<usize>,
);

fn pair_graph_impl<'py, T: Real + Element>(
    py: Python<'py>,
    rows: ArrayView2<'_, T>,
    threshold: f64,
    budget: usize,
) -> PyResult<GraphOut<'py>> {
    let (edges, max, reached) = enter(py, POOLED, |ctx| {
        let unit = cosine::unit_rows32(rows)?;
        let mut pass = PairPass::new(&unit, threshold, budget, None)?;
        pass.run_all(ctx)?;
        let max = pass.max_c32();
        let max = (max > f32::NEG_INFINITY).then_some(f64::from(max));
        let reached = pass.exceeded();
        Ok((pass.into_edges(), max, reached))
    })?;
    if reached.is_some() {
        return Ok((None, None, reached));
    }
    let mut flat = Vec::with_capacity(edges.len() * 2);
    for (a, b) in edges {
        flat.push(i64::from(a));
        flat.push(i64::from(b));
    }
    let e = flat.len() / 2;
    let arr = Array2::from_shape_vec((e, 2), flat)
        .map_err(|err| KernelError::new_err(format!("pair graph: {err}")))?;
    Ok((Some(arr.into_pyarray(py)), max, None))
}

/// Decoder pair graph: `(edges (E, 2) int64 or None, max_c32 or None,
/// reached or None)`.  Over budget, `edges` is None and `reached` is the
/// count reached; `max_c32` is None for fewer than two rows.
#[pyfunction]
#[pyo3(signature = (rows, threshold, max_edges=None))]
fn pair_graph<'py>(
    py: Python<'py>,
    rows: Rows<'py>,
    threshold: f64,
    max_edges: Option<usize>,
) -> PyResult<GraphOut<'py>> {
    let budget = max_edges.unwrap_or(usize::MAX);
    match rows {
        Rows::F32(r) => pair_graph_impl(py, r.as_array(), threshold, budget),
        Rows::F64(r) => pair_graph_impl(py, r.as_array(), threshold, budget),
    }
}

/// Everything `cluster_blocks` hands back, before conversion.
struct Built {
    part: Partition,
    cross: Vec<(u32, u32)>,
    cosines: Vec<f64>,
    max_c32: Option<f64>,
    n_edges: usize,
    tier: Option<(u64, Option<f64>)>,
}

enum Outcome {
    Built(Built),
    OverBudget(&'static str, usize),
}

#[allow(clippy::too_many_arguments)]
fn cluster_impl<T: Real + Element>(
    py: Python<'_>,
    rows: ArrayView2<'_, T>,
    threshold: f64,
    budget: usize,
    cap: usize,
    strategy: &str,
    declared: Option<(Vec<u32>, Vec<usize>)>,
    fires: Option<ArrayView2<'_, u8>>,
    co_threshold: f64,
    states: Option<StateRows>,
) -> PyResult<Outcome> {
    let n = rows.nrows();
    enter(py, POOLED, move |ctx| {
        let (edges, max_c32, tier) = {
            let unit = cosine::unit_rows32(rows)?;
            let mut pass = PairPass::new(&unit, threshold, budget, states.as_ref())?;
            pass.run_all(ctx)?;
            if let Some(reached) = pass.exceeded() {
                return Ok(Outcome::OverBudget("decoder", reached));
            }
            let max = pass.max_c32();
            let max = (max > f32::NEG_INFINITY).then_some(f64::from(max));
            let stats = pass.stats();
            let tier = states.as_ref().map(|_| (stats.n, stats.pearson()));
            (pass.into_edges(), max, tier)
        }; // the float32 unit copy is freed here
        drop(states);
        let part = match strategy {
            "cosine" => blocks::bfs_blocks(n, &edges, cap)?,
            "user_declared" => {
                let (members, offsets) = declared.ok_or_else(|| {
                    Error::invalid("blocks", "user_declared needs members and offsets")
                })?;
                Partition::from_blocks(n, members, offsets, cap)?
            }
            "co_firing" => {
                let fires = fires.ok_or_else(|| {
                    Error::invalid("activation_traces", "co_firing needs firing traces")
                })?;
                if fires.ncols() != n {
                    return Err(Error::invalid(
                        "activation_traces",
                        format!(
                            "{} columns for {n} features; expected one per feature",
                            fires.ncols()
                        ),
                    ));
                }
                let sets = FiringSets::new(fires)?;
                ctx.check()?;
                match cofiring::co_firing_pairs(&sets, co_threshold, budget)? {
                    Edges::Complete(g) => blocks::bfs_blocks(n, &g, cap)?,
                    Edges::OverBudget { reached } => {
                        return Ok(Outcome::OverBudget("co_firing", reached))
                    }
                }
            }
            other => {
                return Err(Error::invalid(
                    "strategy",
                    format!("got {other:?}; allowed cosine, user_declared, co_firing"),
                ))
            }
        };
        ctx.check()?;
        let n_edges = edges.len();
        let cross = blocks::split_cross(&edges, &part)?;
        drop(edges);
        let by_index: Vec<(u32, u32)> = cross
            .iter()
            .map(|&(p, q)| (part.members[p as usize], part.members[q as usize]))
            .collect();
        let div = cosine::row_divisors(rows);
        let cosines = cosine::edge_cosines64(rows, &div, &by_index)?;
        Ok(Outcome::Built(Built {
            part,
            cross,
            cosines,
            max_c32,
            n_edges,
            tier,
        }))
    })
}

/// The whole block build of spec 17 §17.3 in one call.  Returns a dict:
/// `members`, `offsets`, `block_of`, `local` (int64 partition, block order),
/// `cross_p`, `cross_q` (int64 global positions, canonical order), `cosine`
/// (float64 c64 of each cross edge), `max_c32` (float or None), `n_edges`
/// (decoder pairs at the threshold), `tier` (`(n_pairs, pearson or None)`
/// or None), or only `over_budget = (graph, reached)`.
#[pyfunction]
#[pyo3(signature = (
    rows, threshold, max_edges, cap, strategy, *,
    members=None, offsets=None, fires=None, co_firing_threshold=0.3,
    encoder=None, table=None,
))]
#[allow(clippy::too_many_arguments)]
fn cluster_blocks<'py>(
    py: Python<'py>,
    rows: Rows<'py>,
    threshold: f64,
    max_edges: usize,
    cap: usize,
    strategy: &str,
    members: Option<PyReadonlyArray1<'py, i64>>,
    offsets: Option<PyReadonlyArray1<'py, i64>>,
    fires: Option<PyReadonlyArray2<'py, u8>>,
    co_firing_threshold: f64,
    encoder: Option<PyRef<'py, Encoder>>,
    table: Option<PyReadonlyArray2<'py, f64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let declared = match (members, offsets) {
        (Some(m), Some(o)) => Some((u32s("members", &m)?, usizes("offsets", &o)?)),
        (None, None) => None,
        _ => {
            return Err(KernelError::new_err(
                "blocks: give both members and offsets, or neither",
            ))
        }
    };
    let states = match (encoder, table) {
        (Some(e), Some(t)) => {
            let (tv, enc) = (t.as_array(), e.enc.clone());
            Some(enter(py, POOLED, |_| StateRows::from_table(&enc, tv))?)
        }
        (None, None) => None,
        _ => {
            return Err(KernelError::new_err(
                "tier statistics: give both encoder and table, or neither",
            ))
        }
    };
    let fv = fires.as_ref().map(|f| f.as_array());
    let outcome = match &rows {
        Rows::F32(r) => cluster_impl(
            py,
            r.as_array(),
            threshold,
            max_edges,
            cap,
            strategy,
            declared,
            fv,
            co_firing_threshold,
            states,
        )?,
        Rows::F64(r) => cluster_impl(
            py,
            r.as_array(),
            threshold,
            max_edges,
            cap,
            strategy,
            declared,
            fv,
            co_firing_threshold,
            states,
        )?,
    };
    let out = PyDict::new(py);
    match outcome {
        Outcome::OverBudget(graph, reached) => {
            out.set_item("over_budget", (graph, reached))?;
        }
        Outcome::Built(b) => {
            let Partition {
                members,
                offsets,
                block_of,
                local,
            } = b.part;
            out.set_item("members", i64s(py, members.iter().map(|&v| v as usize)))?;
            out.set_item("offsets", i64s(py, offsets))?;
            out.set_item("block_of", i64s(py, block_of.iter().map(|&v| v as usize)))?;
            out.set_item("local", i64s(py, local.iter().map(|&v| v as usize)))?;
            out.set_item("cross_p", i64s(py, b.cross.iter().map(|e| e.0 as usize)))?;
            out.set_item("cross_q", i64s(py, b.cross.iter().map(|e| e.1 as usize)))?;
            out.set_item("cosine", Array1::from(b.cosines).into_pyarray(py))?;
            out.set_item("max_c32", b.max_c32)?;
            out.set_item("n_edges", b.n_edges)?;
            out.set_item("tier", b.tier)?;
        }
    }
    Ok(out)
}

/// Gram of every block of a partition: `(flat complex128, starts int64)`;
/// block `b` is `flat[starts[b]:starts[b + 1]].reshape(k_b, k_b)`.
#[pyfunction]
fn block_grams<'py>(
    py: Python<'py>,
    encoder: PyRef<'py, Encoder>,
    table: PyReadonlyArray2<'py, f64>,
    members: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
) -> PyResult<(Bound<'py, PyArray1<C64>>, Arr1<'py, i64>)> {
    let m = u32s("members", &members)?;
    let o = usizes("offsets", &offsets)?;
    let t = table.as_array();
    let cap = m.len().max(1);
    let enc = encoder.enc.clone();
    let (flat, starts) = enter(py, POOLED, |ctx| {
        let part = Partition::from_blocks(t.nrows(), m, o, cap)?;
        blocks::block_grams(&enc, t, &part, ctx)
    })?;
    Ok((Array1::from(flat).into_pyarray(py), i64s(py, starts)))
}

fn edge_cos_impl<T: Real + Element>(
    py: Python<'_>,
    rows: ArrayView2<'_, T>,
    pairs: &[(u32, u32)],
) -> PyResult<Vec<f64>> {
    enter(py, POOLED, |_| {
        let div = cosine::row_divisors(rows);
        cosine::edge_cosines64(rows, &div, pairs)
    })
}

/// Float64 cosines `c64(i[k], j[k])` of rows as given.
#[pyfunction]
fn edge_cosines<'py>(
    py: Python<'py>,
    rows: Rows<'py>,
    i: PyReadonlyArray1<'py, i64>,
    j: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (a, b) = (u32s("i", &i)?, u32s("j", &j)?);
    if a.len() != b.len() {
        return Err(KernelError::new_err(format!(
            "pairs: {} left and {} right indices",
            a.len(),
            b.len()
        )));
    }
    let pairs: Vec<(u32, u32)> = a.into_iter().zip(b).collect();
    let out = match &rows {
        Rows::F32(r) => edge_cos_impl(py, r.as_array(), &pairs)?,
        Rows::F64(r) => edge_cos_impl(py, r.as_array(), &pairs)?,
    };
    Ok(Array1::from(out).into_pyarray(py))
}

fn kmeans_impl<T: Real + Element>(
    py: Python<'_>,
    rows: ArrayView2<'_, T>,
    centroids: ArrayView2<'_, f64>,
) -> PyResult<(Vec<usize>, Vec<f64>)> {
    enter(py, POOLED, |_| kmeans::kmeans_assign(rows, centroids))
}

/// Nearest centroid of every row: `(labels int64, min squared distance)`.
#[pyfunction]
fn kmeans_assign<'py>(
    py: Python<'py>,
    rows: Rows<'py>,
    centroids: PyReadonlyArray2<'py, f64>,
) -> PyResult<(Arr1<'py, i64>, Arr1<'py, f64>)> {
    let c = centroids.as_array();
    let (labels, d2) = match &rows {
        Rows::F32(r) => kmeans_impl(py, r.as_array(), c)?,
        Rows::F64(r) => kmeans_impl(py, r.as_array(), c)?,
    };
    Ok((i64s(py, labels), Array1::from(d2).into_pyarray(py)))
}

/// Top-`top_k` experts of every row of `activations` (`T × N`) as int64 `(T, top_k)`.
#[pyfunction]
fn route_batch<'py>(
    py: Python<'py>,
    feature_to_expert: PyReadonlyArray1<'py, i64>,
    n_experts: usize,
    activations: PyReadonlyArray2<'py, f64>,
    top_k: usize,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let f2e = usizes("feature_to_expert", &feature_to_expert)?;
    let a = activations.as_array();
    let out = enter(py, POOLED, |_| {
        route::route_batch(&f2e, n_experts, a, top_k)
    })?;
    Ok(out.mapv(|v| v as i64).into_pyarray(py))
}

/// Register the functions of this module on `polygram._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pair_graph, m)?)?;
    m.add_function(wrap_pyfunction!(cluster_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(block_grams, m)?)?;
    m.add_function(wrap_pyfunction!(edge_cosines, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_assign, m)?)?;
    m.add_function(wrap_pyfunction!(route_batch, m)?)?;
    Ok(())
}
