//! Sweeps and cancellation grids: a Cartesian grid of knob writes evaluated
//! point by point, in parallel.
//!
//! An [`Axis`] writes each of its values into a set of flat slots of the knob
//! table (`feature · width + column`; a cluster-shared knob writes several
//! features).  Points are numbered in C order, the last axis fastest.  States
//! that depend on a single axis are precomputed once per axis value, so a
//! point costs only inner products unless one feature is moved by two axes.
//! Work is done by ranges of points so a caller can stop between chunks.

use std::mem::MaybeUninit;

use ndarray::{Array2, Array3, ArrayView2, Ix2, Ix3};

use crate::ctx::Ctx;
use crate::gram::{inner, schmidt_rank};
use crate::tiers::Tiers;
use crate::{budget, output, size, Encoding, Error, Result, C64};

mod grid;

pub use grid::Grid;

/// Most axes a scan takes: a grid of 2 values per axis already has 2^32
/// points there, more than any budget returns.
pub const MAX_AXES: usize = 32;

/// Points per parallel pass of a sweep (each pass polls Ctrl-C per point).
const SWEEP_CHUNK: usize = 1 << 15;

/// One grid axis: the values it takes and the knob slots it writes.
#[derive(Clone, Debug)]
pub struct Axis {
    pub slots: Vec<usize>,
    pub values: Vec<f64>,
}

#[derive(Clone, Debug)]
enum Source {
    /// Not moved by any axis: the base state.
    Fixed,
    /// Moved by exactly one axis: `table[value index]`, with its Schmidt ranks.
    PerAxis {
        axis: usize,
        table: Vec<C64>,
        ranks: Vec<u8>,
    },
    /// Moved by several axes: rebuilt at every point.
    Dynamic { axes: Vec<usize> },
}

/// How one Gram entry `⟨ψ_a|ψ_b⟩` varies over a sweep.
#[derive(Debug)]
enum GramEntry {
    /// Neither feature moves.
    Const(C64),
    /// Only axis `axis` moves them: one value per axis value.
    Axis { axis: usize, table: Vec<C64> },
    /// Recomputed at every point.
    Point,
}

/// Number of scalar statistics per sweep point (see [`Scan::sweep`]).
pub const SWEEP_STATS: usize = 5;

/// Every point of a sweep: Grams `(P, N, N)`, Schmidt ranks `(P, N)` and
/// statistics `(P, SWEEP_STATS)`.
#[derive(Debug)]
pub struct Sweep {
    pub gram: Array3<C64>,
    pub ranks: Array2<u8>,
    pub stats: Array2<f64>,
}

#[derive(Debug)]
pub struct Scan {
    enc: Encoding,
    width: usize,
    dim: usize,
    n: usize,
    base: Vec<f64>,
    base_states: Vec<C64>,
    base_ranks: Vec<u8>,
    axes: Vec<Axis>,
    sources: Vec<Source>,
    n_points: usize,
}

