//! Tier statistics and the hierarchical-ordering test (spec 02 §2.3–2.4).
//!
//! The hierarchy is one level deep: every feature belongs to one cluster.
//! All functions read overlaps `|G_ij|²` through a closure so the grid scan
//! can evaluate only the pairs it needs.

use crate::{Error, Result};

/// Slack of the ordering test: `|G_AS|² + 1e-12 ≥ |G_AB|²`.
pub const ORDERING_SLACK: f64 = 1e-12;

/// Most clusters a hierarchy may declare: as many as the largest dictionary
/// has features (HEA on 20 qubits).
pub const MAX_CLUSTERS: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct Tiers {
    cluster_of: Vec<usize>,
    members: Vec<Vec<usize>>,
}

impl Tiers {
    /// `cluster_of[f]` is the cluster index of feature `f` (`< n_clusters`).
    /// Only clusters that have members are stored (their labels renumbered
    /// in order of first appearance), so memory follows the features, not
    /// `n_clusters`.
    pub fn new(cluster_of: Vec<usize>, n_clusters: usize) -> Result<Self> {
        if n_clusters > MAX_CLUSTERS {
            return Err(Error::invalid(
                "n_clusters",
                format!("got {n_clusters}; allowed at most {MAX_CLUSTERS}"),
            ));
        }
        let mut label = std::collections::HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut compact = Vec::with_capacity(cluster_of.len());
        for (f, &c) in cluster_of.iter().enumerate() {
            if c >= n_clusters {
                return Err(Error::invalid(
                    "clusters",
                    format!("feature {f} has cluster {c}; allowed 0..{n_clusters}"),
                ));
            }
            let l = *label.entry(c).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[l].push(f);
            compact.push(l);
        }
        Ok(Tiers {
            cluster_of: compact,
            members,
        })
    }

    pub fn n_features(&self) -> usize {
        self.cluster_of.len()
    }

    /// Members of `f`'s cluster other than `f`.
    pub fn siblings(&self, f: usize) -> impl Iterator<Item = usize> + '_ {
        self.members[self.cluster_of[f]]
            .iter()
            .copied()
            .filter(move |&s| s != f)
    }

    /// Mean of `|G_ij|²` over sibling pairs and over cross-cluster pairs
    /// (NaN when there is no such pair).
    pub fn tier_means(&self, ov: impl Fn(usize, usize) -> f64) -> (f64, f64) {
        let n = self.n_features();
        let (mut sib, mut ns, mut cross, mut nc) = (0.0, 0usize, 0.0, 0usize);
        for i in 0..n {
            for j in i + 1..n {
                let o = ov(i, j);
                if self.cluster_of[i] == self.cluster_of[j] {
                    sib += o;
                    ns += 1;
                } else {
                    cross += o;
                    nc += 1;
                }
            }
        }
        let mean = |s: f64, k: usize| if k == 0 { f64::NAN } else { s / k as f64 };
        (mean(sib, ns), mean(cross, nc))
    }

    /// q-orca's tier separation: min over clusters with ≥ 2 members of the
    /// mean intra-cluster overlap, minus the largest cross-cluster overlap
    /// (0 when there is none).  NaN when no cluster has two members.
    pub fn separation(&self, ov: impl Fn(usize, usize) -> f64) -> f64 {
        let mut min_intra = f64::INFINITY;
        for m in self.members.iter().filter(|m| m.len() >= 2) {
            let (mut s, mut k) = (0.0, 0usize);
            for (x, &i) in m.iter().enumerate() {
                for &j in &m[x + 1..] {
                    s += ov(i, j);
                    k += 1;
                }
            }
            min_intra = min_intra.min(s / k as f64);
        }
        if min_intra == f64::INFINITY {
            return f64::NAN;
        }
        let n = self.n_features();
        let mut cross_max = 0.0f64;
        let mut any = false;
        for i in 0..n {
            for j in i + 1..n {
                if self.cluster_of[i] != self.cluster_of[j] {
                    let o = ov(i, j);
                    cross_max = if any { cross_max.max(o) } else { o };
                    any = true;
                }
            }
        }
        min_intra - cross_max
    }

    /// `hierarchical_ordering_preserved` for target `(a, b)`: every sibling of
    /// `a` overlaps `a` at least as much as `b` does, and likewise for `b`.
    pub fn ordering_ok(&self, a: usize, b: usize, ov: impl Fn(usize, usize) -> f64) -> bool {
        let c = ov(a, b);
        self.siblings(a).all(|s| ov(a, s) + ORDERING_SLACK >= c)
            && self.siblings(b).all(|s| ov(b, s) + ORDERING_SLACK >= c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickstart_tiers() {
        let t = Tiers::new(vec![0, 0, 1, 1], 2).unwrap();
        let c = 0.5f64.cos().powi(4);
        let ov = |i: usize, j: usize| if (i < 2) == (j < 2) { 1.0 } else { c };
        let (s, x) = t.tier_means(ov);
        assert_eq!(s, 1.0);
        assert!((x - c).abs() < 1e-16);
        assert!((t.separation(ov) - (1.0 - c)).abs() < 1e-16);
        assert!(t.ordering_ok(0, 2, ov));
        assert!(!t.ordering_ok(0, 2, |i, j| if i + j == 2 { 1.0 } else { 0.1 }));
    }

    #[test]
    fn singletons_have_no_separation() {
        let t = Tiers::new(vec![0, 1], 2).unwrap();
        assert!(t.separation(|_, _| 0.5).is_nan());
        assert!(t.tier_means(|_, _| 0.5).0.is_nan());
        assert!(Tiers::new(vec![0, 3], 2).is_err());
    }

    #[test]
    fn cluster_counts_are_capped_and_cost_nothing_below_the_cap() {
        // 2^62 used to panic (capacity overflow), 10^11 to abort.
        for n in [1usize << 62, 100_000_000_000] {
            let e = Tiers::new(vec![0, 1], n).unwrap_err();
            assert!(e.to_string().contains("n_clusters"), "{e}");
        }
        let t = Tiers::new(vec![7, 3, 7], MAX_CLUSTERS).unwrap();
        assert_eq!(t.siblings(0).collect::<Vec<_>>(), vec![2]);
        assert_eq!(t.siblings(1).count(), 0);
    }
}
