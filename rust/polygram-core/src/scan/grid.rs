//! Fast evaluation of cancellation grids (the body of [`Scan::grid`]).
//!
//! A grid point needs the target overlap `|G_ab|²` and, with
//! `preserve_tiers`, the overlaps of each target with its siblings.  Each of
//! these pair overlaps is classified once per call by the axes it depends on:
//!
//! * no axis → a constant;
//! * one axis → a table over that axis' values;
//! * two axes that each move one feature through a *phase column* (MPS/Rung3
//!   φ, Rung3 ψ_aux: the column only multiplies a fixed subset of amplitudes
//!   by `e^{iv}`, up to a global phase) → the closed form
//!   `|G|² = M + P·cos δ + Q·sin δ`, `δ = v_x − v_y` (the X/Y branch law of
//!   spec 01 §1.3.1 with complex X, Y);
//! * anything else → the inner product of the point's states.
//!
//! The ordering test `ov(a, s) + slack ≥ ov(a, b)` for every sibling only
//! needs the smallest sibling overlap, so single-axis sibling tables are
//! folded into one threshold table per axis (floating-point addition is
//! monotonic, so `min(ov) + slack` decides exactly like each `ov + slack`).
//! Points are walked row by row along the last axis: for the usual φ × φ scan
//! a point costs two multiply-adds and two comparisons.  The plan is built
//! once per call; each block of points writes its outputs (allocated
//! uninitialised) and keeps its own best point, and the blocks' bests are
//! reduced — there is no second pass over the overlaps.

use std::mem::MaybeUninit;

use ndarray::{Array1, Array2, Ix1, Ix2};

use super::{not_contiguous, Scan, Scratch, Source};
use crate::ctx::Ctx;
use crate::gram::inner;
use crate::tiers::{Tiers, ORDERING_SLACK};
use crate::{budget, output, size, Encoding, Error, Result, C64};

/// Points per parallel work item (each polls Ctrl-C once).
const BLOCK: usize = 4096;

/// A cancellation grid: every point's target overlap and feasibility, the
/// axis values of every point when asked for, and the optimum.
#[derive(Debug)]
pub struct Grid {
    pub overlaps: Array1<f64>,
    pub feasible: Array1<bool>,
    /// `(P, n_axes)` axis values, when requested.
    pub knobs: Option<Array2<f64>>,
    /// The lowest-index minimum among feasible points, or the lowest-index
    /// minimum overall when no point is feasible (spec 03 §3.3).
    pub best: usize,
}

/// `(overlap, point)` of the best point seen; `(∞, usize::MAX)` before any.
#[derive(Clone, Copy)]
struct Candidate(f64, usize);

impl Candidate {
    const NONE: Candidate = Candidate(f64::INFINITY, usize::MAX);

    /// Lower overlap wins, then the lower point.
    fn min(self, o: Candidate) -> Candidate {
        if o.0 < self.0 || (o.0 == self.0 && o.1 < self.1) {
            o
        } else {
            self
        }
    }

    fn point(self) -> Option<usize> {
        (self.1 != usize::MAX).then_some(self.1)
    }
}

/// The best feasible point and the best point overall of some points.
#[derive(Clone, Copy)]
struct Best {
    feasible: Candidate,
    any: Candidate,
}

impl Best {
    const NONE: Best = Best {
        feasible: Candidate::NONE,
        any: Candidate::NONE,
    };

    fn merge(self, other: Best) -> Best {
        Best {
            feasible: self.feasible.min(other.feasible),
            any: self.any.min(other.any),
        }
    }

    /// Points arrive in increasing order, so a strict `<` keeps the lowest index.
    fn see(&mut self, v: f64, ok: bool, point: usize) {
        if v < self.any.0 {
            self.any = Candidate(v, point);
        }
        if ok && v < self.feasible.0 {
            self.feasible = Candidate(v, point);
        }
    }
}

