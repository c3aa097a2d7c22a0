//! States, Gram matrices, the `M + V·cos δ` table and Schmidt ranks.

use crate::ctx::Ctx;
use crate::encoding::{mps, rung3, Encoding};
use crate::{budget, size, Error, Result, C64};
use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3, Axis};

/// Singular values at or below this count as zero in [`schmidt_rank`].
pub const SCHMIDT_TOL: f64 = 1e-9;

/// `⟨a|b⟩ = Σ conj(a_k)·b_k`.
#[inline]
pub fn inner(a: &[C64], b: &[C64]) -> C64 {
    let mut acc = C64::new(0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        acc += x.conj() * y;
    }
    acc
}

/// A knob table the encoding can read, as one contiguous row-major copy.
fn checked_table(enc: &Encoding, table: &ArrayView2<f64>) -> Result<Vec<f64>> {
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
    let flat: Vec<f64> = table.iter().copied().collect();
    enc.check_table(&flat, table.nrows())?;
    Ok(flat)
}

/// States of every row of a knob table: `n_features × dim`.
pub fn states(enc: &Encoding, table: ArrayView2<f64>, ctx: &Ctx) -> Result<Array2<C64>> {
    let flat = checked_table(enc, &table)?;
    let (n, w, d) = (table.nrows(), enc.width(), enc.dim());
    budget::check(
        "params",
        &format!("the states of {n} features of dimension {d}"),
        size::bytes_of::<C64>(&[n, d]),
    )?;
    let mut out = vec![C64::new(0.0, 0.0); n * d];
    let items = out
        .chunks_mut(d.max(1))
        .zip(flat.chunks(w.max(1)))
        .collect();
    ctx.each(items, |(s, row)| enc.state_into(row, s, ctx))?;
    Array2::from_shape_vec((n, d), out).map_err(shape_error)
}

/// Buffers are sized from the shapes they become; this is only the error a
/// mismatch would be.
fn shape_error(e: ndarray::ShapeError) -> Error {
    Error::invalid("internal", format!("output shape: {e}"))
}

/// Gram of state rows: `G_ij = ⟨ψ_i|ψ_j⟩`, Hermitian by construction.
pub fn gram_of_states(states: ArrayView2<C64>) -> Array2<C64> {
    let n = states.nrows();
    let rows: Vec<Vec<C64>> = states.rows().into_iter().map(|r| r.to_vec()).collect();
    let mut g = Array2::<C64>::zeros((n, n));
    for i in 0..n {
        for j in i..n {
            let v = inner(&rows[i], &rows[j]);
            g[[i, j]] = v;
            g[[j, i]] = v.conj();
        }
    }
    g
}

/// Gram of a knob table, through the encoding's representation and inner
/// product (Rung-3: exactly `G_MPS · a`, see [`Encoding::repr_into`]).
pub fn gram(enc: &Encoding, table: ArrayView2<f64>, ctx: &Ctx) -> Result<Array2<C64>> {
    let flat = checked_table(enc, &table)?;
    let n = table.nrows();
    budget::check(
        "params",
        &format!("a Gram of {n} features"),
        gram_bytes(enc, n, 1),
    )?;
    gram_of_table(enc, &flat, n, ctx)
}

/// Bytes of `batch` Grams of `n` features plus one table of representations.
fn gram_bytes(enc: &Encoding, n: usize, batch: usize) -> Option<usize> {
    size::total(&[
        size::bytes_of::<C64>(&[batch, n, n]),
        size::bytes_of::<C64>(&[n, enc.repr_dim()]),
    ])
}

/// Upper triangle in parallel over rows, then the lower one mirrored, so
/// `G_ji` is exactly `conj(G_ij)`.
fn gram_of_table(enc: &Encoding, flat: &[f64], n: usize, ctx: &Ctx) -> Result<Array2<C64>> {
    let (w, d) = (enc.width(), enc.repr_dim());
    let mut reps = vec![C64::new(0.0, 0.0); n * d];
    let items = reps
        .chunks_mut(d.max(1))
        .zip(flat.chunks(w.max(1)))
        .collect();
    ctx.each(items, |(out, row)| enc.repr_into(row, out, ctx))?;
    let mut g = vec![C64::new(0.0, 0.0); n * n];
    let rows = g.chunks_mut(n.max(1)).enumerate().collect();
    ctx.each(rows, |(i, row): (usize, &mut [C64])| {
        let a = &reps[i * d..(i + 1) * d];
        for j in i..n {
            row[j] = enc.inner(a, &reps[j * d..(j + 1) * d]);
        }
        Ok(())
    })?;
    for i in 1..n {
        ctx.check()?;
        for j in 0..i {
            g[i * n + j] = g[j * n + i].conj();
        }
    }
    Array2::from_shape_vec((n, n), g).map_err(shape_error)
}

