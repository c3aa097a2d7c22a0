//! The decoder-cosine pair pass (spec 17 §17.3.1, §17.13): one tiled float32
//! GEMM over unit rows that yields every pair `i < j` whose cosine reaches a
//! threshold, the largest off-diagonal cosine and, optionally, the streamed
//! statistics of the tier-preservation correlation — never an N×N array.
//!
//! Work is split into row blocks of [`ROW_BLOCK`] left rows, each multiplied
//! against the later rows in column tiles of [`COL_TILE`]; a pair's cosine is
//! always computed in the same tile, so results do not depend on the number
//! of threads.  Edges come out row-major (blocks concatenated in order) and
//! statistics are merged in row-block order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::ctx::Ctx;
use crate::encoding::Encoding;
use crate::{Error, Result, C64};

/// Left rows per parallel work item.
pub const ROW_BLOCK: usize = 64;
/// Later rows per GEMM tile: a work item holds at most `ROW_BLOCK × COL_TILE` cosines.
pub const COL_TILE: usize = 2048;
/// A row whose float64 norm is below this is divided by 1 (a zero row stays zero).
pub const ZERO_NORM: f64 = 1e-12;

/// A real input element: float32 or float64 rows.
pub trait Real: Copy + Send + Sync + 'static {
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Every entry of `rows` must be finite.
pub fn check_finite<T: Real>(field: &str, rows: ArrayView2<'_, T>) -> Result<()> {
    if let Some(((r, c), v)) = rows.indexed_iter().find(|(_, v)| !v.to_f64().is_finite()) {
        return Err(Error::invalid(
            field,
            format!("entry [{r}, {c}] is {}; values must be finite", v.to_f64()),
        ));
    }
    Ok(())
}

/// Row indices travel as `u32` (8 bytes per edge): refuse larger inputs.
pub fn check_row_count(field: &str, n: usize) -> Result<()> {
    if u32::try_from(n).is_err() {
        return Err(Error::invalid(
            field,
            format!("{n} rows; at most {} are supported", u32::MAX),
        ));
    }
    Ok(())
}