/// For a knob column that multiplies entry `n` of the scan's state
/// representation by `e^{iv}` when `mask[n] == Some(true)` and leaves the
/// `Some(false)` entries alone (up to a global phase): the mask.  `None` marks
/// entries of another factor of a product representation (Rung3 factored as
/// `[MPS 8-vector, amp 2-vector]`, see [`Encoding::repr_into`]); both parts
/// keep them.  `dim` tells the factored Rung3 form (10) from the 16-vector.
fn phase_mask(enc: &Encoding, col: usize, dim: usize) -> Option<Vec<Option<bool>>> {
    // Rz(φ) on q1 of the MPS (index 4q0 + 2q1 + q2): e^{∓iφ/2} on q1 = 0 / 1.
    let q1 = |n: usize| (n < 8).then_some((n >> 1) & 1 == 1);
    match (enc, col, dim) {
        (Encoding::Mps, 3, 8) => Some((0..8).map(q1).collect()),
        (Encoding::Rung3, 3, 10) => Some((0..10).map(q1).collect()),
        // ψ_aux: e^{iψ} on the sin θ entry of the branch (cos θ, e^{iψ} sin θ).
        (Encoding::Rung3, 5, 10) => Some((0..10).map(|n| (n >= 8).then_some(n == 9)).collect()),
        // The 16-vector `mps[k] ⊗ (amp0, amp1)` stored at 2k + bit.
        (Encoding::Rung3, 3, 16) => Some((0..16).map(|n| Some((n >> 2) & 1 == 1)).collect()),
        (Encoding::Rung3, 5, 16) => Some((0..16).map(|n| Some(n & 1 == 1)).collect()),
        _ => None,
    }
}

/// A block of points: first point, its overlaps, feasibility and knob values.
type WorkItem<'a> = (
    usize,
    &'a mut [MaybeUninit<f64>],
    &'a mut [MaybeUninit<bool>],
    Option<&'a mut [MaybeUninit<f64>]>,
);

/// How one pair overlap varies over the grid.
enum PairEval {
    Const(f64),
    One {
        axis: usize,
        table: Vec<f64>,
    },
    /// `m + p·cos(v_ax − v_ay) + q·sin(v_ax − v_ay)`.
    Phase {
        ax: usize,
        ay: usize,
        m: f64,
        p: f64,
        q: f64,
    },
    Inner {
        x: usize,
        y: usize,
    },
}

/// A pair overlap within one row of the grid (all axes but the last fixed).
#[derive(Clone, Copy)]
enum RowEval<'a> {
    Const(f64),
    Table(&'a [f64]),
    /// `m + a·cos v_j + b·sin v_j` over the last axis' values `v_j`.
    Lin {
        m: f64,
        a: f64,
        b: f64,
    },
    Inner {
        x: usize,
        y: usize,
    },
}

struct Plan {
    target: PairEval,
    /// Sibling overlaps that depend on two or more axes.
    multi: Vec<PairEval>,
    /// `min(constant sibling overlaps) + slack` (∞ when none).
    const_thr: f64,
    /// Per axis: `min(single-axis sibling overlaps at value i) + slack` (∞ when none).
    axis_thr: Vec<Vec<f64>>,
    /// `(cos v, sin v)` of every axis value.
    trig: Vec<(Vec<f64>, Vec<f64>)>,
    /// Features rebuilt per point (dynamic ones used by an `Inner` pair).
    dynamic: Vec<bool>,
    any_dynamic: bool,
}

/// One row of the φ × φ hot loop, every slice of the row's length.
struct LinRow<'a> {
    m: f64,
    a: f64,
    b: f64,
    /// `min(constant and earlier-axis thresholds)`; ∞ without `preserve_tiers`.
    thr: f64,
    cos: &'a [f64],
    sin: &'a [f64],
    last_thr: &'a [f64],
    preserve_tiers: bool,
}

/// Write `v_j = m + a·cos_j + b·sin_j` and its feasibility for a row and
/// return the row's minimum and minimum feasible overlap (∞ when none).
/// Overlaps are finite, so `min` is exact.
fn lin_row(r: LinRow<'_>, o: &mut [MaybeUninit<f64>], f: &mut [MaybeUninit<bool>]) -> (f64, f64) {
    let (mut low, mut low_ok) = (f64::INFINITY, f64::INFINITY);
    let cols = r.cos.iter().zip(r.sin).zip(r.last_thr);
    for ((o, f), ((&c, &s), &t)) in o.iter_mut().zip(f.iter_mut()).zip(cols) {
        let v = r.m + r.a * c + r.b * s;
        let ok = !r.preserve_tiers || (v <= r.thr && v <= t);
        o.write(v);
        f.write(ok);
        low = low.min(v);
        low_ok = low_ok.min(if ok { v } else { f64::INFINITY });
    }
    (low, low_ok)
}