/// Grams of many knob tables at once (`batch × n_features × width`), in parallel.
pub fn gram_batch(enc: &Encoding, tables: ArrayView3<f64>, ctx: &Ctx) -> Result<Array3<C64>> {
    let (b, n, _) = tables.dim();
    let flats = tables
        .axis_iter(Axis(0))
        .map(|t| checked_table(enc, &t))
        .collect::<Result<Vec<_>>>()?;
    budget::check(
        "tables",
        &format!("{b} Grams of {n} features"),
        size::total(&[gram_bytes(enc, n, b), gram_bytes(enc, n, 1)]),
    )?;
    let mut out = Array3::<C64>::zeros((b, n, n));
    let items = out.axis_iter_mut(Axis(0)).zip(&flats).collect();
    ctx.each(items, |(mut g, t)| {
        g.assign(&gram_of_table(enc, t, n, ctx)?);
        Ok(())
    })?;
    Ok(out)
}

/// Per-pair `(M, V, floor)` of the phase law `|G_ij|² = M + V·cos(φ_i − φ_j)`
/// from the closed-form branch overlaps (valid for any current φ).  Rung-3
/// rows scale both terms by the φ-independent `|a_ij|²`.  HEA has no such law.
pub fn branch_law(
    enc: &Encoding,
    table: ArrayView2<f64>,
    ctx: &Ctx,
) -> Result<(Array2<f64>, Array2<f64>, Array2<f64>)> {
    let flat = checked_table(enc, &table)?;
    if let Encoding::Hea(_) = enc {
        return Err(Error::invalid(
            "encoding",
            "HEA_Rung2 has no closed-form M + V·cos δ law (no structural floor)",
        ));
    }
    let (n, w) = (table.nrows(), enc.width());
    budget::check(
        "params",
        &format!("the phase law of {n} features"),
        size::bytes_of::<f64>(&[3, n, n]),
    )?;
    let rows: Vec<&[f64]> = flat.chunks(w).collect();
    let (mut m, mut v, mut floor) = (
        Array2::zeros((n, n)),
        Array2::zeros((n, n)),
        Array2::zeros((n, n)),
    );
    let items = m
        .axis_iter_mut(Axis(0))
        .zip(v.axis_iter_mut(Axis(0)))
        .zip(floor.axis_iter_mut(Axis(0)))
        .enumerate()
        .collect();
    ctx.each(items, |(i, ((mut mr, mut vr), mut fr))| {
        for j in 0..n {
            let (mut mij, mut vij) = mps::branch_law(rows[i], rows[j]);
            if *enc == Encoding::Rung3 {
                let ai = rung3::amp_branch(rows[i][4], rows[i][5]);
                let aj = rung3::amp_branch(rows[j][4], rows[j][5]);
                let a2 = inner(&ai, &aj).norm_sqr();
                mij *= a2;
                vij *= a2;
            }
            mr[j] = mij;
            vr[j] = vij;
            fr[j] = (mij - vij.abs()).max(0.0);
        }
        Ok(())
    })?;
    Ok((m, v, floor))
}

/// Schmidt rank (qubit 0 | rest) of every row's state, one state per
/// worker at a time (the states themselves are never all held).
pub fn schmidt_ranks(enc: &Encoding, table: ArrayView2<f64>, ctx: &Ctx) -> Result<Array1<u8>> {
    let flat = checked_table(enc, &table)?;
    let (w, d) = (enc.width(), enc.dim());
    budget::check(
        "params",
        &format!("per-worker states of dimension {d}"),
        size::bytes_of::<C64>(&[ctx.threads(), d]),
    )?;
    let ranks = ctx.map(
        flat.chunks(w.max(1)).collect(),
        || vec![C64::new(0.0, 0.0); d],
        |state, row| {
            enc.state_into(row, state, ctx)?;
            Ok(schmidt_rank(state))
        },
    )?;
    Ok(Array1::from(ranks))
}

