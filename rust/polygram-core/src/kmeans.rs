//! The assignment step of the importer's k-means (spec 17 §17.9.4): the
//! nearest centroid of every row by the root of the summed float64 squared
//! differences, ties to the lowest centroid index.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use crate::cosine::Real;
use crate::{Error, Result};

/// `Σ (x − c)²` in float64 with eight interleaved accumulators (vectorisable;
/// the order depends only on the length).
#[inline]
fn sq_dist<T: Real>(xs: &[T], cs: &[f64]) -> f64 {
    let mut acc = [0f64; 8];
    let (xc, cc) = (xs.chunks_exact(8), cs.chunks_exact(8));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(cc.remainder())
        .map(|(&a, &b)| (a.to_f64() - b) * (a.to_f64() - b))
        .sum();
    for (a, b) in xc.zip(cc) {
        for k in 0..8 {
            let t = a[k].to_f64() - b[k];
            acc[k] += t * t;
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `(labels, min squared distance)` of every row of `rows` against `centroids`.
pub fn kmeans_assign<T: Real>(
    rows: ArrayView2<'_, T>,
    centroids: ArrayView2<'_, f64>,
) -> Result<(Vec<usize>, Vec<f64>)> {
    let (k, d) = centroids.dim();
    if k == 0 {
        return Err(Error::invalid("centroids", "got none; need at least one"));
    }
    if rows.ncols() != d {
        return Err(Error::invalid(
            "centroids",
            format!(
                "have {d} columns for rows of {}; expected equal widths",
                rows.ncols()
            ),
        ));
    }
    if let Some(((r, c), v)) = centroids.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid(
            "centroids",
            format!("entry [{r}, {c}] is {v}; centroids must be finite"),
        ));
    }
    crate::cosine::check_finite("rows", rows)?;
    let out: Vec<(usize, f64)> = rows
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|x| {
            let mut best = (0usize, f64::INFINITY, f64::INFINITY);
            let xs = x.as_slice();
            for (c, cen) in centroids.axis_iter(Axis(0)).enumerate() {
                let sq = match (xs, cen.as_slice()) {
                    (Some(xs), Some(cs)) => sq_dist(xs, cs),
                    _ => x
                        .iter()
                        .zip(cen.iter())
                        .map(|(&a, &b)| {
                            let t = a.to_f64() - b;
                            t * t
                        })
                        .sum(),
                };
                // compare the roots, as upstream does: distinct squares may share a root
                let dist = sq.sqrt();
                if dist < best.1 {
                    best = (c, dist, sq);
                }
            }
            (best.0, best.2)
        })
        .collect();
    Ok(out.into_iter().unzip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn nearest_with_ties_to_the_lowest() {
        let rows = array![[0.0f32, 0.0], [2.0, 0.0], [1.0, 0.0]];
        let cen = array![[0.0, 0.0], [2.0, 0.0]];
        let (l, d) = kmeans_assign(rows.view(), cen.view()).unwrap();
        assert_eq!(l, vec![0, 1, 0]);
        assert_eq!(d, vec![0.0, 0.0, 1.0]);
        assert!(kmeans_assign(rows.view(), array![[0.0]].view()).is_err());
        assert!(kmeans_assign(rows.view(), array![[f64::NAN, 0.0]].view()).is_err());
    }
}
