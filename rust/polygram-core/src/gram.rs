//! States, Gram matrices, the `M + V·cos δ` table and Schmidt ranks.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

use crate::encoding::{mps, rung3, Encoding};
use crate::{Error, Result, C64};

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

fn check(enc: &Encoding, table: &ArrayView2<f64>) -> Result<()> {
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
    enc.check_table(&flat, table.nrows())
}

/// States of every row of a knob table: `n_features × dim`.
pub fn states(enc: &Encoding, table: ArrayView2<f64>) -> Result<Array2<C64>> {
    check(enc, &table)?;
    let mut out = Array2::<C64>::zeros((table.nrows(), enc.dim()));
    for (row, mut s) in table.rows().into_iter().zip(out.rows_mut()) {
        let r: Vec<f64> = row.to_vec();
        enc.state_into(&r, s.as_slice_mut().expect("fresh arrays are contiguous"));
    }
    Ok(out)
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
pub fn gram(enc: &Encoding, table: ArrayView2<f64>) -> Result<Array2<C64>> {
    check(enc, &table)?;
    Ok(gram_unchecked(enc, table))
}

fn gram_unchecked(enc: &Encoding, table: ArrayView2<f64>) -> Array2<C64> {
    let (n, d) = (table.nrows(), enc.repr_dim());
    let mut reps = vec![C64::new(0.0, 0.0); n * d];
    for (row, out) in table.rows().into_iter().zip(reps.chunks_mut(d)) {
        enc.repr_into(&row.to_vec(), out);
    }
    let mut g = Array2::<C64>::zeros((n, n));
    for i in 0..n {
        for j in i..n {
            let v = enc.inner(&reps[i * d..(i + 1) * d], &reps[j * d..(j + 1) * d]);
            g[[i, j]] = v;
            g[[j, i]] = v.conj();
        }
    }
    g
}

/// Grams of many knob tables at once (`batch × n_features × width`), in parallel.
pub fn gram_batch(enc: &Encoding, tables: ArrayView3<f64>) -> Result<Array3<C64>> {
    let (b, n, _) = tables.dim();
    for t in tables.axis_iter(Axis(0)) {
        check(enc, &t)?;
    }
    let mut out = Array3::<C64>::zeros((b, n, n));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(tables.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut g, t)| g.assign(&gram_unchecked(enc, t)));
    Ok(out)
}

/// Per-pair `(M, V, floor)` of the phase law `|G_ij|² = M + V·cos(φ_i − φ_j)`
/// from the closed-form branch overlaps (valid for any current φ).  Rung-3
/// rows scale both terms by the φ-independent `|a_ij|²`.  HEA has no such law.
pub fn branch_law(
    enc: &Encoding,
    table: ArrayView2<f64>,
) -> Result<(Array2<f64>, Array2<f64>, Array2<f64>)> {
    check(enc, &table)?;
    if let Encoding::Hea(_) = enc {
        return Err(Error::invalid(
            "encoding",
            "HEA_Rung2 has no closed-form M + V·cos δ law (no structural floor)",
        ));
    }
    let n = table.nrows();
    let rows: Vec<Vec<f64>> = table.rows().into_iter().map(|r| r.to_vec()).collect();
    let (mut m, mut v) = (Array2::zeros((n, n)), Array2::zeros((n, n)));
    for i in 0..n {
        for j in 0..n {
            let (mut mij, mut vij) = mps::branch_law(&rows[i], &rows[j]);
            if *enc == Encoding::Rung3 {
                let ai = rung3::amp_branch(rows[i][4], rows[i][5]);
                let aj = rung3::amp_branch(rows[j][4], rows[j][5]);
                let a2 = inner(&ai, &aj).norm_sqr();
                mij *= a2;
                vij *= a2;
            }
            m[[i, j]] = mij;
            v[[i, j]] = vij;
        }
    }
    let floor = &m - &v.mapv(f64::abs);
    Ok((m, v, floor.mapv(|x| x.max(0.0))))
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
        let g = gram(&Encoding::Mps, t.view()).unwrap();
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
            gram(&Encoding::Mps, t.view()),
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
        let (m, v, f) = branch_law(&Encoding::Mps, t.view()).unwrap();
        assert!((f[[0, 1]] - (m[[0, 1]] - v[[0, 1]].abs())).abs() < 1e-16);
        assert!((f[[0, 1]] - 0.1801553).abs() < 1e-6);
    }
}