/// Schmidt rank across the cut qubit 0 | the rest: the number of singular
/// values of the `2 × dim/2` reshape with rows `a`, `b` above [`SCHMIDT_TOL`].
/// The determinant of the row Gram is `‖a‖²·‖b⊥‖²` with `b⊥` the part of `b`
/// orthogonal to `a` (equal to the sum of squared 2×2 minors, but linear in
/// the dimension); projecting first keeps it accurate for product states,
/// where `‖a‖²‖b‖² − |⟨a|b⟩|²` would cancel catastrophically.
pub fn schmidt_rank(state: &[C64]) -> u8 {
    let h = state.len() / 2;
    let (a, b) = state.split_at(h);
    let na: f64 = a.iter().map(|x| x.norm_sqr()).sum();
    let nb: f64 = b.iter().map(|x| x.norm_sqr()).sum();
    let det = if na > 0.0 {
        let c = inner(a, b) / na;
        let perp: f64 = a.iter().zip(b).map(|(x, y)| (y - c * x).norm_sqr()).sum();
        na * perp
    } else {
        0.0
    };
    let tr = na + nb;
    let lmax = 0.5 * (tr + (tr * tr - 4.0 * det).max(0.0).sqrt());
    let lmin = if lmax > 0.0 { det / lmax } else { 0.0 };
    u8::from(lmax.sqrt() > SCHMIDT_TOL) + u8::from(lmin.sqrt() > SCHMIDT_TOL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn quickstart_gram_is_hermitian_with_unit_diagonal() {
        let t = array![
            [0.0, -0.5, 0.0, 0.0],
            [0.0, -0.5, 0.0, 0.0],
            [0.0, 0.5, 0.0, 0.3],
            [0.0, 0.5, 0.0, 0.0]
        ];
        let g = gram(&Encoding::Mps, t.view(), &Ctx::serial()).unwrap();
        for i in 0..4 {
            assert!((g[[i, i]].re - 1.0).abs() < 1e-15);
            for j in 0..4 {
                assert!((g[[i, j]] - g[[j, i]].conj()).norm() < 1e-16);
            }
        }
        assert!((g[[0, 3]].norm_sqr() - 0.5f64.cos().powi(4)).abs() < 1e-15);
    }

    #[test]
    fn rejects_non_finite_knobs() {
        let t = array![[0.0, f64::NAN, 0.0, 0.0]];
        assert!(matches!(
            gram(&Encoding::Mps, t.view(), &Ctx::serial()),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn schmidt_rank_follows_alpha() {
        for (alpha, rank) in [
            (0.0, 1),
            (0.7, 2),
            (std::f64::consts::PI, 1),
            (2.0 * std::f64::consts::PI, 1),
        ] {
            let s = mps::amplitudes(alpha, 0.2, 0.3, 1.0);
            assert_eq!(schmidt_rank(&s), rank, "alpha={alpha}");
        }
    }

    #[test]
    fn schmidt_rank_agrees_with_the_minor_sum() {
        // Brute-force Cauchy–Binet oracle on deterministic 4-qubit states:
        // a generic (entangled) one and a product |u⟩⊗|v⟩.
        let minors = |s: &[C64]| {
            let h = s.len() / 2;
            let (a, b) = s.split_at(h);
            let mut det = 0.0;
            for k in 0..h {
                for l in k + 1..h {
                    det += (a[k] * b[l] - a[l] * b[k]).norm_sqr();
                }
            }
            det
        };
        let generic: Vec<C64> = (0..16)
            .map(|k| C64::new((0.3 * k as f64).sin(), (0.7 * k as f64 + 0.1).cos()))
            .collect();
        assert!(minors(&generic) > 1e-3);
        assert_eq!(schmidt_rank(&generic), 2);
        let u = [C64::new(0.6, 0.0), C64::new(0.0, 0.8)];
        let product: Vec<C64> = u
            .iter()
            .flat_map(|x| generic[..8].iter().map(move |y| x * y))
            .collect();
        assert!(minors(&product) < 1e-24);
        assert_eq!(schmidt_rank(&product), 1);
        assert_eq!(schmidt_rank(&[C64::new(0.0, 0.0); 8]), 0);
    }

    #[test]
    fn floor_is_min_over_delta() {
        let t = array![[0.9, 0.2, 0.1, 0.0], [0.9, -0.4, 0.3, 0.0]];
        let (m, v, f) = branch_law(&Encoding::Mps, t.view(), &Ctx::serial()).unwrap();
        assert!((f[[0, 1]] - (m[[0, 1]] - v[[0, 1]].abs())).abs() < 1e-16);
        assert!((f[[0, 1]] - 0.1801553).abs() < 1e-6);
    }
}
