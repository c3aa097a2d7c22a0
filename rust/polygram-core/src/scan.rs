//! Sweeps and cancellation grids: a Cartesian grid of knob writes evaluated
//! point by point, in parallel.
//!
//! An [`Axis`] writes each of its values into a set of flat slots of the knob
//! table (`feature · width + column`; a cluster-shared knob writes several
//! features).  Points are numbered in C order, the last axis fastest.  States
//! that depend on a single axis are precomputed once per axis value, so a
//! point costs only inner products unless one feature is moved by two axes.
//! Work is done by ranges of points so a caller can stop between chunks.

use std::ops::Range;
use std::sync::OnceLock;

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::gram::{inner, schmidt_rank};
use crate::tiers::Tiers;
use crate::{Encoding, Error, Result, C64};

mod grid;

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

/// Number of scalar statistics per sweep point (see [`Scan::sweep_chunk`]).
pub const SWEEP_STATS: usize = 5;

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
    /// Upper-triangle Gram entries (`a ≤ b`, row-major), planned on first sweep.
    gram_plan: OnceLock<Vec<GramEntry>>,
}

impl Scan {
    pub fn new(enc: Encoding, base: ArrayView2<f64>, axes: Vec<Axis>) -> Result<Self> {
        let (n, width, dim) = (base.nrows(), enc.width(), enc.dim());
        if base.ncols() != width {
            return Err(Error::invalid(
                "params",
                format!("expected {width} knobs per feature, got {}", base.ncols()),
            ));
        }
        let base: Vec<f64> = base.iter().copied().collect();
        enc.check_table(&base, n)?;
        let mut n_points = 1usize;
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
                if s >= n * width {
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
            n_points = n_points.checked_mul(ax.values.len()).ok_or_else(|| {
                Error::invalid("axes", "the grid has more points than fit in memory")
            })?;
        }
        let mut base_states = vec![C64::new(0.0, 0.0); n * dim];
        for f in 0..n {
            enc.state_into(
                &base[f * width..(f + 1) * width],
                &mut base_states[f * dim..(f + 1) * dim],
            );
        }
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
            gram_plan: OnceLock::new(),
        };
        scan.sources = touched
            .into_iter()
            .enumerate()
            .map(|(f, t)| match t.len() {
                0 => Source::Fixed,
                1 => {
                    let table = scan.axis_table(f, t[0]);
                    let ranks = table.chunks(dim).map(schmidt_rank).collect();
                    Source::PerAxis {
                        axis: t[0],
                        table,
                        ranks,
                    }
                }
                _ => Source::Dynamic { axes: t },
            })
            .collect();
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