/// `Σ x·y` in float64 with eight interleaved accumulators; the summation
/// order depends only on the length.
#[inline]
pub fn dot64<T: Real>(xs: &[T], ys: &[T]) -> f64 {
    let mut acc = [0f64; 8];
    let (xc, yc) = (xs.chunks_exact(8), ys.chunks_exact(8));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(&a, &b)| a.to_f64() * b.to_f64())
        .sum();
    for (a, b) in xc.zip(yc) {
        for k in 0..8 {
            acc[k] += a[k].to_f64() * b[k].to_f64();
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The divisor of every row: its float64 norm, or 1 when that is below [`ZERO_NORM`].
pub fn row_divisors<T: Real>(rows: ArrayView2<'_, T>) -> Vec<f64> {
    rows.axis_iter(Axis(0))
        .into_par_iter()
        .map(|row| {
            let norm = row
                .iter()
                .map(|&v| v.to_f64() * v.to_f64())
                .sum::<f64>()
                .sqrt();
            if norm < ZERO_NORM {
                1.0
            } else {
                norm
            }
        })
        .collect()
}

/// Float32 unit rows in standard layout: each value is divided by its row's
/// float64 divisor and rounded once.
pub fn unit_rows32<T: Real>(rows: ArrayView2<'_, T>) -> Result<Array2<f32>> {
    check_finite("rows", rows)?;
    check_row_count("rows", rows.nrows())?;
    let div = row_divisors(rows);
    let mut out = Array2::<f32>::zeros(rows.raw_dim());
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(rows.axis_iter(Axis(0)).into_par_iter())
        .zip(div.par_iter())
        .for_each(|((mut o, r), &n)| {
            for (o, &v) in o.iter_mut().zip(r.iter()) {
                *o = (v.to_f64() / n) as f32;
            }
        });
    Ok(out)
}

/// GEMM element types.
trait Scalar: Copy + 'static {
    const ZERO: Self;
    const ONE: Self;
}

impl Scalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl Scalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// `c[r·ldc + j] = Σ_k a[r·kk + k] · b[j·kk + k]` for row-major `a` (m×kk)
/// and `b` (n×kk): the tile `A·Bᵀ`, single-threaded (the caller parallelises).
fn gemm_abt<T: Scalar>(a: &[T], b: &[T], m: usize, n: usize, kk: usize, c: &mut [T], ldc: usize) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        a.len() >= m * kk && b.len() >= n * kk,
        "gemm operands too short"
    );
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "gemm output too short"
    );
    if kk == 0 {
        for r in 0..m {
            c[r * ldc..r * ldc + n].fill(T::ZERO);
        }
        return;
    }
    // SAFETY: the asserts above bound every index gemm touches: it reads
    // a[r·kk + k] (r < m, k < kk), b[j·kk + k] (j < n) and writes
    // c[r·ldc + j]; strides fit in isize because the slices exist.
    unsafe {
        gemm::gemm(
            m,
            n,
            kk,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            false,
            a.as_ptr(),
            1,
            kk as isize,
            b.as_ptr(),
            kk as isize,
            1,
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The smallest float32 `x` with `f64(x) >= t`, so the tile scan can compare
/// in float32 and still test the float64 threshold exactly.
fn f32_at_least(t: f64) -> f32 {
    let x = t as f32;
    if f64::from(x) >= t {
        return x;
    }
    if x == f32::NEG_INFINITY {
        return f32::MIN;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let b = x.to_bits();
    f32::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

/// Running Pearson statistics of pairs `(a, b)`: count, means, centred second
/// moments and co-moment; merged with the pairwise (Chan) update.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PearsonAcc {
    pub n: u64,
    pub mean_a: f64,
    pub mean_b: f64,
    pub m2_a: f64,
    pub m2_b: f64,
    pub c_ab: f64,
}

impl PearsonAcc {
    /// Exact two-pass statistics of one segment of values.
    pub fn of_segment(a: impl Fn(usize) -> f64, b: impl Fn(usize) -> f64, len: usize) -> Self {
        if len == 0 {
            return Self::default();
        }
        let (mut sa, mut sb) = (0.0, 0.0);
        for k in 0..len {
            sa += a(k);
            sb += b(k);
        }
        let nf = len as f64;
        let (ma, mb) = (sa / nf, sb / nf);
        let (mut m2a, mut m2b, mut cab) = (0.0, 0.0, 0.0);
        for k in 0..len {
            let (da, db) = (a(k) - ma, b(k) - mb);
            m2a += da * da;
            m2b += db * db;
            cab += da * db;
        }
        PearsonAcc {
            n: len as u64,
            mean_a: ma,
            mean_b: mb,
            m2_a: m2a,
            m2_b: m2b,
            c_ab: cab,
        }
    }

    /// Fold `o` (the later pairs) into `self`.
    pub fn merge(&mut self, o: &PearsonAcc) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let (n1, n2) = (self.n as f64, o.n as f64);
        let n = n1 + n2;
        let (da, db) = (o.mean_a - self.mean_a, o.mean_b - self.mean_b);
        let w = n1 * n2 / n;
        self.mean_a += da * n2 / n;
        self.mean_b += db * n2 / n;
        self.m2_a += o.m2_a + da * da * w;
        self.m2_b += o.m2_b + db * db * w;
        self.c_ab += o.c_ab + da * db * w;
        self.n += o.n;
    }

    /// Pearson correlation: `None` without pairs, NaN when either population
    /// standard deviation is below 1e-12.
    pub fn pearson(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let nf = self.n as f64;
        if (self.m2_a / nf).sqrt() < 1e-12 || (self.m2_b / nf).sqrt() < 1e-12 {
            return Some(f64::NAN);
        }
        Some(self.c_ab / (self.m2_a * self.m2_b).sqrt())
    }
}

/// Feature states as one real matrix `S = [Re ψ, Im ψ]` (N × 2D), so that
/// `⟨ψ_i|ψ_j⟩ = S_i·S_j + i·L_i·S_j` with `L = [−Im ψ, Re ψ]`: two float64
/// GEMM tiles per column tile, `L` built only for the 64 left rows.
pub struct StateRows {
    s: Array2<f64>,
}

impl StateRows {
    /// From complex states (one row per feature).
    pub fn new(states: ArrayView2<'_, C64>) -> Result<Self> {
        let (n, dim) = states.dim();
        if let Some(((r, c), v)) = states
            .indexed_iter()
            .find(|(_, v)| !(v.re.is_finite() && v.im.is_finite()))
        {
            return Err(Error::invalid(
                "states",
                format!("entry [{r}, {c}] is {v}; states must be finite"),
            ));
        }
        let mut out = Self::zeros(n, dim)?;
        for (src, dst) in states.rows().into_iter().zip(out.s.rows_mut()) {
            Self::fill(src.iter().copied(), dim, dst);
        }
        Ok(out)
    }

    /// The states of every knob row of `table` under `enc`, without an
    /// intermediate complex matrix.
    pub fn from_table(enc: &Encoding, table: ArrayView2<'_, f64>) -> Result<Self> {
        if table.ncols() != enc.width() {
            return Err(Error::invalid(
                "params",
                format!(
                    "expected {} knobs per feature, got {}",
                    enc.width(),
                    table.ncols()
                ),
            ));
        }
        let flat = table.as_standard_layout();
        let flat = flat
            .as_slice()
            .ok_or_else(|| Error::invalid("params", "knob table must be contiguous"))?;
        enc.check_table(flat, table.nrows())?;
        let (n, w, dim) = (table.nrows(), enc.width(), enc.dim());
        let mut out = Self::zeros(n, dim)?;
        out.s
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .try_for_each_init(
                || (vec![C64::new(0.0, 0.0); dim], Ctx::serial()),
                |(buf, one), (i, dst)| {
                    enc.state_into(&flat[i * w..(i + 1) * w], buf, one)?;
                    Self::fill(buf.iter().copied(), dim, dst);
                    Ok::<(), Error>(())
                },
            )?;
        Ok(out)
    }

    fn zeros(n: usize, dim: usize) -> Result<Self> {
        let w = dim
            .checked_mul(2)
            .ok_or_else(|| Error::invalid("states", "state dimension overflows"))?;
        n.checked_mul(w)
            .ok_or_else(|| Error::invalid("states", "state matrix size overflows"))?;
        Ok(StateRows {
            s: Array2::<f64>::zeros((n, w)),
        })
    }

    fn fill(src: impl Iterator<Item = C64>, dim: usize, mut dst: ndarray::ArrayViewMut1<'_, f64>) {
        for (k, v) in src.enumerate() {
            dst[k] = v.re;
            dst[dim + k] = v.im;
        }
    }

    pub fn n_rows(&self) -> usize {
        self.s.nrows()
    }

    /// `[−Im ψ, Re ψ]` of rows `a0..a1`, row-major.
    fn rotated(&self, a0: usize, a1: usize) -> Vec<f64> {
        let w = self.s.ncols();
        let dim = w / 2;
        let mut out = vec![0f64; (a1 - a0) * w];
        for (r, row) in self
            .s
            .slice(ndarray::s![a0..a1, ..])
            .rows()
            .into_iter()
            .enumerate()
        {
            for k in 0..dim {
                out[r * w + k] = -row[dim + k];
                out[r * w + dim + k] = row[k];
            }
        }
        out
    }
}

/// A pair graph, or how far its search got before passing the edge budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edges {
    /// Every qualifying pair `(i, j)`, `i < j`, row-major.
    Complete(Vec<(u32, u32)>),
    /// More pairs than the budget allows: the count reached when the search stopped.
    OverBudget { reached: usize },
}

impl Edges {
    /// The pairs, or `None` over budget.
    pub fn complete(self) -> Option<Vec<(u32, u32)>> {
        match self {
            Edges::Complete(e) => Some(e),
            Edges::OverBudget { .. } => None,
        }
    }
}

/// What one row block contributed.
struct BlockOut {
    edges: Vec<(u32, u32)>,
    max: f32,
    stats: PearsonAcc,
}

/// The pair pass, run in steps of row blocks (the caller polls Ctrl-C between
/// steps).  Feed it with [`PairPass::run`] until it returns `true`, then read
/// the results.
pub struct PairPass<'a> {
    unit: &'a [f32],
    n: usize,
    d: usize,
    states: Option<&'a StateRows>,
    threshold: f64,
    t32: f32,
    budget: usize,
    next_block: usize,
    edges: Vec<(u32, u32)>,
    max_c32: f32,
    stats: PearsonAcc,
    exceeded: Option<usize>,
}