impl Scan {
    pub fn new(enc: Encoding, base: ArrayView2<f64>, axes: Vec<Axis>, ctx: &Ctx) -> Result<Self> {
        let (n, width, dim) = (base.nrows(), enc.width(), enc.dim());
        if base.ncols() != width {
            return Err(Error::invalid(
                "params",
                format!("expected {width} knobs per feature, got {}", base.ncols()),
            ));
        }
        let base: Vec<f64> = base.iter().copied().collect();
        enc.check_table(&base, n)?;
        if axes.len() > MAX_AXES {
            return Err(Error::invalid(
                "axes",
                format!("got {} axes; allowed at most {MAX_AXES}", axes.len()),
            ));
        }
        let mut n_points = Some(1usize);
        let mut touched: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (k, ax) in axes.iter().enumerate() {
            if ax.values.is_empty() {
                return Err(Error::invalid(format!("axis {k}"), "has no values"));
            }
            if let Some(v) = ax.values.iter().find(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    format!("axis {k}"),
                    format!("holds {v}; knob values must be finite"),
                ));
            }
            for &s in &ax.slots {
                if s >= base.len() {
                    return Err(Error::invalid(
                        format!("axis {k}"),
                        format!("slot {s} outside the {n}×{width} knob table"),
                    ));
                }
                let f = s / width;
                if !touched[f].contains(&k) {
                    touched[f].push(k);
                }
            }
            n_points = n_points.and_then(|p| p.checked_mul(ax.values.len()));
        }
        let n_points = n_points.ok_or_else(|| {
            Error::too_large(
                "axes",
                "the grid has more points than an address space can number",
            )
        })?;
        // Base states plus one state table per feature moved by a single axis.
        let tables: Vec<Option<usize>> = touched
            .iter()
            .filter(|t| t.len() == 1)
            .map(|t| size::bytes_of::<C64>(&[axes[t[0]].values.len(), dim + 1]))
            .collect();
        budget::check(
            "axes",
            &format!("the states of a scan over {n} features"),
            size::total(&[size::bytes_of::<C64>(&[n, dim + 1]), size::total(&tables)]),
        )?;
        let mut base_states = vec![C64::new(0.0, 0.0); n * dim];
        let items = base_states
            .chunks_mut(dim)
            .zip(base.chunks(width.max(1)))
            .collect();
        ctx.each(items, |(out, row)| enc.state_into(row, out, ctx))?;
        let base_ranks = base_states.chunks(dim).map(schmidt_rank).collect();
        let mut scan = Scan {
            enc,
            width,
            dim,
            n,
            base,
            base_states,
            base_ranks,
            axes,
            sources: Vec::new(),
            n_points,
        };
        let items = touched.into_iter().enumerate().collect();
        scan.sources = ctx.map(
            items,
            || (),
            |_, (f, t): (usize, Vec<usize>)| {
                Ok(match t.len() {
                    0 => Source::Fixed,
                    1 => {
                        let table = scan.axis_table(f, t[0], ctx)?;
                        let ranks = table.chunks(dim).map(schmidt_rank).collect();
                        Source::PerAxis {
                            axis: t[0],
                            table,
                            ranks,
                        }
                    }
                    _ => Source::Dynamic { axes: t },
                })
            },
        )?;
        Ok(scan)
    }

    pub fn n_points(&self) -> usize {
        self.n_points
    }

    pub fn n_features(&self) -> usize {
        self.n
    }

    pub fn n_axes(&self) -> usize {
        self.axes.len()
    }

    fn axis_table(&self, f: usize, k: usize, ctx: &Ctx) -> Result<Vec<C64>> {
        let ax = &self.axes[k];
        let mut row = self.base[f * self.width..(f + 1) * self.width].to_vec();
        let mut out = vec![C64::new(0.0, 0.0); ax.values.len() * self.dim];
        for (i, &v) in ax.values.iter().enumerate() {
            ctx.check()?;
            self.write(&mut row, f, k, v);
            self.enc
                .state_into(&row, &mut out[i * self.dim..(i + 1) * self.dim], ctx)?;
        }
        Ok(out)
    }

    /// Write axis `k`'s value into feature `f`'s row wherever the axis has a slot.
    fn write(&self, row: &mut [f64], f: usize, k: usize, v: f64) {
        for &s in &self.axes[k].slots {
            if s / self.width == f {
                row[s % self.width] = v;
            }
        }
    }

    /// Per-axis value indices of point `p`.
    fn decode(&self, mut p: usize, idx: &mut [usize]) {
        for (k, ax) in self.axes.iter().enumerate().rev() {
            let len = ax.values.len();
            idx[k] = p % len;
            p /= len;
        }
    }

    /// Build the states of the dynamic features among `needed` into `scratch`.
    fn build_dynamic(
        &self,
        idx: &[usize],
        needed: &[bool],
        scratch: &mut Scratch,
        ctx: &Ctx,
    ) -> Result<()> {
        for (f, (&need, source)) in needed.iter().zip(&self.sources).enumerate() {
            if let (true, Source::Dynamic { axes }) = (need, source) {
                let row = &mut scratch.row;
                row.copy_from_slice(&self.base[f * self.width..(f + 1) * self.width]);
                for &k in axes {
                    let v = self.axes[k].values[idx[k]];
                    self.write(row, f, k, v);
                }
                let off = f * self.dim;
                self.enc
                    .state_into(row, &mut scratch.states[off..off + self.dim], ctx)?;
            }
        }
        Ok(())
    }

    fn state<'a>(&'a self, f: usize, idx: &[usize], scratch: &'a Scratch) -> &'a [C64] {
        let (d, off) = (self.dim, f * self.dim);
        match &self.sources[f] {
            Source::Fixed => &self.base_states[off..off + d],
            Source::PerAxis { axis, table, .. } => &table[idx[*axis] * d..(idx[*axis] + 1) * d],
            Source::Dynamic { .. } => &scratch.states[off..off + d],
        }
    }

    /// Schmidt rank of feature `f` at a point: cached unless it is rebuilt per point.
    fn rank(&self, f: usize, idx: &[usize], state: &[C64]) -> u8 {
        match &self.sources[f] {
            Source::Fixed => self.base_ranks[f],
            Source::PerAxis { axis, ranks, .. } => ranks[idx[*axis]],
            Source::Dynamic { .. } => schmidt_rank(state),
        }
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            idx: vec![0; self.axes.len()],
            row: vec![0.0; self.width],
            states: vec![C64::new(0.0, 0.0); self.n * self.dim],
            overlaps: Vec::new(),
            every: vec![true; self.n],
        }
    }

    fn check_target(&self, tiers: &Tiers, target: (usize, usize)) -> Result<()> {
        if tiers.n_features() != self.n {
            return Err(Error::invalid(
                "clusters",
                format!(
                    "{} cluster labels for {} features",
                    tiers.n_features(),
                    self.n
                ),
            ));
        }
        if target.0 >= self.n || target.1 >= self.n {
            return Err(Error::invalid(
                "target",
                format!("{target:?} outside 0..{}", self.n),
            ));
        }
        Ok(())
    }

    /// The axis a feature's state depends on: `None` for a fixed feature,
    /// `Some(None)` when it depends on several.
    fn single_axis(&self, f: usize) -> Option<Option<usize>> {
        match &self.sources[f] {
            Source::Fixed => None,
            Source::PerAxis { axis, .. } => Some(Some(*axis)),
            Source::Dynamic { .. } => Some(None),
        }
    }

    /// The axis a Gram entry `(a, b)` is tabulated over (`Some(None)`: a
    /// constant; `None`: computed per point).
    fn entry_axis(&self, a: usize, b: usize) -> Option<Option<usize>> {
        match (self.single_axis(a), self.single_axis(b)) {
            (None, None) => Some(None),
            (Some(Some(k)), None) | (None, Some(Some(k))) => Some(Some(k)),
            (Some(Some(k)), Some(Some(l))) if k == l => Some(Some(k)),
            _ => None,
        }
    }

    /// Classify every upper-triangle Gram entry (`a ≤ b`, row-major) once
    /// per sweep: constant, one axis (tabulated), or per point.
    fn gram_plan(&self, ctx: &Ctx) -> Result<Vec<GramEntry>> {
        let pairs: Vec<(usize, usize)> = (0..self.n)
            .flat_map(|a| (a..self.n).map(move |b| (a, b)))
            .collect();
        let tables: Vec<Option<usize>> = pairs
            .iter()
            .filter_map(|&(a, b)| match self.entry_axis(a, b) {
                Some(Some(k)) => Some(size::bytes_of::<C64>(&[self.axes[k].values.len()])),
                _ => None,
            })
            .collect();
        budget::check(
            "axes",
            "the sweep's tabulated Gram entries",
            size::total(&tables),
        )?;
        let no_idx = vec![0; self.axes.len()];
        let scratch = self.scratch();
        ctx.map(
            pairs,
            || (),
            |_, (a, b)| {
                Ok(match self.entry_axis(a, b) {
                    Some(None) => GramEntry::Const(inner(
                        self.state(a, &no_idx, &scratch),
                        self.state(b, &no_idx, &scratch),
                    )),
                    Some(Some(k)) => self.tabulate(a, b, k, &scratch),
                    None => GramEntry::Point,
                })
            },
        )
    }

    fn tabulate(&self, a: usize, b: usize, k: usize, scratch: &Scratch) -> GramEntry {
        let mut idx = vec![0; self.axes.len()];
        let table = (0..self.axes[k].values.len())
            .map(|i| {
                idx[k] = i;
                inner(self.state(a, &idx, scratch), self.state(b, &idx, scratch))
            })
            .collect();
        GramEntry::Axis { axis: k, table }
    }

    /// Every point's Gram, Schmidt ranks (qubit 0 | rest) and statistics
    /// `[|G_ab|², sibling mean, cross mean, tier separation, ordering ok (1/0)]`.
    pub fn sweep(&self, tiers: &Tiers, target: (usize, usize), ctx: &Ctx) -> Result<Sweep> {
        self.check_target(tiers, target)?;
        let (p, n) = (self.n_points, self.n);
        let per_point = size::total(&[
            size::bytes_of::<C64>(&[n, n]),
            Some(n),
            size::bytes_of::<f64>(&[SWEEP_STATS]),
        ]);
        budget::check(
            "axes",
            &format!("a sweep of {p} points over {n} features"),
            per_point.and_then(|b| b.checked_mul(p)),
        )?;
        let plan = self.gram_plan(ctx)?;
        let mut gram = output::uninit::<C64, _>(Ix3(p, n, n))?;
        let mut ranks = output::uninit::<u8, _>(Ix2(p, n))?;
        let mut stats = output::uninit::<f64, _>(Ix2(p, SWEEP_STATS))?;
        {
            let g = gram.as_slice_mut().ok_or_else(not_contiguous)?;
            let r = ranks.as_slice_mut().ok_or_else(not_contiguous)?;
            let s = stats.as_slice_mut().ok_or_else(not_contiguous)?;
            // one work item per point; a chunk of points per pass keeps the
            // item list small
            let mut points = g
                .chunks_mut(n * n)
                .zip(r.chunks_mut(n))
                .zip(s.chunks_mut(SWEEP_STATS))
                .enumerate();
            loop {
                let chunk: Vec<_> = points.by_ref().take(SWEEP_CHUNK).collect();
                if chunk.is_empty() {
                    break;
                }
                ctx.map(
                    chunk,
                    || Scratch {
                        overlaps: vec![0.0; n * n],
                        ..self.scratch()
                    },
                    |sc, (i, ((g, r), st))| {
                        self.sweep_point(&plan, tiers, target, i, sc, g, r, st, ctx)
                    },
                )?;
            }
        }
        // SAFETY: `sweep_point` wrote every entry of its point's Gram (both
        // triangles), ranks and statistics, and every point of 0..p ran
        // without error.
        let (gram, ranks, stats) =
            unsafe { (gram.assume_init(), ranks.assume_init(), stats.assume_init()) };
        Ok(Sweep { gram, ranks, stats })
    }

    #[allow(clippy::too_many_arguments)]
    fn sweep_point(
        &self,
        plan: &[GramEntry],
        tiers: &Tiers,
        target: (usize, usize),
        point: usize,
        sc: &mut Scratch,
        g_out: &mut [MaybeUninit<C64>],
        r_out: &mut [MaybeUninit<u8>],
        st: &mut [MaybeUninit<f64>],
        ctx: &Ctx,
    ) -> Result<()> {
        let n = self.n;
        let mut idx = std::mem::take(&mut sc.idx);
        let mut ov2 = std::mem::take(&mut sc.overlaps);
        self.decode(point, &mut idx);
        let every = std::mem::take(&mut sc.every);
        self.build_dynamic(&idx, &every, sc, ctx)?;
        sc.every = every;
        let mut entries = plan.iter();
        for (a, r) in r_out.iter_mut().enumerate() {
            let sa = self.state(a, &idx, sc);
            r.write(self.rank(a, &idx, sa));
            for b in a..n {
                let v = match entries.next() {
                    Some(GramEntry::Const(v)) => *v,
                    Some(GramEntry::Axis { axis, table }) => table[idx[*axis]],
                    _ => inner(sa, self.state(b, &idx, sc)),
                };
                g_out[a * n + b].write(v);
                g_out[b * n + a].write(v.conj());
                let o = v.norm_sqr();
                (ov2[a * n + b], ov2[b * n + a]) = (o, o);
            }
        }
        let ov = |x: usize, y: usize| ov2[x * n + y];
        let (sib, cross) = tiers.tier_means(ov);
        let ordering = tiers.ordering_ok(target.0, target.1, ov);
        let values = [
            ov(target.0, target.1),
            sib,
            cross,
            tiers.separation(ov),
            f64::from(u8::from(ordering)),
        ];
        for (o, v) in st.iter_mut().zip(values) {
            o.write(v);
        }
        sc.idx = idx;
        sc.overlaps = ov2;
        Ok(())
    }
}