impl Scan {
    /// Whether the scan holds Rung3's factored representation rather than
    /// full state vectors.
    fn factored(&self) -> bool {
        self.dim != self.enc.dim()
    }

    /// `⟨a|b⟩` of two entries of the scan's state tables.
    #[inline]
    fn ip(&self, a: &[C64], b: &[C64]) -> C64 {
        if self.factored() {
            self.enc.inner(a, b)
        } else {
            inner(a, b)
        }
    }

    /// The column axis `k` writes in feature `f`, if it writes exactly one.
    fn single_column(&self, f: usize, k: usize) -> Option<usize> {
        let mut it = self.axes[k].slots.iter().filter(|&&s| s / self.width == f);
        match (it.next(), it.next()) {
            (Some(&s), None) => Some(s % self.width),
            _ => None,
        }
    }

    /// Representation of feature `f` with column `col` set to 0.
    fn repr_at_zero(&self, f: usize, col: usize, ctx: &Ctx) -> Result<Vec<C64>> {
        let mut row = self.base[f * self.width..(f + 1) * self.width].to_vec();
        row[col] = 0.0;
        let mut out = vec![C64::new(0.0, 0.0); self.dim];
        if self.factored() {
            self.enc.repr_into(&row, &mut out, ctx)?;
        } else {
            self.enc.state_into(&row, &mut out, ctx)?;
        }
        Ok(out)
    }

    /// Representation of feature `f` at value index `i` of its axis (or its base).
    fn repr_at(&self, f: usize, i: usize) -> &[C64] {
        let d = self.dim;
        match &self.sources[f] {
            Source::PerAxis { table, .. } => &table[i * d..(i + 1) * d],
            _ => &self.base_states[f * d..(f + 1) * d],
        }
    }

    fn pair_eval(&self, x: usize, y: usize, ctx: &Ctx) -> Result<PairEval> {
        let one = |axis: usize| {
            let table = (0..self.axes[axis].values.len())
                .map(|i| self.ip(self.repr_at(x, i), self.repr_at(y, i)).norm_sqr())
                .collect();
            PairEval::One { axis, table }
        };
        ctx.check()?;
        Ok(match (&self.sources[x], &self.sources[y]) {
            (Source::Fixed, Source::Fixed) => {
                PairEval::Const(self.ip(self.repr_at(x, 0), self.repr_at(y, 0)).norm_sqr())
            }
            (Source::PerAxis { axis, .. }, Source::Fixed)
            | (Source::Fixed, Source::PerAxis { axis, .. }) => one(*axis),
            (Source::PerAxis { axis: kx, .. }, Source::PerAxis { axis: ky, .. }) if kx == ky => {
                one(*kx)
            }
            (Source::PerAxis { axis: kx, .. }, Source::PerAxis { axis: ky, .. }) => self
                .phase_eval(x, *kx, y, *ky, ctx)?
                .unwrap_or(PairEval::Inner { x, y }),
            _ => PairEval::Inner { x, y },
        })
    }

    /// The closed form of a pair moved by two different phase-column axes.
    fn phase_eval(
        &self,
        x: usize,
        kx: usize,
        y: usize,
        ky: usize,
        ctx: &Ctx,
    ) -> Result<Option<PairEval>> {
        let (Some(cx), Some(cy)) = (self.single_column(x, kx), self.single_column(y, ky)) else {
            return Ok(None);
        };
        let mask = match phase_mask(&self.enc, cx, self.dim) {
            Some(mask) if cx == cy => mask,
            _ => return Ok(None),
        };
        let (x0, y0) = (
            self.repr_at_zero(x, cx, ctx)?,
            self.repr_at_zero(y, cy, ctx)?,
        );
        // G = g·(X + Y·e^{−iδ}) with |g| = 1 and X / Y the parts of ⟨x0|y0⟩ from
        // the unmasked / masked entries (the inner product is linear in each
        // factor of y, so zeroing one class of the phase factor splits it).
        let part = |keep: bool| {
            let y: Vec<C64> = y0
                .iter()
                .zip(&mask)
                .map(|(&v, &m)| match m {
                    Some(m) if m != keep => C64::new(0.0, 0.0),
                    _ => v,
                })
                .collect();
            self.ip(&x0, &y)
        };
        let (bx, by) = (part(false), part(true));
        let c = bx * by.conj();
        Ok(Some(PairEval::Phase {
            ax: kx,
            ay: ky,
            m: bx.norm_sqr() + by.norm_sqr(),
            p: 2.0 * c.re,
            q: -2.0 * c.im,
        }))
    }