impl<'a> PairPass<'a> {
    /// `unit`: float32 unit rows in standard layout ([`unit_rows32`]);
    /// `budget`: the most pairs allowed; `states`: one row per unit row, for
    /// the tier statistics `a = c32²`, `b = |⟨ψ_i|ψ_j⟩|²`.
    pub fn new(
        unit: &'a Array2<f32>,
        threshold: f64,
        budget: usize,
        states: Option<&'a StateRows>,
    ) -> Result<Self> {
        if threshold.is_nan() {
            return Err(Error::invalid(
                "threshold",
                "got NaN; expected a cosine threshold (a number)",
            ));
        }
        let (n, d) = unit.dim();
        check_row_count("rows", n)?;
        if let Some(s) = states {
            if s.n_rows() != n {
                return Err(Error::invalid(
                    "states",
                    format!(
                        "{} state rows for {n} decoder rows; expected one each",
                        s.n_rows()
                    ),
                ));
            }
        }
        let unit = unit
            .as_slice()
            .ok_or_else(|| Error::invalid("rows", "unit rows must be in standard layout"))?;
        Ok(PairPass {
            unit,
            n,
            d,
            states,
            threshold,
            t32: f32_at_least(threshold),
            budget,
            next_block: 0,
            edges: Vec::new(),
            max_c32: f32::NEG_INFINITY,
            stats: PearsonAcc::default(),
            exceeded: None,
        })
    }

