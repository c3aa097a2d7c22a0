//! The co-firing graph (spec 17 §17.3.4): features `i < j` are joined when
//! the Jaccard index of their firing sets over the tokens of an activation
//! trace reaches a threshold.  Counts are exact integers (popcounts of
//! bitset ANDs); pairs whose Jaccard upper bound `min(n_i, n_j) / max(n_i,
//! n_j)` is already below the threshold are skipped without counting (exact:
//! correctly rounded division is monotone).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::cosine::{check_row_count, Edges, ROW_BLOCK};
use crate::{Error, Result};

/// One bitset of `⌈T/64⌉` words per feature.
pub struct FiringSets {
    words: usize,
    bits: Vec<u64>,
    counts: Vec<u64>,
}

impl FiringSets {
    /// `fires[t, i] != 0` means feature `i` fires at token `t` (a `T × N` matrix).
    pub fn new(fires: ArrayView2<'_, u8>) -> Result<Self> {
        let (t, n) = fires.dim();
        check_row_count("activation_traces", n)?;
        let words = t.div_ceil(64);
        let len = words
            .checked_mul(n)
            .ok_or_else(|| Error::invalid("activation_traces", "bitset size overflows"))?;
        let mut bits = vec![0u64; len];
        bits.par_chunks_mut(words.max(1))
            .take(n)
            .enumerate()
            .for_each(|(i, set)| {
                for (tok, &v) in fires.column(i).iter().enumerate() {
                    if v != 0 {
                        set[tok / 64] |= 1u64 << (tok % 64);
                    }
                }
            });
        let counts = (0..n)
            .map(|i| {
                bits[i * words..(i + 1) * words]
                    .iter()
                    .map(|w| u64::from(w.count_ones()))
                    .sum()
            })
            .collect();
        Ok(FiringSets {
            words,
            bits,
            counts,
        })
    }

    pub fn n_features(&self) -> usize {
        self.counts.len()
    }

    /// Tokens at which each feature fires.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    fn set(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }

    /// Tokens at which both `i` and `j` fire.
    pub fn both(&self, i: usize, j: usize) -> u64 {
        self.set(i)
            .iter()
            .zip(self.set(j))
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum()
    }
}

/// Does the pair `(i, j)` join the graph?  `n_ij / (n_i + n_j − n_ij) >= t`
/// in float64, with no edge when neither fires.
fn joins(sets: &FiringSets, i: usize, j: usize, t: f64) -> bool {
    let (ni, nj) = (sets.counts[i], sets.counts[j]);
    let (lo, hi) = (ni.min(nj), ni.max(nj));
    if hi == 0 || (lo as f64) / (hi as f64) < t {
        return false;
    }
    let both = sets.both(i, j);
    let either = ni + nj - both;
    (both as f64) / (either as f64) >= t
}

/// Every pair `i < j` of the co-firing graph, row-major, or the count
/// reached when more than `budget` pairs qualify.  `threshold` must lie in
/// (0, 1].
pub fn co_firing_pairs(sets: &FiringSets, threshold: f64, budget: usize) -> Result<Edges> {
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(Error::invalid(
            "co_firing_threshold",
            format!("got {threshold}; allowed 0 < x <= 1"),
        ));
    }
    let n = sets.n_features();
    let found = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let blocks: Vec<Vec<(u32, u32)>> = (0..n.div_ceil(ROW_BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut out = Vec::new();
            for i in b * ROW_BLOCK..((b + 1) * ROW_BLOCK).min(n) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let before = out.len();
                // i < j < n <= u32::MAX (checked when the sets were built)
                out.extend(
                    (i + 1..n)
                        .filter(|&j| joins(sets, i, j, threshold))
                        .map(|j| (i as u32, j as u32)),
                );
                let added = out.len() - before;
                if added > 0 && found.fetch_add(added, Ordering::Relaxed) + added > budget {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            out
        })
        .collect();
    if stop.load(Ordering::Relaxed) {
        return Ok(Edges::OverBudget {
            reached: found.load(Ordering::Relaxed),
        });
    }
    Ok(Edges::Complete(blocks.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn traces(t: usize, n: usize, seed: u64) -> Array2<u8> {
        let mut s = seed.max(1);
        Array2::from_shape_fn((t, n), |(_, i)| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            u8::from(s % 100 < 10 + (i as u64 % 5) * 10)
        })
    }

    #[test]
    fn jaccard_graph_matches_brute_force() {
        let a = traces(200, 70, 3);
        let sets = FiringSets::new(a.view()).unwrap();
        let got = co_firing_pairs(&sets, 0.2, usize::MAX)
            .unwrap()
            .complete()
            .unwrap();
        let mut want = Vec::new();
        for i in 0..70 {
            for j in i + 1..70 {
                let (mut both, mut either) = (0u64, 0u64);
                for t in 0..200 {
                    let (x, y) = (a[[t, i]] != 0, a[[t, j]] != 0);
                    both += u64::from(x && y);
                    either += u64::from(x || y);
                }
                if either > 0 && both as f64 / either as f64 >= 0.2 {
                    want.push((i as u32, j as u32));
                }
            }
        }
        assert!(!want.is_empty());
        assert_eq!(got, want);
        assert_eq!(
            sets.counts()[0],
            (0..200).filter(|&t| a[[t, 0]] != 0).count() as u64
        );
    }

    #[test]
    fn silent_features_budget_and_threshold() {
        let a = Array2::<u8>::zeros((5, 4));
        let sets = FiringSets::new(a.view()).unwrap();
        let none = co_firing_pairs(&sets, 1.0, 10).unwrap();
        assert_eq!(none, Edges::Complete(Vec::new()));
        let a = Array2::<u8>::ones((3, 4));
        let sets = FiringSets::new(a.view()).unwrap();
        assert_eq!(
            co_firing_pairs(&sets, 1.0, 6)
                .unwrap()
                .complete()
                .unwrap()
                .len(),
            6
        );
        assert!(matches!(
            co_firing_pairs(&sets, 1.0, 5).unwrap(),
            Edges::OverBudget { reached } if reached > 5
        ));
        assert!(co_firing_pairs(&sets, 0.0, 5).is_err());
        assert!(co_firing_pairs(&sets, f64::NAN, 5).is_err());
    }
}