    fn grid_plan(
        &self,
        tiers: &Tiers,
        (a, b): (usize, usize),
        preserve_tiers: bool,
        ctx: &Ctx,
    ) -> Result<Plan> {
        let pairs: Vec<(usize, usize)> = if preserve_tiers {
            tiers
                .siblings(a)
                .map(|s| (a, s))
                .chain(tiers.siblings(b).map(|s| (b, s)))
                .collect()
        } else {
            Vec::new()
        };
        // Tables of at most one axis' length per pair, plus threshold and trig tables.
        let longest = self
            .axes
            .iter()
            .map(|ax| ax.values.len())
            .max()
            .unwrap_or(0);
        let values: usize = self.axes.iter().map(|ax| ax.values.len()).sum();
        budget::check(
            "axes",
            "the grid's plan",
            size::total(&[
                size::bytes_of::<f64>(&[pairs.len() + 1, longest]),
                size::bytes_of::<f64>(&[values, 3]),
            ]),
        )?;
        let mut plan = Plan {
            target: self.pair_eval(a, b, ctx)?,
            multi: Vec::new(),
            const_thr: f64::INFINITY,
            axis_thr: self
                .axes
                .iter()
                .map(|ax| vec![f64::INFINITY; ax.values.len()])
                .collect(),
            trig: self
                .axes
                .iter()
                .map(|ax| ax.values.iter().map(|v| (v.cos(), v.sin())).unzip())
                .collect(),
            dynamic: vec![false; self.n],
            any_dynamic: false,
        };
        for (x, s) in pairs {
            match self.pair_eval(x, s, ctx)? {
                PairEval::Const(v) => plan.const_thr = plan.const_thr.min(v + ORDERING_SLACK),
                PairEval::One { axis, table } => {
                    for (t, v) in plan.axis_thr[axis].iter_mut().zip(table) {
                        *t = t.min(v + ORDERING_SLACK);
                    }
                }
                e => plan.multi.push(e),
            }
        }
        for e in std::iter::once(&plan.target).chain(&plan.multi) {
            if let PairEval::Inner { x, y } = *e {
                for f in [x, y] {
                    if matches!(self.sources[f], Source::Dynamic { .. }) {
                        plan.dynamic[f] = true;
                        plan.any_dynamic = true;
                    }
                }
            }
        }
        Ok(plan)
    }

