//! Expert routing (spec 17 §17.10): an expert's score is the float64 sum of
//! its members' activations, added in feature order; experts are ranked by
//! descending score, ties to the lower index.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::{Error, Result};

/// `out[t]` = the first `top_k` experts of token `t` (a `T × top_k` matrix).
pub fn route_batch(
    feature_to_expert: &[usize],
    n_experts: usize,
    activations: ArrayView2<'_, f64>,
    top_k: usize,
) -> Result<Array2<usize>> {
    let (t, n) = activations.dim();
    if n != feature_to_expert.len() {
        return Err(Error::invalid(
            "activations",
            format!(
                "has {n} columns for {} features; expected one per feature",
                feature_to_expert.len()
            ),
        ));
    }
    if top_k < 1 || top_k > n_experts {
        return Err(Error::invalid(
            "top_k",
            format!("got {top_k}; allowed 1..={n_experts} (the expert count)"),
        ));
    }
    if let Some(&e) = feature_to_expert.iter().find(|&&e| e >= n_experts) {
        return Err(Error::invalid(
            "feature_to_expert",
            format!("expert {e} is not below {n_experts}"),
        ));
    }
    if let Some(((r, c), v)) = activations.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid(
            "activations",
            format!("entry [{r}, {c}] is {v}; activations must be finite"),
        ));
    }
    let mut out = Array2::<usize>::zeros((t, top_k));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(activations.axis_iter(Axis(0)).into_par_iter())
        .for_each_init(
            || {
                (
                    vec![0f64; n_experts],
                    (0..n_experts).collect::<Vec<usize>>(),
                )
            },
            |(score, order), (mut dst, row)| {
                score.fill(0.0);
                for (&e, &a) in feature_to_expert.iter().zip(row.iter()) {
                    score[e] += a;
                }
                for (k, o) in order.iter_mut().enumerate() {
                    *o = k;
                }
                // scores are finite: a total order, stable for ties
                order.sort_by(|&x, &y| score[y].total_cmp(&score[x]).then(x.cmp(&y)));
                for (d, &e) in dst.iter_mut().zip(order.iter()) {
                    *d = e;
                }
            },
        );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ranks_by_sum_with_ties_to_the_lower_index() {
        let f2e = [0, 1, 1, 2, 0];
        let a = array![
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 0.2, 0.3, 0.5, -0.6],
            [0.1, 0.0, 0.0, 0.9, 0.0]
        ];
        let r = route_batch(&f2e, 3, a.view(), 2).unwrap();
        assert_eq!(r, array![[0, 1], [1, 2], [2, 0]]);
        assert!(route_batch(&f2e, 3, a.view(), 4).is_err());
        assert!(route_batch(&f2e, 3, a.view(), 0).is_err());
        assert!(route_batch(&f2e[..4], 3, a.view(), 1).is_err());
        let bad = array![[f64::NAN, 0.0, 0.0, 0.0, 0.0]];
        assert!(route_batch(&f2e, 3, bad.view(), 1).is_err());
    }
}
