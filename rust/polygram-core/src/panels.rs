//! The epoch compressor's decoder geometry (spec 13 §3.2 steps 2–3): the
//! signed-cosine pair graph over an SAE's decoder rows and the greedy seeded
//! selection of overlapping ≤8-feature panels that covers it.
//!
//! Rows are indexed by position `0..n` (the caller's eligible-set order);
//! ties are always broken by the lower position, so the caller gets the
//! upstream "stable sort" order when positions ascend with feature id.

use std::cmp::Ordering;

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use crate::cosine;
use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::{budget, size};

/// A row whose L2 norm is below this is left unscaled (divided by 1).
pub const ZERO_NORM: f64 = 1e-12;
/// Upcoming anchors whose cosines one pass over the rows computes.
const ANCHOR_BLOCK: usize = 32;
/// Rows per parallel work item of the anchor cosines.
const SIM_ROWS: usize = 256;

fn check_finite_rows(field: &str, rows: ArrayView2<'_, f32>) -> Result<()> {
    if let Some(((r, c), v)) = rows.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid(
            field,
            format!("entry [{r}, {c}] is {v}; decoder rows must be finite"),
        ));
    }
    Ok(())
}

/// Unit-normalised copy of `rows` (float32, like upstream); a row with norm
/// below [`ZERO_NORM`] is divided by 1, so an all-zero row stays zero.  The
/// norm and the division are float64, so a row whose norm exceeds
/// `f32::MAX` (entries near it) is scaled, not zeroed.
pub fn unit_rows(rows: ArrayView2<'_, f32>, ctx: &Ctx) -> Result<Array2<f32>> {
    check_finite_rows("rows", rows)?;
    budget::check(
        "rows",
        "a unit-normalised copy of the rows",
        size::bytes_of::<f32>(&[rows.nrows(), rows.ncols()]),
    )?;
    let mut out = rows.as_standard_layout().into_owned(); // row slices below need C order
    let items = out.axis_iter_mut(Axis(0)).collect();
    ctx.each(items, |mut row| {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if norm < ZERO_NORM {
            // left unscaled
        } else if norm <= f64::from(f32::MAX) {
            let norm = norm as f32; // float32 division, like upstream
            row.mapv_inplace(|v| v / norm);
        } else {
            row.mapv_inplace(|v| (f64::from(v) / norm) as f32);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Bytes one edge holds while the graph is built: its `u32` pair in a
/// block's list and in the joined list, then its `int64` row of the result.
const EDGE_BYTES: usize = 8 + 8 + 16;

/// The signed-cosine pair graph of `rows` (normalised here): every `(a, b)`,
/// `a < b`, with `cos >= threshold`, as an `(E, 2)` int64 array in
/// row-major order.  Refused before it outgrows the memory headroom (a
/// threshold of −1 asks for all `n(n−1)/2` pairs).
pub fn cosine_pair_graph(
    rows: ArrayView2<'_, f32>,
    threshold: f64,
    ctx: &Ctx,
) -> Result<Array2<i64>> {
    check_threshold(threshold)?;
    if u32::try_from(rows.nrows()).is_err() {
        return Err(Error::invalid(
            "rows",
            format!("got {} rows; allowed at most {}", rows.nrows(), u32::MAX),
        ));
    }
    let n = rows.nrows();
    let all_pairs = size::count(&[n, n.saturating_sub(1)]).map(|p| p / 2);
    let max_edges = match all_pairs.and_then(|p| p.checked_mul(EDGE_BYTES)) {
        Some(b) if b <= budget::SMALL => usize::MAX, // even all pairs are a small request
        _ => usize::try_from(budget::headroom().bytes / EDGE_BYTES as u64).unwrap_or(usize::MAX),
    };
    pair_graph_within(rows, threshold, max_edges, ctx)
}

/// [`cosine_pair_graph`] holding at most `max_edges` edges.
fn pair_graph_within(
    rows: ArrayView2<'_, f32>,
    threshold: f64,
    max_edges: usize,
    ctx: &Ctx,
) -> Result<Array2<i64>> {
    let n = rows.nrows();
    // At threshold <= −1 every pair of non-zero rows is an edge: refuse up front.
    let all_pairs = (n as u128) * (n.saturating_sub(1) as u128) / 2;
    if threshold <= -1.0 && all_pairs > max_edges as u128 {
        return Err(Error::too_large(
            "threshold",
            format!(
                "a pair graph at threshold {threshold} over {n} rows has up to {all_pairs} \
                 edges; the memory headroom holds {max_edges}; raise the threshold"
            ),
        ));
    }
    let unit = unit_rows(rows, ctx)?;
    // the tiled GEMM pass of `cosine` (spec 18 §2: one pair-pass kernel)
    let g = cosine::pair_pass(&unit, threshold, max_edges, None, ctx).map_err(|e| match e {
        Error::Invalid { field, .. } if field == "max_edges" => Error::too_large(
            "threshold",
            format!(
                "the pair graph at threshold {threshold} has more than {max_edges} edges, \
                 more than the memory headroom holds; raise the threshold"
            ),
        ),
        other => other,
    })?;
    let e = g.edges.len();
    let mut flat = Vec::with_capacity(2 * e);
    for (a, b) in g.edges {
        flat.push(i64::from(a));
        flat.push(i64::from(b));
    }
    Array2::from_shape_vec((e, 2), flat)
        .map_err(|err| Error::invalid("internal", format!("pair graph shape: {err}")))
}

/// `threshold` must be a number (a NaN would silently give no edges).
pub fn check_threshold(threshold: f64) -> Result<()> {
    if threshold.is_nan() {
        return Err(Error::invalid(
            "threshold",
            "got NaN; expected a cosine threshold (a number, normally in [-1, 1])",
        ));
    }
    Ok(())
}

/// Knobs of the greedy panel selection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanelParams {
    /// Features per panel (anchor + `panel_size − 1` neighbours); 0.0.1 uses 8.
    pub panel_size: usize,
    /// A feature joins at most this many panels.
    pub n_visits: usize,
    /// Stop after this many panels.
    pub n_panels_max: usize,
    /// Stop once this fraction of the graph's edges lies inside some panel.
    pub coverage_target: f64,
}

/// One selected panel, in row positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub anchor: usize,
    /// Ascending positions, anchor included.
    pub members: Vec<usize>,
    /// Cosine to the anchor of each non-anchor member, in `members` order.
    pub cosines: Vec<f64>,
}

/// The panels and how much of the graph they cover.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSelection {
    pub panels: Vec<Panel>,
    /// Covered edges / all edges after the last panel (1.0 for an empty graph).
    pub coverage: f64,
    pub n_covered: usize,
    pub n_edges: usize,
    /// The first anchor had no neighbour at all (a one-row eligible set), so
    /// a single-feature panel was emitted and selection stopped; the caller
    /// warns.
    pub single_feature: bool,
}

fn check_params(p: &PanelParams) -> Result<()> {
    if p.panel_size < 1 {
        return Err(Error::invalid("panel_size", "got 0; must be >= 1"));
    }
    if p.n_visits < 1 {
        return Err(Error::invalid(
            "n_visits_per_feature",
            "got 0; must be >= 1",
        ));
    }
    if p.n_panels_max < 1 {
        return Err(Error::invalid("n_panels_max", "got 0; must be >= 1"));
    }
    if !(p.coverage_target > 0.0 && p.coverage_target <= 1.0) {
        return Err(Error::invalid(
            "coverage_target",
            format!("got {}; must satisfy 0 < x <= 1", p.coverage_target),
        ));
    }
    Ok(())
}

/// `Σ x·y` in float64 with eight interleaved accumulators (vectorisable);
/// the summation order depends only on the length, so identical rows give
/// bit-identical results — exact ties stay exact.  No FMA contraction, so
/// the AVX2 build of [`dot64_avx2`] gives the same bits as this one.
#[inline(always)]
fn dot64_slices(xs: &[f32], ys: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let (xc, yc) = (xs.chunks_exact(8), ys.chunks_exact(8));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    for (a, b) in xc.zip(yc) {
        for k in 0..8 {
            acc[k] += f64::from(a[k]) * f64::from(b[k]);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// [`dot64_slices`] compiled for AVX2 (4 float64 lanes instead of SSE2's 2).
///
/// # Safety
/// The CPU must support AVX2; [`pick_dot`] hands this out only after
/// `is_x86_feature_detected!("avx2")`.  The body is safe Rust.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot64_avx2(xs: &[f32], ys: &[f32]) -> f64 {
    dot64_slices(xs, ys)
}

fn dot64_portable(xs: &[f32], ys: &[f32]) -> f64 {
    dot64_slices(xs, ys)
}

type Dot = fn(&[f32], &[f32]) -> f64;

/// The fastest [`dot64_slices`] build this CPU runs (chosen once per call site).
fn pick_dot() -> Dot {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was just detected on this CPU.
            return |x, y| unsafe { dot64_avx2(x, y) };
        }
    }
    dot64_portable
}

/// `out[k, r] = dot(unit[r], unit[anchors[k]])`, parallel over row chunks.
/// `unit` must be in standard (row-major, contiguous) layout.
fn cosines_to(unit: ArrayView2<'_, f32>, anchors: &[usize], ctx: &Ctx) -> Result<Array2<f64>> {
    let n = unit.nrows();
    let dot = pick_dot();
    let row = |r: usize| unit.row(r).to_slice().unwrap_or(&[]);
    let mut out = Array2::<f64>::zeros((anchors.len(), n));
    let tiles = out
        .axis_chunks_iter_mut(Axis(1), SIM_ROWS)
        .enumerate()
        .collect();
    ctx.each(tiles, |(c, mut tile)| {
        let r0 = c * SIM_ROWS;
        for j in 0..tile.ncols() {
            let x = row(r0 + j);
            for (k, &a) in anchors.iter().enumerate() {
                tile[[k, j]] = dot(x, row(a));
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Descending by value, ties by ascending position (a stable descending sort).
fn desc_then_pos(a: (f64, usize), b: (f64, usize)) -> Ordering {
    b.0.partial_cmp(&a.0)
        .unwrap_or(Ordering::Equal)
        .then(a.1.cmp(&b.1))
}

/// Greedy seeded panel selection (spec 13 §3.2 step 3).
///
/// Anchors are taken by `priority` descending (ties: lower position first),
/// skipping any at the visit cap.  An anchor's neighbours are the first
/// `panel_size − 1` rows by descending cosine to it (ties: lower position),
/// skipping the anchor and rows at the visit cap; **no** threshold applies
/// to neighbours — `edges` (pairs of positions, the cosine graph) only
/// define coverage.  Every member's visit count rises by one, and every
/// member pair that is an edge becomes covered.  Selection stops at
/// `n_panels_max` panels or once coverage reaches `coverage_target`.
pub fn select_panels(
    rows: ArrayView2<'_, f32>,
    priority: ArrayView1<'_, f64>,
    edges: &[(usize, usize)],
    params: PanelParams,
    ctx: &Ctx,
) -> Result<PanelSelection> {
    check_params(&params)?;
    let n = rows.nrows();
    if priority.len() != n {
        return Err(Error::invalid(
            "priority",
            format!(
                "has {} entries for {n} rows; expected one per row",
                priority.len()
            ),
        ));
    }
    if let Some((k, v)) = priority.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid(
            "priority",
            format!("entry {k} is {v}; priorities must be finite"),
        ));
    }
    budget::check(
        "rows",
        "the panel selection's cosine and ordering tables",
        size::total(&[
            size::bytes_of::<f64>(&[ANCHOR_BLOCK + 1, n]),
            size::bytes_of::<(f64, usize)>(&[n]),
            size::bytes_of::<usize>(&[3, n]),
            size::bytes_of::<u128>(&[edges.len()]),
        ]),
    )?;
    let unit = unit_rows(rows, ctx)?;
    // edges as sorted unique keys a·n + b (a < b): coverage lookups by binary search
    let mut keys = Vec::with_capacity(edges.len());
    for (k, &(a, b)) in edges.iter().enumerate() {
        if a >= n || b >= n || a == b {
            return Err(Error::invalid(
                "edges",
                format!(
                    "edge {k} is ({a}, {b}); positions must be distinct and < {n} (the row count)"
                ),
            ));
        }
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        keys.push(lo as u128 * n as u128 + hi as u128);
    }
    keys.sort_unstable();
    keys.dedup();
    let n_edges = keys.len();
    let mut covered = vec![false; n_edges];
    let mut n_covered = 0usize;
    let coverage_of = |c: usize| {
        if n_edges == 0 {
            1.0
        } else {
            c as f64 / n_edges as f64
        }
    };

    let mut queue: Vec<usize> = (0..n).collect();
    queue.sort_by(|&a, &b| desc_then_pos((priority[a], a), (priority[b], b)));
    let mut visits = vec![0usize; n];
    let mut panels: Vec<Panel> = Vec::new();
    let mut single_feature = false;
    let want = params.panel_size - 1;

    // Cosines to the anchors are computed ANCHOR_BLOCK upcoming anchors at a
    // time (one pass over the rows serves them all: the pass is memory-bound),
    // skipping queue entries already at the cap (visits only grow).
    let mut block: Vec<usize> = Vec::new();
    let mut block_sims = Array2::<f64>::zeros((0, n));
    for (qi, &anchor) in queue.iter().enumerate() {
        ctx.check()?;
        if visits[anchor] >= params.n_visits {
            continue;
        }
        let slot = match block.iter().position(|&a| a == anchor) {
            Some(k) => k,
            None => {
                block = queue[qi..]
                    .iter()
                    .copied()
                    .filter(|&a| visits[a] < params.n_visits)
                    .take(ANCHOR_BLOCK)
                    .collect();
                block_sims = cosines_to(unit.view(), &block, ctx)?;
                0
            }
        };
        let sims = block_sims.row(slot);
        let mut cand: Vec<(f64, usize)> = (0..n)
            .filter(|&b| b != anchor && visits[b] < params.n_visits)
            .map(|b| (sims[b], b))
            .collect();
        // the first `want` of a stable descending sort, without sorting all
        if cand.len() > want && want > 0 {
            cand.select_nth_unstable_by(want - 1, |&a, &b| desc_then_pos(a, b));
        }
        cand.truncate(want);
        cand.sort_by(|&a, &b| desc_then_pos(a, b));
        if cand.is_empty() {
            if panels.is_empty() {
                visits[anchor] += 1;
                panels.push(Panel {
                    anchor,
                    members: vec![anchor],
                    cosines: Vec::new(),
                });
                single_feature = true;
                break;
            }
            continue;
        }
        let mut members: Vec<usize> = cand.iter().map(|&(_, b)| b).collect();
        members.push(anchor);
        members.sort_unstable();
        for &m in &members {
            visits[m] += 1;
        }
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let key = a as u128 * n as u128 + b as u128;
                if let Ok(k) = keys.binary_search(&key) {
                    if !covered[k] {
                        covered[k] = true;
                        n_covered += 1;
                    }
                }
            }
        }
        let cosines = members
            .iter()
            .filter(|&&m| m != anchor)
            .map(|&m| sims[m])
            .collect();
        panels.push(Panel {
            anchor,
            members,
            cosines,
        });
        if panels.len() >= params.n_panels_max || coverage_of(n_covered) >= params.coverage_target {
            break;
        }
    }
    Ok(PanelSelection {
        panels,
        coverage: coverage_of(n_covered),
        n_covered,
        n_edges,
        single_feature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s, Array1};

    fn go() -> Ctx {
        Ctx::serial()
    }

    /// The graph as a list of pairs.
    fn graph(r: ArrayView2<'_, f32>, threshold: f64) -> Result<Vec<(usize, usize)>> {
        let e = cosine_pair_graph(r, threshold, &go())?;
        Ok(e.rows()
            .into_iter()
            .map(|p| (p[0] as usize, p[1] as usize))
            .collect())
    }

    fn params(panel_size: usize, n_visits: usize, n_panels_max: usize, target: f64) -> PanelParams {
        PanelParams {
            panel_size,
            n_visits,
            n_panels_max,
            coverage_target: target,
        }
    }

    /// Deterministic pseudo-random rows (xorshift), no extra dependency.
    fn rows(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut s = seed.max(1);
        Array2::from_shape_fn((n, d), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
    }

    fn brute_graph(r: &Array2<f32>, thr: f64) -> Vec<(usize, usize)> {
        let n = r.nrows();
        let unit: Vec<Vec<f64>> = r
            .outer_iter()
            .map(|row| {
                let nrm = row
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let nrm = if nrm < ZERO_NORM { 1.0 } else { nrm };
                row.iter().map(|&v| f64::from(v) / nrm).collect()
            })
            .collect();
        let mut out = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                let c: f64 = unit[a].iter().zip(&unit[b]).map(|(x, y)| x * y).sum();
                if c >= thr {
                    out.push((a, b));
                }
            }
        }
        out
    }

    #[test]
    fn graph_matches_brute_force_across_tiles() {
        // more rows than one row block and one column tile
        let r = rows(2300, 6, 7);
        let got = graph(r.view(), 0.8).unwrap();
        let want = brute_graph(&r, 0.8);
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }

    #[test]
    fn graph_signed_cosine_and_zero_rows() {
        let r = array![
            [1.0f32, 0.0],
            [-1.0, 0.0],
            [0.0, 0.0],
            [2.0, 0.0],
            [0.0, 0.0]
        ];
        assert_eq!(graph(r.view(), 0.5).unwrap(), vec![(0, 3)]);
        // a zero row has cosine 0 with everything
        assert_eq!(
            graph(r.view(), 0.0).unwrap(),
            vec![
                (0, 2),
                (0, 3),
                (0, 4),
                (1, 2),
                (1, 4),
                (2, 3),
                (2, 4),
                (3, 4)
            ]
        );
        assert!(graph(r.view(), f64::NAN).is_err());
        let bad = array![[f32::NAN, 0.0]];
        assert!(graph(bad.view(), 0.1).is_err());
        let empty = Array2::<f32>::zeros((0, 4));
        assert!(graph(empty.view(), 0.1).unwrap().is_empty());
    }

    #[test]
    fn selection_first_anchor_is_top_priority_and_panels_are_full() {
        let r = rows(40, 5, 3);
        let prio = Array1::from_shape_fn(40, |k| (k % 7) as f64);
        let edges = graph(r.view(), 0.3).unwrap();
        let sel = select_panels(
            r.view(),
            prio.view(),
            &edges,
            params(8, 3, 1000, 0.95),
            &go(),
        )
        .unwrap();
        // priority 6 first at the lowest position holding it
        assert_eq!(sel.panels[0].anchor, 6);
        for p in &sel.panels {
            assert!(p.members.windows(2).all(|w| w[0] < w[1]));
            assert!(p.members.contains(&p.anchor));
            assert_eq!(p.cosines.len(), p.members.len() - 1);
        }
        assert_eq!(sel.panels[0].members.len(), 8);
        let mut visits = [0usize; 40];
        for p in &sel.panels {
            for &m in &p.members {
                visits[m] += 1;
            }
        }
        assert!(visits.iter().all(|&v| v <= 3));
        assert!(!sel.single_feature);
    }

    #[test]
    fn empty_graph_gives_one_panel_and_single_row_warns() {
        let r = rows(20, 4, 11);
        let prio = Array1::<f64>::ones(20);
        let sel =
            select_panels(r.view(), prio.view(), &[], params(8, 3, 1000, 0.95), &go()).unwrap();
        assert_eq!(sel.panels.len(), 1);
        assert_eq!(sel.coverage, 1.0);
        // ties: the anchor is position 0
        assert_eq!(sel.panels[0].anchor, 0);

        let one = rows(1, 4, 5);
        let sel = select_panels(
            one.view(),
            array![0.5].view(),
            &[],
            params(8, 3, 10, 0.5),
            &go(),
        )
        .unwrap();
        assert!(sel.single_feature);
        assert_eq!(sel.panels.len(), 1);
        assert_eq!(sel.panels[0].members, vec![0]);

        let none = Array2::<f32>::zeros((0, 4));
        let sel = select_panels(
            none.view(),
            Array1::<f64>::zeros(0).view(),
            &[],
            params(8, 3, 10, 0.5),
            &go(),
        )
        .unwrap();
        assert!(sel.panels.is_empty());
        assert_eq!(sel.coverage, 1.0);
    }

    #[test]
    fn neighbours_ignore_the_threshold_and_ties_go_to_lower_positions() {
        // anchor 0; rows 1..=3 identical (tied), row 4 anti-parallel
        let r = array![
            [1.0f32, 0.0],
            [0.0, 1.0],
            [0.0, 1.0],
            [0.0, 1.0],
            [-1.0, 0.0]
        ];
        let prio = array![9.0, 1.0, 1.0, 1.0, 1.0];
        let sel = select_panels(r.view(), prio.view(), &[], params(3, 1, 1, 1.0), &go()).unwrap();
        assert_eq!(sel.panels[0].members, vec![0, 1, 2]);
        assert_eq!(sel.panels[0].cosines, vec![0.0, 0.0]);
    }

    #[test]
    fn layout_and_dot_builds_do_not_change_results() {
        let r = rows(300, 13, 21);
        let fortran = r.t().as_standard_layout().into_owned(); // (13, 300) C order
        let view = fortran.t(); // (300, 13) with Fortran strides
        let prio = Array1::from_shape_fn(300, |k| (k % 5) as f64);
        let edges = graph(r.view(), 0.2).unwrap();
        assert_eq!(graph(view, 0.2).unwrap(), edges);
        let p = params(8, 2, 50, 0.9);
        assert_eq!(
            select_panels(view, prio.view(), &edges, p, &go()).unwrap(),
            select_panels(r.view(), prio.view(), &edges, p, &go()).unwrap()
        );
        let u = unit_rows(r.view(), &go()).unwrap();
        let (a, b) = (u.row(3).to_vec(), u.row(7).to_vec());
        assert_eq!(
            pick_dot()(&a, &b).to_bits(),
            dot64_portable(&a, &b).to_bits()
        );
    }

    #[test]
    fn avx2_dot_is_bit_identical_to_the_portable_one() {
        // every remainder length, and GPT-2 / Gemma widths
        for d in (0..=33).chain([768, 2304]) {
            let r = rows(6, d.max(1), d as u64 + 1);
            let r = r.slice(s![.., ..d]);
            let dot = pick_dot();
            for a in 0..6 {
                for b in 0..6 {
                    let (x, y) = (r.row(a).to_vec(), r.row(b).to_vec());
                    let want = dot64_portable(&x, &y);
                    assert_eq!(dot(&x, &y).to_bits(), want.to_bits(), "d = {d}");
                    let exact: f64 = x
                        .iter()
                        .zip(&y)
                        .map(|(&p, &q)| f64::from(p) * f64::from(q))
                        .sum();
                    assert!(
                        (want - exact).abs() <= 1e-12 * (1.0 + exact.abs()),
                        "d = {d}"
                    );
                }
            }
        }
    }

    #[test]
    fn rows_beyond_f32_max_norm_are_scaled_not_zeroed() {
        let big = array![[f32::MAX, f32::MAX], [f32::MAX, 0.0], [1.0, 1.0]];
        let u = unit_rows(big.view(), &go()).unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (u[[0, 0]] - h).abs() < 1e-6 && (u[[0, 1]] - h).abs() < 1e-6,
            "{u}"
        );
        assert_eq!(u[[1, 0]], 1.0);
        assert_eq!(graph(big.view(), 0.99).unwrap(), vec![(0, 2)]);
    }

    #[test]
    fn a_graph_of_all_pairs_beyond_the_headroom_is_refused() {
        // 2^22 rows at threshold −1 ask for 2^43 pairs (256 TiB of edges).
        let n = 1 << 22;
        let r = Array2::<f32>::ones((n, 1));
        let e = cosine_pair_graph(r.view(), -1.0, &go()).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        // any threshold: refused once the edges found exceed the limit
        let r = rows(300, 4, 9);
        let all = graph(r.view(), 0.0).unwrap().len();
        assert!(all > 100);
        let e = pair_graph_within(r.view(), 0.0, 100, &go()).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        assert_eq!(
            pair_graph_within(r.view(), 0.0, all, &go())
                .unwrap()
                .nrows(),
            all
        );
        let stop = Ctx::serial();
        stop.cancel();
        assert_eq!(
            cosine_pair_graph(r.view(), -1.0, &stop).unwrap_err(),
            Error::Interrupted
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let r = rows(4, 3, 1);
        let p = Array1::<f64>::ones(4);
        assert!(
            select_panels(r.view(), p.view(), &[(0, 4)], params(8, 3, 10, 0.5), &go()).is_err()
        );
        assert!(
            select_panels(r.view(), p.view(), &[(1, 1)], params(8, 3, 10, 0.5), &go()).is_err()
        );
        assert!(select_panels(r.view(), p.view(), &[], params(8, 0, 10, 0.5), &go()).is_err());
        assert!(select_panels(r.view(), p.view(), &[], params(8, 3, 10, 0.0), &go()).is_err());
        assert!(select_panels(r.view(), p.view(), &[], params(8, 3, 10, f64::NAN), &go()).is_err());
        assert!(select_panels(
            r.view(),
            Array1::ones(3).view(),
            &[],
            params(8, 3, 1, 1.0),
            &go()
        )
        .is_err());
        let nan = array![f64::NAN, 1.0, 1.0, 1.0];
        assert!(select_panels(r.view(), nan.view(), &[], params(8, 3, 1, 1.0), &go()).is_err());
    }
}