    /// The cancellation grid: the target overlap and feasibility (ordering
    /// preserved, or always true when `preserve_tiers` is false) of every
    /// point, the axis values with `with_knobs`, and the optimum.
    pub fn grid(
        &self,
        tiers: &Tiers,
        target: (usize, usize),
        preserve_tiers: bool,
        with_knobs: bool,
        ctx: &Ctx,
    ) -> Result<Grid> {
        self.check_target(tiers, target)?;
        let (p, k) = (self.n_points, self.axes.len());
        let knob_bytes = if with_knobs {
            size::bytes_of::<f64>(&[p, k])
        } else {
            Some(0)
        };
        budget::check(
            "axes",
            &format!("a grid of {p} points"),
            size::total(&[
                size::bytes_of::<f64>(&[p]),
                size::bytes_of::<bool>(&[p]),
                knob_bytes,
            ]),
        )?;
        let plan = self.grid_plan(tiers, target, preserve_tiers, ctx)?;
        let mut overlaps = output::uninit::<f64, _>(Ix1(p))?;
        let mut feasible = output::uninit::<bool, _>(Ix1(p))?;
        let mut knobs = match with_knobs {
            true => Some(output::uninit::<f64, _>(Ix2(p, k))?),
            false => None,
        };
        let best = {
            let os = overlaps.as_slice_mut().ok_or_else(not_contiguous)?;
            let fs = feasible.as_slice_mut().ok_or_else(not_contiguous)?;
            let mut kchunks = match knobs.as_mut() {
                Some(kv) => Some(
                    kv.as_slice_mut()
                        .ok_or_else(not_contiguous)?
                        .chunks_mut(BLOCK * k.max(1)),
                ),
                None => None,
            };
            let items: Vec<WorkItem> = os
                .chunks_mut(BLOCK)
                .zip(fs.chunks_mut(BLOCK))
                .enumerate()
                .map(|(i, (o, f))| {
                    let kc = kchunks.as_mut().and_then(|c| c.next());
                    (i * BLOCK, o, f, kc)
                })
                .collect();
            ctx.map(
                items,
                || self.scratch(),
                |sc, (start, o, f, kc)| {
                    self.grid_block(&plan, preserve_tiers, start, o, f, kc, sc, ctx)
                },
            )?
            .into_iter()
            .fold(Best::NONE, Best::merge)
        };
        let best = best
            .feasible
            .point()
            .or(best.any.point())
            .ok_or_else(|| Error::invalid("axes", "the grid has no finite overlap"))?;
        // SAFETY: the blocks cover 0..p and `grid_block` wrote every
        // overlap, feasibility flag and (when asked for) knob row of its
        // block; every block returned Ok.
        let (overlaps, feasible, knobs) = unsafe {
            (
                overlaps.assume_init(),
                feasible.assume_init(),
                knobs.map(|kv| kv.assume_init()),
            )
        };
        Ok(Grid {
            overlaps,
            feasible,
            knobs,
            best,
        })
    }