    fn axis_table(&self, f: usize, k: usize) -> Vec<C64> {
        let ax = &self.axes[k];
        let mut row = self.base[f * self.width..(f + 1) * self.width].to_vec();
        let mut out = vec![C64::new(0.0, 0.0); ax.values.len() * self.dim];
        for (i, &v) in ax.values.iter().enumerate() {
            self.write(&mut row, f, k, v);
            self.enc
                .state_into(&row, &mut out[i * self.dim..(i + 1) * self.dim]);
        }
        out
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
    fn build_dynamic(&self, idx: &[usize], needed: &[bool], scratch: &mut Scratch) {
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
                    .state_into(row, &mut scratch.states[off..off + self.dim]);
            }
        }
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
        }
    }

    fn check_range(
        &self,
        range: &Range<usize>,
        len: usize,
        per_point: usize,
        what: &str,
    ) -> Result<()> {
        if range.end > self.n_points || range.start > range.end || len != range.len() * per_point {
            return Err(Error::invalid(
                what,
                format!(
                    "buffer of {len} for points {range:?} of {} ({per_point} per point)",
                    self.n_points
                ),
            ));
        }
        Ok(())
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

    /// Classify every Gram entry once: constant, one axis (tabulated), or per point.
    fn gram_plan(&self) -> &[GramEntry] {
        self.gram_plan.get_or_init(|| {
            let mut plan = Vec::with_capacity(self.n * (self.n + 1) / 2);
            let no_idx = vec![0; self.axes.len()];
            let scratch = self.scratch();
            for a in 0..self.n {
                for b in a..self.n {
                    let entry = match (self.single_axis(a), self.single_axis(b)) {
                        (None, None) => GramEntry::Const(inner(
                            self.state(a, &no_idx, &scratch),
                            self.state(b, &no_idx, &scratch),
                        )),
                        (Some(Some(k)), None) | (None, Some(Some(k))) => self.tabulate(a, b, k),
                        (Some(Some(k)), Some(Some(l))) if k == l => self.tabulate(a, b, k),
                        _ => GramEntry::Point,
                    };
                    plan.push(entry);
                }
            }
            plan
        })
    }

    fn tabulate(&self, a: usize, b: usize, k: usize) -> GramEntry {
        let scratch = self.scratch();
        let mut idx = vec![0; self.axes.len()];
        let table = (0..self.axes[k].values.len())
            .map(|i| {
                idx[k] = i;
                inner(self.state(a, &idx, &scratch), self.state(b, &idx, &scratch))
            })
            .collect();
        GramEntry::Axis { axis: k, table }
    }

    /// Full sweep statistics for the points of `range`:
    /// * `gram`: `N×N` complex per point;
    /// * `ranks`: Schmidt rank (qubit 0 | rest) per feature;
    /// * `stats`: `[|G_ab|², sibling mean, cross mean, tier separation, ordering ok (1/0)]`.
    pub fn sweep_chunk(
        &self,
        range: Range<usize>,
        tiers: &Tiers,
        target: (usize, usize),
        gram: &mut [C64],
        ranks: &mut [u8],
        stats: &mut [f64],
    ) -> Result<()> {
        let n = self.n;
        self.check_target(tiers, target)?;
        self.check_range(&range, gram.len(), n * n, "gram")?;
        self.check_range(&range, ranks.len(), n, "ranks")?;
        self.check_range(&range, stats.len(), SWEEP_STATS, "stats")?;
        let all = vec![true; n];
        let plan = self.gram_plan();
        gram.par_chunks_mut(n * n.max(1))
            .zip(ranks.par_chunks_mut(n.max(1)))
            .zip(stats.par_chunks_mut(SWEEP_STATS))
            .enumerate()
            .for_each_init(
                || self.scratch(),
                |sc, (i, ((g, r), st))| {
                    let mut idx = std::mem::take(&mut sc.idx);
                    self.decode(range.start + i, &mut idx);
                    self.build_dynamic(&idx, &all, sc);
                    let mut entries = plan.iter();
                    for a in 0..n {
                        let sa = self.state(a, &idx, sc);
                        r[a] = self.rank(a, &idx, sa);
                        for b in a..n {
                            let v = match entries.next() {
                                Some(GramEntry::Const(v)) => *v,
                                Some(GramEntry::Axis { axis, table }) => table[idx[*axis]],
                                _ => inner(sa, self.state(b, &idx, sc)),
                            };
                            g[a * n + b] = v;
                            g[b * n + a] = v.conj();
                        }
                    }
                    let ov = |x: usize, y: usize| g[x * n + y].norm_sqr();
                    let (sib, cross) = tiers.tier_means(ov);
                    st[0] = ov(target.0, target.1);
                    st[1] = sib;
                    st[2] = cross;
                    st[3] = tiers.separation(ov);
                    st[4] = f64::from(u8::from(tiers.ordering_ok(target.0, target.1, ov)));
                    sc.idx = idx;
                },
            );
        Ok(())
    }

    /// Cancellation grid over `range`: the target overlap and feasibility
    /// (ordering preserved, or always true when `preserve_tiers` is false) of
    /// every point.  With `knobs`, also the axis values (`n_axes` per point).
    #[allow(clippy::too_many_arguments)]
    pub fn grid_chunk(
        &self,
        range: Range<usize>,
        tiers: &Tiers,
        target: (usize, usize),
        preserve_tiers: bool,
        overlaps: &mut [f64],
        feasible: &mut [bool],
        knobs: Option<&mut [f64]>,
    ) -> Result<()> {
        self.check_target(tiers, target)?;
        self.check_range(&range, overlaps.len(), 1, "overlaps")?;
        self.check_range(&range, feasible.len(), 1, "feasible")?;
        let k = self.axes.len();
        if let Some(kv) = &knobs {
            self.check_range(&range, kv.len(), k, "knobs")?;
        }
        self.grid_fast(
            range,
            tiers,
            target,
            preserve_tiers,
            overlaps,
            feasible,
            knobs,
        );
        Ok(())
    }
}

struct Scratch {
    idx: Vec<usize>,
    row: Vec<f64>,
    states: Vec<C64>,
}