    /// Number of row blocks in the whole pass.
    pub fn n_blocks(&self) -> usize {
        self.n.div_ceil(ROW_BLOCK)
    }

    /// Run up to `max_blocks` further row blocks (in parallel unless `ctx` is
    /// serial; its stop flag is polled before each block); `true` once the
    /// pass is complete or the budget was exceeded.
    pub fn run(&mut self, max_blocks: usize, ctx: &Ctx) -> Result<bool> {
        if self.is_done() {
            return Ok(true);
        }
        let end = self
            .next_block
            .saturating_add(max_blocks.max(1))
            .min(self.n_blocks());
        let found = AtomicUsize::new(self.edges.len());
        let stop = AtomicBool::new(false);
        let blocks: Vec<usize> = (self.next_block..end).collect();
        let outs = ctx.map(blocks, || (), |_, b| Ok(self.block(b, &found, &stop)))?;
        self.next_block = end;
        for o in outs {
            self.edges.extend_from_slice(&o.edges);
            self.max_c32 = self.max_c32.max(o.max);
            self.stats.merge(&o.stats);
        }
        if stop.load(Ordering::Relaxed) {
            self.exceeded = Some(found.load(Ordering::Relaxed));
            self.edges = Vec::new();
        }
        Ok(self.is_done())
    }

