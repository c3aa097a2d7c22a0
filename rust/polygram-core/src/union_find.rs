//! Connected components of an edge list by union-find (the redundancy
//! clusters of the compression action, spec 11 §3.1).
//!
//! Deterministic by construction: `union` always hangs the larger root under
//! the smaller one, so every root is its component's minimum id, whatever
//! the edge order; components come out sorted by that minimum, members
//! ascending.  `find` uses path halving.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative (Fx-style) hasher for `u64` keys: the ids are not
/// attacker-chosen, and SipHash dominated the run time.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// A disjoint-set forest over arbitrary `u64` ids, created on first sight.
#[derive(Debug, Default, Clone)]
pub struct UnionFind {
    index: IdMap<usize>,
    ids: Vec<u64>,
    parent: Vec<usize>,
}

impl UnionFind {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` ids without rehashing.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            index: IdMap::with_capacity_and_hasher(n, Default::default()),
            ids: Vec::with_capacity(n),
            parent: Vec::with_capacity(n),
        }
    }

    /// Number of distinct ids seen so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Dense index of `id`, adding it as a singleton if new.
    pub fn add(&mut self, id: u64) -> usize {
        let next = self.ids.len();
        let k = *self.index.entry(id).or_insert(next);
        if k == next {
            self.ids.push(id);
            self.parent.push(k);
        }
        k
    }

    fn find_index(&mut self, mut k: usize) -> usize {
        while self.parent[k] != k {
            self.parent[k] = self.parent[self.parent[k]]; // path halving
            k = self.parent[k];
        }
        k
    }

    /// The root id (= the minimum id) of `id`'s set; `None` if never added.
    pub fn find(&mut self, id: u64) -> Option<u64> {
        let k = *self.index.get(&id)?;
        let r = self.find_index(k);
        Some(self.ids[r])
    }

    /// Merge the sets of `a` and `b` (adding either if new).
    pub fn union(&mut self, a: u64, b: u64) {
        let (ka, kb) = (self.add(a), self.add(b));
        let (ra, rb) = (self.find_index(ka), self.find_index(kb));
        if ra == rb {
            return;
        }
        // the larger id goes under the smaller: roots stay component minima
        if self.ids[ra] < self.ids[rb] {
            self.parent[rb] = ra;
        } else {
            self.parent[ra] = rb;
        }
    }

    /// All sets: sorted by minimum member, members ascending.
    pub fn components(&mut self) -> Vec<Vec<u64>> {
        // roots are component minima, so sorting (root id, id) lays the
        // components out in the required order, members ascending
        let mut keyed: Vec<(u64, u64)> = (0..self.ids.len())
            .map(|k| {
                let r = self.find_index(k);
                (self.ids[r], self.ids[k])
            })
            .collect();
        keyed.sort_unstable();
        let mut out: Vec<Vec<u64>> = Vec::new();
        let mut last_root = None;
        for (root, id) in keyed {
            if last_root != Some(root) {
                out.push(Vec::new());
                last_root = Some(root);
            }
            if let Some(c) = out.last_mut() {
                c.push(id);
            }
        }
        out
    }
}

/// Connected components of the graph whose nodes are the ids that appear in
/// `edges` (isolated ids do not exist here: a self-loop `(a, a)` makes `[a]`).
pub fn components<I>(edges: I) -> Vec<Vec<u64>>
where
    I: IntoIterator<Item = (u64, u64)>,
{
    let mut uf = UnionFind::new();
    for (a, b) in edges {
        uf.union(a, b);
    }
    uf.components()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty() {
        assert!(components(std::iter::empty()).is_empty());
        assert!(UnionFind::new().is_empty());
    }

    #[test]
    fn clique_and_pairs_sorted_by_minimum() {
        let edges = [(9, 7), (3, 5), (5, 4), (4, 3), (100, 2)];
        assert_eq!(
            components(edges),
            vec![vec![2, 100], vec![3, 4, 5], vec![7, 9]]
        );
    }

    #[test]
    fn chain_is_one_component_and_root_is_minimum() {
        let mut uf = UnionFind::new();
        for k in (1..50u64).rev() {
            uf.union(k + 1, k);
        }
        assert_eq!(uf.len(), 50);
        for k in 1..=50 {
            assert_eq!(uf.find(k), Some(1));
        }
        assert_eq!(uf.find(0), None);
        assert_eq!(uf.components(), vec![(1..=50).collect::<Vec<_>>()]);
    }

    #[test]
    fn with_capacity_behaves_like_new() {
        let mut uf = UnionFind::with_capacity(8);
        uf.union(5, 3);
        uf.union(9, 9);
        assert_eq!(uf.components(), vec![vec![3, 5], vec![9]]);
    }

    #[test]
    fn self_loop_and_duplicates() {
        assert_eq!(
            components([(4, 4), (1, 2), (2, 1), (1, 2)]),
            vec![vec![1, 2], vec![4]]
        );
    }

    #[test]
    fn order_independent() {
        let edges = vec![(10, 3), (3, 8), (8, 1), (20, 21), (21, 22), (0, 22), (5, 5)];
        let want = components(edges.clone());
        let mut rev = edges.clone();
        rev.reverse();
        assert_eq!(components(rev), want);
        let swapped: Vec<_> = edges.iter().map(|&(a, b)| (b, a)).collect();
        assert_eq!(components(swapped), want);
        assert_eq!(want, vec![vec![0, 20, 21, 22], vec![1, 3, 8, 10], vec![5]]);
    }

    #[test]
    fn large_ids() {
        assert_eq!(
            components([(u64::MAX, 0), (u64::MAX - 1, u64::MAX)]),
            vec![vec![0, u64::MAX - 1, u64::MAX]]
        );
    }
}