    fn row_eval<'a>(
        &self,
        e: &'a PairEval,
        plan: &Plan,
        idx: &[usize],
        last: usize,
    ) -> RowEval<'a> {
        let tr = |axis: usize| (plan.trig[axis].0[idx[axis]], plan.trig[axis].1[idx[axis]]);
        match e {
            PairEval::Const(v) => RowEval::Const(*v),
            PairEval::One { axis, table } if *axis == last => RowEval::Table(table),
            PairEval::One { axis, table } => RowEval::Const(table[idx[*axis]]),
            &PairEval::Phase { ax, ay, m, p, q } if ay == last => {
                let (cx, sx) = tr(ax);
                RowEval::Lin {
                    m,
                    a: p * cx + q * sx,
                    b: p * sx - q * cx,
                }
            }
            &PairEval::Phase { ax, ay, m, p, q } if ax == last => {
                let (cy, sy) = tr(ay);
                RowEval::Lin {
                    m,
                    a: p * cy - q * sy,
                    b: p * sy + q * cy,
                }
            }
            &PairEval::Phase { ax, ay, m, p, q } => {
                let ((cx, sx), (cy, sy)) = (tr(ax), tr(ay));
                RowEval::Const(m + p * (cx * cy + sx * sy) + q * (sx * cy - cx * sy))
            }
            &PairEval::Inner { x, y } => RowEval::Inner { x, y },
        }
    }

    /// Evaluate one block of points starting at `start`; returns its best points.
    #[allow(clippy::too_many_arguments)]
    fn grid_block(
        &self,
        plan: &Plan,
        preserve_tiers: bool,
        start: usize,
        overlaps: &mut [MaybeUninit<f64>],
        feasible: &mut [MaybeUninit<bool>],
        mut knobs: Option<&mut [MaybeUninit<f64>]>,
        sc: &mut Scratch,
        ctx: &Ctx,
    ) -> Result<Best> {
        let k = self.axes.len();
        let mut best = Best::NONE;
        let mut idx = std::mem::take(&mut sc.idx);
        self.decode(start, &mut idx);
        if k == 0 {
            // A single point with no axis: every pair is a constant or an inner product.
            let o = self.point_overlap(&plan.target, &idx, sc);
            let mut ok = !preserve_tiers || o <= plan.const_thr;
            for e in &plan.multi {
                ok = ok && self.point_overlap(e, &idx, sc) + ORDERING_SLACK >= o;
            }
            overlaps[0].write(o);
            feasible[0].write(ok);
            best.see(o, ok, start);
            sc.idx = idx;
            return Ok(best);
        }
        let last = k - 1;
        let (lc, ls) = (&plan.trig[last].0, &plan.trig[last].1);
        let values = &self.axes[last].values;
        let n_last = values.len();
        let mut done = 0;
        while done < overlaps.len() {
            let j0 = idx[last];
            let len = (n_last - j0).min(overlaps.len() - done);
            let (o_row, f_row) = (
                &mut overlaps[done..done + len],
                &mut feasible[done..done + len],
            );
            let target = self.row_eval(&plan.target, plan, &idx, last);
            let multi: Vec<RowEval> = plan
                .multi
                .iter()
                .map(|e| self.row_eval(e, plan, &idx, last))
                .collect();
            let mut thr = plan.const_thr;
            for (axis, t) in plan.axis_thr.iter().enumerate().take(last) {
                thr = thr.min(t[idx[axis]]);
            }
            let last_thr = &plan.axis_thr[last];
            let first = start + done - j0; // the point of index j = 0 in this row
            match (target, multi.is_empty() && !plan.any_dynamic) {
                // The hot loop of φ × φ scans: two multiply-adds, two
                // comparisons and the row's running minima per point.
                (RowEval::Lin { m, a, b }, true) => {
                    let value = |j: usize| m + a * lc[j] + b * ls[j];
                    let feasible =
                        |v: f64, j: usize| !preserve_tiers || (v <= thr && v <= last_thr[j]);
                    let row = j0..j0 + len;
                    let (low, low_ok) = lin_row(
                        LinRow {
                            m,
                            a,
                            b,
                            thr: if preserve_tiers { thr } else { f64::INFINITY },
                            cos: &lc[row.clone()],
                            sin: &ls[row.clone()],
                            last_thr: &last_thr[row.clone()],
                            preserve_tiers,
                        },
                        o_row,
                        f_row,
                    );
                    // Where the minima sit, only when they beat the block's
                    // best so far (rare): recomputing gives the same bits.
                    if low < best.any.0 {
                        if let Some(j) = row.clone().find(|&j| value(j) == low) {
                            best.any = Candidate(low, first + j);
                        }
                    }
                    if low_ok < best.feasible.0 {
                        if let Some(j) = row.clone().find(|&j| {
                            let v = value(j);
                            v == low_ok && feasible(v, j)
                        }) {
                            best.feasible = Candidate(low_ok, first + j);
                        }
                    }
                }
                _ => {
                    for (j, (o, f)) in (j0..j0 + len).zip(o_row.iter_mut().zip(f_row.iter_mut())) {
                        idx[last] = j;
                        if plan.any_dynamic {
                            self.build_dynamic(&idx, &plan.dynamic, sc, ctx)?;
                        }
                        let v = self.row_value(target, j, &idx, sc, lc, ls);
                        let ok = !preserve_tiers
                            || (v <= thr
                                && v <= last_thr[j]
                                && multi.iter().all(|&e| {
                                    self.row_value(e, j, &idx, sc, lc, ls) + ORDERING_SLACK >= v
                                }));
                        o.write(v);
                        f.write(ok);
                        best.see(v, ok, first + j);
                    }
                }
            }
            if let Some(kv) = knobs.as_deref_mut() {
                let rows = &mut kv[done * k..(done + len) * k];
                for (r, j) in rows.chunks_mut(k).zip(j0..) {
                    for (axis, x) in r.iter_mut().enumerate().take(last) {
                        x.write(self.axes[axis].values[idx[axis]]);
                    }
                    r[last].write(values[j]);
                }
            }
            done += len;
            // Next row: reset the last index and carry into the others.
            idx[last] = 0;
            for axis in (0..last).rev() {
                idx[axis] += 1;
                if idx[axis] < self.axes[axis].values.len() {
                    break;
                }
                idx[axis] = 0;
            }
        }
        sc.idx = idx;
        Ok(best)
    }

    #[allow(clippy::too_many_arguments)]
    fn row_value(
        &self,
        e: RowEval,
        j: usize,
        idx: &[usize],
        sc: &Scratch,
        lc: &[f64],
        ls: &[f64],
    ) -> f64 {
        match e {
            RowEval::Const(v) => v,
            RowEval::Table(t) => t[j],
            RowEval::Lin { m, a, b } => m + a * lc[j] + b * ls[j],
            RowEval::Inner { x, y } => self
                .ip(self.state(x, idx, sc), self.state(y, idx, sc))
                .norm_sqr(),
        }
    }

    /// Pair overlap at the single point of a grid without axes: tables and
    /// phase forms need an axis, so only constants and inner products occur.
    fn point_overlap(&self, e: &PairEval, idx: &[usize], sc: &Scratch) -> f64 {
        match e {
            PairEval::Const(v) => *v,
            PairEval::Inner { x, y } => self
                .ip(self.state(*x, idx, sc), self.state(*y, idx, sc))
                .norm_sqr(),
            PairEval::One { .. } | PairEval::Phase { .. } => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Axis;
    use super::*;
    use crate::gram::gram;
    use ndarray::Array2;

    /// The spec's optimum by brute force: lowest-index minimum among feasible
    /// points, else overall.
    fn oracle_best(o: &[f64], f: &[bool]) -> Option<usize> {
        let pick = |only: bool| {
            (0..o.len())
                .filter(|&i| f[i] || !only)
                .fold(None, |b: Option<usize>, i| match b {
                    Some(j) if o[j] <= o[i] => Some(j),
                    _ => Some(i),
                })
        };
        pick(true).or_else(|| pick(false))
    }
    use std::f64::consts::PI;

    fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n.max(2) - 1) as f64)
            .collect()
    }

    /// Brute force: write the point's values into the table, take the Gram.
    fn brute(
        enc: &Encoding,
        base: &Array2<f64>,
        axes: &[Axis],
        tiers: &Tiers,
        (a, b): (usize, usize),
        p: usize,
    ) -> (f64, bool, f64) {
        let mut t = base.clone();
        let w = base.ncols();
        let mut rest = p;
        let mut idx = vec![0; axes.len()];
        for (k, ax) in axes.iter().enumerate().rev() {
            idx[k] = rest % ax.values.len();
            rest /= ax.values.len();
        }
        for (ax, &i) in axes.iter().zip(&idx) {
            for &s in &ax.slots {
                t[[s / w, s % w]] = ax.values[i];
            }
        }
        let g = gram(enc, t.view(), &Ctx::serial()).unwrap();
        let ov = |x: usize, y: usize| g[[x, y]].norm_sqr();
        let c = ov(a, b);
        // the closest sibling margin, to skip points that sit on the slack
        let margin = tiers
            .siblings(a)
            .map(|s| (a, s))
            .chain(tiers.siblings(b).map(|s| (b, s)))
            .map(|(x, s)| (ov(x, s) + ORDERING_SLACK - c).abs())
            .fold(f64::INFINITY, f64::min);
        (c, tiers.ordering_ok(a, b, ov), margin)
    }

    fn check(
        enc: Encoding,
        base: Array2<f64>,
        axes: Vec<Axis>,
        clusters: Vec<usize>,
        target: (usize, usize),
    ) {
        let n_clusters = clusters.iter().max().unwrap() + 1;
        let tiers = Tiers::new(clusters, n_clusters).unwrap();
        let scan = Scan::new(enc.clone(), base.view(), axes.clone(), &Ctx::serial()).unwrap();
        let p = scan.n_points();
        let k = axes.len();
        for (preserve, ctx) in [
            (false, Ctx::serial()),
            (true, Ctx::serial()),
            (true, Ctx::parallel(3)),
        ] {
            let g = scan.grid(&tiers, target, preserve, true, &ctx).unwrap();
            let (o, f) = (g.overlaps.to_vec(), g.feasible.to_vec());
            let kv: Vec<f64> = g.knobs.unwrap().iter().copied().collect();
            assert_eq!(Some(g.best), oracle_best(&o, &f));
            let mut checked = 0;
            for i in 0..p {
                let (want, ok, margin) = brute(&enc, &base, &axes, &tiers, target, i);
                assert!(
                    (o[i] - want).abs() < 1e-13,
                    "preserve {preserve} point {i}: {} vs {want} {:?}",
                    o[i],
                    &o[..4]
                );
                if margin > 1e-12 {
                    assert_eq!(f[i], !preserve || ok, "point {i} feasibility");
                    checked += 1;
                }
            }
            assert!(checked > p / 2);
            let mut rest = p - 1;
            for kk in (0..k).rev() {
                let n = axes[kk].values.len();
                assert_eq!(kv[(p - 1) * k + kk], axes[kk].values[rest % n]);
                rest /= n;
            }
        }
    }

    fn mps_table(n: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, 4), |(f, c)| {
            let x = f as f64;
            [0.3 + 0.11 * x, -0.6 + 0.23 * x, 0.05 * x - 0.2, 0.4 * x][c]
        })
    }

    #[test]
    fn phase_axes_match_brute_force() {
        let axes = vec![
            Axis {
                slots: vec![3],
                values: linspace(0.0, 2.0 * PI, 13),
            },
            Axis {
                slots: vec![3 * 4 + 3],
                values: linspace(0.0, 2.0 * PI, 11),
            },
        ];
        check(
            Encoding::Mps,
            mps_table(6),
            axes,
            vec![0, 0, 0, 1, 1, 1],
            (0, 3),
        );
    }

    #[test]
    fn cluster_shared_three_axes_and_dynamic_features() {
        // axis 0 moves cluster 0 (φ), axis 1 moves feature 3's φ, axis 2 its α:
        // feature 3 is rebuilt per point.
        let axes = vec![
            Axis {
                slots: vec![3, 4 + 3, 2 * 4 + 3],
                values: linspace(0.0, 2.0 * PI, 5),
            },
            Axis {
                slots: vec![3 * 4 + 3],
                values: linspace(0.0, 2.0 * PI, 4),
            },
            Axis {
                slots: vec![3 * 4],
                values: linspace(-1.0, 1.0, 3),
            },
        ];
        check(
            Encoding::Mps,
            mps_table(6),
            axes,
            vec![0, 0, 0, 1, 1, 1],
            (0, 3),
        );
    }

    #[test]
    fn rung3_phase_columns_and_mixed_columns() {
        let base = Array2::from_shape_fn((4, 6), |(f, c)| {
            let x = f as f64;
            [
                0.2 * x,
                -0.5 + 0.3 * x,
                0.1,
                0.3 * x,
                0.7 - 0.1 * x,
                0.5 * x,
            ][c]
        });
        // φ × ψ_aux: different masks → inner products
        let mixed = vec![
            Axis {
                slots: vec![3],
                values: linspace(0.0, 2.0 * PI, 7),
            },
            Axis {
                slots: vec![2 * 6 + 5],
                values: linspace(0.0, 2.0 * PI, 6),
            },
        ];
        check(
            Encoding::Rung3,
            base.clone(),
            mixed,
            vec![0, 0, 1, 1],
            (0, 2),
        );
        // ψ_aux × ψ_aux and φ × φ: closed forms
        for col in [3, 5] {
            let axes = vec![
                Axis {
                    slots: vec![col],
                    values: linspace(0.0, 2.0 * PI, 9),
                },
                Axis {
                    slots: vec![2 * 6 + col],
                    values: linspace(0.0, 2.0 * PI, 8),
                },
            ];
            check(
                Encoding::Rung3,
                base.clone(),
                axes,
                vec![0, 0, 1, 1],
                (0, 2),
            );
        }
    }

    #[test]
    fn hea_axes_use_inner_products() {
        let hea = crate::Hea::new(
            3,
            2,
            vec![crate::Rotation::Ry, crate::Rotation::Rz],
            crate::Entangler::Ring,
        )
        .unwrap();
        let w = hea.width();
        let base = Array2::from_shape_fn((4, w), |(f, c)| ((f * w + c) as f64 * 0.37).sin());
        let axes = vec![
            Axis {
                slots: vec![0, w],
                values: linspace(-PI, PI, 6),
            },
            Axis {
                slots: vec![2 * w + 7],
                values: linspace(-PI, PI, 5),
            },
        ];
        check(Encoding::Hea(hea), base, axes, vec![0, 0, 1, 1], (0, 2));
    }

    #[test]
    fn single_axis_and_single_value_grids() {
        let axes = vec![Axis {
            slots: vec![3],
            values: linspace(0.0, 2.0 * PI, 9),
        }];
        check(Encoding::Mps, mps_table(4), axes, vec![0, 0, 1, 1], (0, 2));
        let axes = vec![
            Axis {
                slots: vec![3],
                values: vec![0.5],
            },
            Axis {
                slots: vec![2 * 4 + 3],
                values: vec![2.5],
            },
        ];
        check(Encoding::Mps, mps_table(4), axes, vec![0, 0, 1, 1], (0, 2));
    }
}