    /// Run the whole (remaining) pass, polling `ctx` between steps.
    pub fn run_all(&mut self, ctx: &Ctx) -> Result<()> {
        let step = 8 * ctx.threads().max(1);
        while !self.run(step, ctx)? {
            ctx.check()?;
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.exceeded.is_some() || self.next_block >= self.n_blocks()
    }

    fn block(&self, b: usize, found: &AtomicUsize, stop: &AtomicBool) -> BlockOut {
        let (n, d) = (self.n, self.d);
        let a0 = b * ROW_BLOCK;
        let a1 = (a0 + ROW_BLOCK).min(n);
        let m = a1 - a0;
        let mut per_row: Vec<Vec<(u32, u32)>> = vec![Vec::new(); m];
        let mut max = f32::NEG_INFINITY;
        let mut stats = PearsonAcc::default();
        let width = COL_TILE.min(n);
        let mut tile = vec![0f32; m * width];
        let (mut re, mut im, rot) = match self.states {
            Some(st) => (
                vec![0f64; m * width],
                vec![0f64; m * width],
                st.rotated(a0, a1),
            ),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let left = &self.unit[a0 * d..a1 * d];
        // columns up to a0 hold only j <= i: start at the first j > a0
        let mut c0 = a0 + 1;
        while c0 < n {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let c1 = (c0 + COL_TILE).min(n);
            let w = c1 - c0;
            gemm_abt(left, &self.unit[c0 * d..c1 * d], m, w, d, &mut tile, w);
            if let Some(st) = self.states {
                let k = st.s.ncols();
                let s = st.s.as_slice().expect("fresh arrays are contiguous");
                gemm_abt(&s[a0 * k..a1 * k], &s[c0 * k..c1 * k], m, w, k, &mut re, w);
                gemm_abt(&rot, &s[c0 * k..c1 * k], m, w, k, &mut im, w);
            }
            let mut added = 0usize;
            for (r, out) in per_row.iter_mut().enumerate() {
                let i = a0 + r;
                let first = (i + 1).max(c0) - c0;
                if first >= w {
                    continue;
                }
                let row = &tile[r * w + first..r * w + w];
                let before = out.len();
                for (q, &c) in row.iter().enumerate() {
                    max = max.max(c);
                    if c >= self.t32 {
                        // i < j < n <= u32::MAX (checked in `new`)
                        out.push((i as u32, (c0 + first + q) as u32));
                    }
                }
                added += out.len() - before;
                if self.states.is_some() {
                    let (rr, ii) = (&re[r * w + first..r * w + w], &im[r * w + first..r * w + w]);
                    let seg = PearsonAcc::of_segment(
                        |q| {
                            let c = f64::from(row[q]);
                            c * c
                        },
                        |q| rr[q] * rr[q] + ii[q] * ii[q],
                        row.len(),
                    );
                    stats.merge(&seg);
                }
            }
            if added > 0 && found.fetch_add(added, Ordering::Relaxed) + added > self.budget {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            c0 = c1;
        }
        BlockOut {
            edges: per_row.concat(),
            max,
            stats,
        }
    }

    /// `Some(count reached)` when the budget was exceeded (the pass stopped early).
    pub fn exceeded(&self) -> Option<usize> {
        self.exceeded
    }

    /// The threshold the pass tests (float64, against float32 cosines).
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Every pair `(i, j)`, `i < j`, with `c32 >= threshold`, row-major.
    pub fn into_edges(self) -> Vec<(u32, u32)> {
        self.edges
    }

    /// The largest `c32(i, j)` over `i < j` (−∞ for fewer than two rows).
    pub fn max_c32(&self) -> f32 {
        self.max_c32
    }

    /// The merged tier statistics (empty without states).
    pub fn stats(&self) -> PearsonAcc {
        self.stats
    }
}

/// The result of a whole pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PairGraph {
    /// Every pair `(i, j)`, `i < j`, with `c32 >= threshold`, row-major.
    pub edges: Vec<(u32, u32)>,
    /// The largest `c32(i, j)` over `i < j` (−∞ for fewer than two rows).
    pub max_c32: f32,
    /// The merged tier statistics (empty without states).
    pub stats: PearsonAcc,
}

/// Whole pass in one go (no Ctrl-C polling); `Error::Invalid` naming
/// `max_edges` when more than `budget` pairs qualify.
pub fn pair_pass(
    unit: &Array2<f32>,
    threshold: f64,
    budget: usize,
    states: Option<&StateRows>,
    ctx: &Ctx,
) -> Result<PairGraph> {
    let mut pass = PairPass::new(unit, threshold, budget, states)?;
    pass.run_all(ctx)?;
    if let Some(count) = pass.exceeded() {
        return Err(Error::invalid(
            "max_edges",
            format!("{count} pairs reached at threshold {threshold}, over the budget of {budget}"),
        ));
    }
    let (max_c32, stats) = (pass.max_c32(), pass.stats());
    Ok(PairGraph {
        edges: pass.into_edges(),
        max_c32,
        stats,
    })
}

/// Float64 cosines `c64(i, j)` of `pairs`: the dot product of the rows as
/// given, divided by both float64 divisors ([`row_divisors`]).
pub fn edge_cosines64<T: Real>(
    rows: ArrayView2<'_, T>,
    divisors: &[f64],
    pairs: &[(u32, u32)],
) -> Result<Vec<f64>> {
    let n = rows.nrows();
    if divisors.len() != n {
        return Err(Error::invalid(
            "divisors",
            format!("{} divisors for {n} rows", divisors.len()),
        ));
    }
    if let Some((k, &(i, j))) = pairs
        .iter()
        .enumerate()
        .find(|(_, &(i, j))| i as usize >= n || j as usize >= n)
    {
        return Err(Error::invalid(
            "pairs",
            format!("pair {k} is ({i}, {j}); indices must be < {n} (the row count)"),
        ));
    }
    let std = rows.as_standard_layout();
    let flat = std
        .as_slice()
        .ok_or_else(|| Error::invalid("rows", "rows must be contiguous"))?;
    let d = rows.ncols();
    let row = |i: u32| &flat[i as usize * d..(i as usize + 1) * d];
    Ok(pairs
        .par_iter()
        .with_min_len(1024)
        .map(|&(i, j)| dot64(row(i), row(j)) / divisors[i as usize] / divisors[j as usize])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Deterministic pseudo-random rows (xorshift).
    pub(crate) fn rows(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut s = seed.max(1);
        Array2::from_shape_fn((n, d), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
    }

    fn brute(unit: &Array2<f32>, t: f64) -> (Vec<(u32, u32)>, f32) {
        let n = unit.nrows();
        let mut out = Vec::new();
        let mut max = f32::NEG_INFINITY;
        for i in 0..n {
            for j in i + 1..n {
                let c: f64 = unit
                    .row(i)
                    .iter()
                    .zip(unit.row(j).iter())
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum();
                max = max.max(c as f32);
                if c >= t {
                    out.push((i as u32, j as u32));
                }
            }
        }
        (out, max)
    }

    #[test]
    fn pass_matches_brute_force_across_tiles_and_steps() {
        // more rows than one row block and one column tile
        let r = rows(2300, 7, 5);
        let unit = unit_rows32(r.view()).unwrap();
        let (want, max) = brute(&unit, 0.8);
        assert!(!want.is_empty());
        let g = pair_pass(&unit, 0.8, usize::MAX, None, &Ctx::serial()).unwrap();
        let (got, gmax) = (g.edges, g.max_c32);
        // float32 GEMM vs a float64 dot: equal away from the threshold
        assert_eq!(got, want);
        assert!((gmax - max).abs() < 1e-5);
        // stepping one row block at a time changes nothing
        let mut p = PairPass::new(&unit, 0.8, usize::MAX, None).unwrap();
        while !p.run(1, &Ctx::serial()).unwrap() {}
        assert_eq!(p.max_c32().to_bits(), gmax.to_bits());
        assert_eq!(p.into_edges(), got);
    }

    #[test]
    fn budget_stops_the_pass() {
        let r = rows(300, 3, 9);
        let unit = unit_rows32(r.view()).unwrap();
        let e = pair_pass(&unit, 0.5, usize::MAX, None, &Ctx::serial())
            .unwrap()
            .edges
            .len();
        assert!(pair_pass(&unit, 0.5, e, None, &Ctx::serial()).is_ok());
        let err = pair_pass(&unit, 0.5, e - 1, None, &Ctx::serial()).unwrap_err();
        assert!(err.to_string().starts_with("max_edges:"), "{err}");
    }

    #[test]
    fn zero_rows_threshold_edges_and_bad_input() {
        let r = array![[1.0f32, 0.0], [-1.0, 0.0], [0.0, 0.0], [2.0, 0.0]];
        let unit = unit_rows32(r.view()).unwrap();
        let g = pair_pass(&unit, 0.5, usize::MAX, None, &Ctx::serial()).unwrap();
        assert_eq!(g.edges, vec![(0, 3)]);
        assert_eq!(g.max_c32, 1.0);
        let g = pair_pass(&unit, 0.0, usize::MAX, None, &Ctx::serial()).unwrap();
        assert_eq!(g.edges, vec![(0, 2), (0, 3), (1, 2), (2, 3)]);
        assert!(pair_pass(&unit, f64::NAN, 10, None, &Ctx::serial()).is_err());
        assert!(unit_rows32(array![[f32::NAN, 1.0]].view()).is_err());
        let one = unit_rows32(array![[1.0f64, 2.0]].view()).unwrap();
        let g = pair_pass(&one, 0.1, 10, None, &Ctx::serial()).unwrap();
        assert!(
            g.edges.is_empty() && g.max_c32 == f32::NEG_INFINITY && g.stats.pearson().is_none()
        );
    }

    #[test]
    fn f32_threshold_is_exact() {
        for t in [0.3, 0.5, 1e-40, -0.7, 1.0, 0.1 + 1e-12, f64::MAX, -f64::MAX] {
            let x = f32_at_least(t);
            assert!(f64::from(x) >= t, "{t}");
            // the float32 just below x is below t
            let below = if x > 0.0 {
                f32::from_bits(x.to_bits() - 1)
            } else if x == 0.0 {
                -f32::from_bits(1)
            } else {
                f32::from_bits(x.to_bits() + 1)
            };
            assert!(f64::from(below) < t || x == f32::MIN, "{t}");
        }
    }

    #[test]
    fn streamed_pearson_matches_two_pass() {
        let r = rows(150, 5, 3);
        let unit = unit_rows32(r.view()).unwrap();
        let st = Array2::from_shape_fn((150, 4), |(i, k)| {
            C64::new(
                ((i * 7 + k) % 11) as f64 / 11.0,
                ((i + 3 * k) % 5) as f64 / 7.0,
            )
        });
        let states = StateRows::new(st.view()).unwrap();
        let acc = pair_pass(&unit, 2.0, usize::MAX, Some(&states), &Ctx::serial())
            .unwrap()
            .stats;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..150 {
            for j in i + 1..150 {
                let c: f64 = unit
                    .row(i)
                    .iter()
                    .zip(unit.row(j).iter())
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum();
                a.push(c * c);
                let g: C64 = st
                    .row(i)
                    .iter()
                    .zip(st.row(j).iter())
                    .map(|(x, y)| x.conj() * y)
                    .sum();
                b.push(g.norm_sqr());
            }
        }
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        let want = cov / (va * vb).sqrt();
        assert_eq!(acc.n, a.len() as u64);
        // states built from a knob table agree with the complex matrix
        let table = Array2::from_shape_fn((150, 4), |(i, k)| 0.01 * (i * 4 + k) as f64);
        let cs = crate::gram::states(&Encoding::Mps, table.view(), &Ctx::serial()).unwrap();
        let via_table = StateRows::from_table(&Encoding::Mps, table.view()).unwrap();
        assert_eq!(via_table.s, StateRows::new(cs.view()).unwrap().s);
        assert!(
            (acc.pearson().unwrap() - want).abs() < 1e-6,
            "{acc:?} {want}"
        );
    }

    #[test]
    fn edge_cosines_are_float64() {
        let r = array![[3.0f64, 4.0], [1.0, 0.0], [0.0, 0.0]];
        let div = row_divisors(r.view());
        assert_eq!(div, vec![5.0, 1.0, 1.0]);
        let c = edge_cosines64(r.view(), &div, &[(0, 1), (1, 2)]).unwrap();
        assert_eq!(c, vec![0.6, 0.0]);
        assert!(edge_cosines64(r.view(), &div, &[(0, 3)]).is_err());
    }
}