/// The optimum of a grid: the lowest-index minimum among feasible points, or
/// the lowest-index minimum overall when no point is feasible (spec 03 §3.3).
/// `None` only for an empty grid.
pub fn best_index(overlaps: &[f64], feasible: &[bool]) -> Option<usize> {
    let pick = |only_feasible: bool| {
        overlaps
            .par_iter()
            .zip(feasible.par_iter())
            .enumerate()
            .filter(|(_, (_, &f))| f || !only_feasible)
            .map(|(i, (&o, _))| (o, i))
            .reduce_with(|x, y| {
                if y.0 < x.0 || (y.0 == x.0 && y.1 < x.1) {
                    y
                } else {
                    x
                }
            })
            .map(|(_, i)| i)
    };
    pick(true).or_else(|| pick(false))
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
        let scan = Scan::new(Encoding::Mps, base.view(), axes.clone()).unwrap();
        let tiers = Tiers::new(vec![0, 0, 1, 1], 2).unwrap();
        let p = scan.n_points();
        let (mut g, mut r, mut s) = (
            vec![C64::new(0.0, 0.0); p * 16],
            vec![0u8; p * 4],
            vec![0.0; p * 5],
        );
        scan.sweep_chunk(0..p, &tiers, (0, 2), &mut g, &mut r, &mut s)
            .unwrap();
        for i in 0..3 {
            for j in 0..4 {
                let mut t = base.clone();
                t[[0, 3]] = axes[0].values[i];
                t[[2, 3]] = axes[1].values[j];
                let want = gram(&Encoding::Mps, t.view()).unwrap();
                let pt = i * 4 + j;
                for (x, y) in want.iter().zip(&g[pt * 16..(pt + 1) * 16]) {
                    assert!((x - y).norm() < 1e-15);
                }
                assert!((s[pt * 5] - want[[0, 2]].norm_sqr()).abs() < 1e-15);
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
        let scan = Scan::new(Encoding::Mps, base.view(), axes).unwrap();
        let tiers = Tiers::new(vec![0, 0, 1, 1], 2).unwrap();
        let (mut o, mut f, mut kv) = (vec![0.0; 49], vec![false; 49], vec![0.0; 98]);
        scan.grid_chunk(0..49, &tiers, (0, 2), false, &mut o, &mut f, Some(&mut kv))
            .unwrap();
        let best = best_index(&o, &f).unwrap();
        assert!((o[best] - 0.18015530).abs() < 1e-7);
        assert_eq!((kv[2 * best], kv[2 * best + 1]), (0.0, PI));
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
        let scan = Scan::new(Encoding::Mps, base.view(), axes.clone()).unwrap();
        let tiers = Tiers::new(vec![0, 0, 1, 1], 2).unwrap();
        let p = scan.n_points();
        let mut g = vec![C64::new(0.0, 0.0); p * 16];
        let (mut r, mut s) = (vec![0u8; p * 4], vec![0.0; p * 5]);
        scan.sweep_chunk(0..p, &tiers, (0, 2), &mut g, &mut r, &mut s)
            .unwrap();
        for i in 0..3 {
            for j in 0..2 {
                let mut t = base.clone();
                for f in 0..3 {
                    t[[f, 3]] = axes[0].values[i];
                }
                t[[2, 0]] = axes[1].values[j];
                let want = gram(&Encoding::Mps, t.view()).unwrap();
                let pt = i * 2 + j;
                for (x, y) in want.iter().zip(&g[pt * 16..(pt + 1) * 16]) {
                    assert!((x - y).norm() < 1e-15);
                }
                assert_eq!(r[pt * 4 + 2], if j == 0 { 1 } else { 2 });
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
        let scan = Scan::new(Encoding::Mps, base.view(), axes).unwrap();
        let tiers = Tiers::new(vec![0, 0, 1, 1], 2).unwrap();
        let (mut o, mut f) = (vec![0.0; 4], vec![false; 4]);
        scan.grid_chunk(0..4, &tiers, (0, 2), true, &mut o, &mut f, None)
            .unwrap();
        let mut t = base.clone();
        t[[2, 3]] = 1.0;
        t[[2, 0]] = 0.5;
        let want = gram(&Encoding::Mps, t.view()).unwrap()[[0, 2]].norm_sqr();
        assert!((o[3] - want).abs() < 1e-15);
    }

    #[test]
    fn bad_slots_and_values_are_errors() {
        let base = quickstart();
        let bad = Scan::new(
            Encoding::Mps,
            base.view(),
            vec![Axis {
                slots: vec![99],
                values: vec![0.0],
            }],
        );
        assert!(bad.is_err());
        let nan = Scan::new(
            Encoding::Mps,
            base.view(),
            vec![Axis {
                slots: vec![3],
                values: vec![f64::NAN],
            }],
        );
        assert!(nan.is_err());
        assert_eq!(best_index(&[], &[]), None);
        assert_eq!(best_index(&[0.3, 0.1, 0.1], &[true, false, false]), Some(0));
        assert_eq!(
            best_index(&[0.3, 0.1, 0.1], &[false, false, false]),
            Some(1)
        );
        assert_eq!(best_index(&[0.3, 0.1, 0.2], &[true, false, true]), Some(2));
    }
}