fn not_contiguous() -> Error {
    Error::invalid("internal", "a freshly allocated array is not contiguous")
}

struct Scratch {
    idx: Vec<usize>,
    row: Vec<f64>,
    states: Vec<C64>,
    /// One point's `|G_ab|²` (sweeps only).
    overlaps: Vec<f64>,
    /// `true` per feature: a sweep rebuilds every dynamic feature.
    every: Vec<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gram::gram;
    use ndarray::array;
    use std::f64::consts::PI;

    fn quickstart() -> ndarray::Array2<f64> {
        array![
            [0.0, -0.5, 0.0, 0.0],
            [0.0, -0.5, 0.0, 0.0],
            [0.0, 0.5, 0.0, 0.0],
            [0.0, 0.5, 0.0, 0.0]
        ]
    }

    fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                if i + 1 == n {
                    hi
                } else {
                    lo + i as f64 * (hi - lo) / (n - 1) as f64
                }
            })
            .collect()
    }

    fn go() -> Ctx {
        Ctx::serial()
    }

    fn new_scan(base: &ndarray::Array2<f64>, axes: Vec<Axis>) -> Result<Scan> {
        Scan::new(Encoding::Mps, base.view(), axes, &go())
    }

    fn quick_tiers() -> Tiers {
        Tiers::new(vec![0, 0, 1, 1], 2).unwrap()
    }

    #[test]
    fn sweep_matches_gram_of_the_written_table() {
        let base = quickstart();
        let axes = vec![
            Axis {
                slots: vec![3],
                values: linspace(0.0, PI, 3),
            },
            Axis {
                slots: vec![2 * 4 + 3],
                values: linspace(0.0, PI, 4),
            },
        ];
        let scan = new_scan(&base, axes.clone()).unwrap();
        let out = scan.sweep(&quick_tiers(), (0, 2), &go()).unwrap();
        for i in 0..3 {
            for j in 0..4 {
                let mut t = base.clone();
                t[[0, 3]] = axes[0].values[i];
                t[[2, 3]] = axes[1].values[j];
                let want = gram(&Encoding::Mps, t.view(), &go()).unwrap();
                let pt = i * 4 + j;
                for (x, y) in want.iter().zip(out.gram.slice(ndarray::s![pt, .., ..])) {
                    assert!((x - y).norm() < 1e-15);
                }
                assert!((out.stats[[pt, 0]] - want[[0, 2]].norm_sqr()).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn grid_finds_the_gap_pair_floor_with_odd_steps() {
        let base = array![
            [0.9, 0.2, 0.1, 0.0],
            [0.9, 0.25, 0.1, 0.0],
            [0.9, -0.4, 0.3, 0.0],
            [0.9, -0.45, 0.3, 0.0]
        ];
        let axes = vec![
            Axis {
                slots: vec![3],
                values: linspace(0.0, 2.0 * PI, 7),
            },
            Axis {
                slots: vec![2 * 4 + 3],
                values: linspace(0.0, 2.0 * PI, 7),
            },
        ];
        let scan = new_scan(&base, axes).unwrap();
        let g = scan
            .grid(&quick_tiers(), (0, 2), false, true, &go())
            .unwrap();
        assert!((g.overlaps[g.best] - 0.18015530).abs() < 1e-7);
        let kv = g.knobs.unwrap();
        assert_eq!((kv[[g.best, 0]], kv[[g.best, 1]]), (0.0, PI));
    }

    #[test]
    fn sweep_plans_constant_tabulated_and_per_point_entries() {
        let base = quickstart();
        // axis 0 moves bird_hawk (φ) and, cluster-shared, both dogs; axis 1
        // moves bird_hawk again (α): dogs tabulated, bird_hawk per point,
        // bird_sparrow fixed.
        let axes = vec![
            Axis {
                slots: vec![3, 4 + 3, 2 * 4 + 3],
                values: vec![0.0, 0.7, 2.0],
            },
            Axis {
                slots: vec![2 * 4],
                values: vec![0.0, 0.4],
            },
        ];
        let scan = new_scan(&base, axes.clone()).unwrap();
        let out = scan.sweep(&quick_tiers(), (0, 2), &go()).unwrap();
        for i in 0..3 {
            for j in 0..2 {
                let mut t = base.clone();
                for f in 0..3 {
                    t[[f, 3]] = axes[0].values[i];
                }
                t[[2, 0]] = axes[1].values[j];
                let want = gram(&Encoding::Mps, t.view(), &go()).unwrap();
                let pt = i * 2 + j;
                for (x, y) in want.iter().zip(out.gram.slice(ndarray::s![pt, .., ..])) {
                    assert!((x - y).norm() < 1e-15);
                }
                assert_eq!(out.ranks[[pt, 2]], if j == 0 { 1 } else { 2 });
            }
        }
    }

    #[test]
    fn two_axes_on_one_feature_rebuild_it_per_point() {
        let base = quickstart();
        let axes = vec![
            Axis {
                slots: vec![2 * 4 + 3],
                values: vec![0.0, 1.0],
            },
            Axis {
                slots: vec![2 * 4],
                values: vec![0.0, 0.5],
            },
        ];
        let scan = new_scan(&base, axes).unwrap();
        let g = scan
            .grid(&quick_tiers(), (0, 2), true, false, &go())
            .unwrap();
        assert!(g.knobs.is_none());
        let mut t = base.clone();
        t[[2, 3]] = 1.0;
        t[[2, 0]] = 0.5;
        let want = gram(&Encoding::Mps, t.view(), &go()).unwrap()[[0, 2]].norm_sqr();
        assert!((g.overlaps[3] - want).abs() < 1e-15);
    }

    #[test]
    fn bad_slots_and_values_are_errors() {
        let base = quickstart();
        let one =
            |slots: Vec<usize>, values: Vec<f64>| new_scan(&base, vec![Axis { slots, values }]);
        assert!(matches!(
            one(vec![99], vec![0.0]),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            one(vec![3], vec![f64::NAN]),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(one(vec![3], vec![]), Err(Error::Invalid { .. })));
    }

    #[test]
    fn the_optimum_prefers_feasible_then_lowest_index() {
        // target (0, 2); feature 1 is a sibling of 0: a point is feasible
        // when |G_01|² ≥ |G_02|².  Axis 0 moves feature 2's φ: all points tie
        // in feasibility, so the lowest overlap (then index) wins.
        let base = quickstart();
        let axes = vec![Axis {
            slots: vec![2 * 4 + 3],
            values: vec![1.0, 0.0, 1.0, 0.0],
        }];
        let scan = new_scan(&base, axes).unwrap();
        let g = scan
            .grid(&quick_tiers(), (0, 2), true, false, &go())
            .unwrap();
        let min = g.overlaps.iter().copied().fold(f64::INFINITY, f64::min);
        let first = g.overlaps.iter().position(|&v| v == min).unwrap();
        assert_eq!(g.best, first);
    }

    #[test]
    fn axis_count_and_point_count_are_capped() {
        let base = quickstart();
        let axes = |k: usize| {
            (0..k)
                .map(|_| Axis {
                    slots: vec![3],
                    values: vec![0.0, 1.0],
                })
                .collect::<Vec<_>>()
        };
        // 63 axes used to panic ("Shape too large"), 40 to abort on allocation.
        let e = new_scan(&base, axes(63)).unwrap_err();
        assert!(
            matches!(e, Error::Invalid { .. }) && e.to_string().contains("axes"),
            "{e}"
        );
        let scan = new_scan(&base, axes(MAX_AXES)).unwrap();
        assert_eq!(scan.n_points(), 1 << MAX_AXES);
        let e = scan
            .grid(&quick_tiers(), (0, 2), true, true, &go())
            .unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        let e = scan.sweep(&quick_tiers(), (0, 2), &go()).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        // 2^32 × 2^32 points overflow a 64-bit count.
        let wide = vec![
            Axis {
                slots: vec![3],
                values: vec![0.0; 1 << 20],
            };
            4
        ];
        let e = new_scan(&base, wide).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    }

    #[test]
    fn a_cancelled_scan_stops() {
        let base = quickstart();
        let axes = vec![
            Axis {
                slots: vec![3],
                values: linspace(0.0, PI, 300),
            },
            Axis {
                slots: vec![2 * 4 + 3],
                values: linspace(0.0, PI, 300),
            },
        ];
        let scan = new_scan(&base, axes).unwrap();
        let stop = Ctx::serial();
        stop.cancel();
        assert_eq!(
            scan.grid(&quick_tiers(), (0, 2), true, false, &stop)
                .unwrap_err(),
            Error::Interrupted
        );
        assert_eq!(
            scan.sweep(&quick_tiers(), (0, 2), &stop).unwrap_err(),
            Error::Interrupted
        );
    }
}
