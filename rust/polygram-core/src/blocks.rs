//! Blocks of a clustered dictionary (spec 17 §17.3.2–§17.3.6, §17.13): the
//! capped breadth-first partition of a pair graph, the canonical cross-block
//! edge list and the per-block Gram matrices, all over whole arrays.
//!
//! A block is a list of selection indices; the *global position* of a feature
//! is its place in the concatenation of the blocks.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::ctx::Ctx;
use crate::encoding::Encoding;
use crate::{gram, Error, Result, C64};

/// A partition of `0..n` into blocks, in block order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Selection indices, blocks concatenated (position → index).
    pub members: Vec<u32>,
    /// Block `b` is `members[offsets[b]..offsets[b + 1]]`.
    pub offsets: Vec<usize>,
    /// Block of every selection index.
    pub block_of: Vec<u32>,
    /// Position of every selection index inside its block.
    pub local: Vec<u32>,
}

impl Partition {
    pub fn n_blocks(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Global position of selection index `i`.
    #[inline]
    pub fn position(&self, i: u32) -> usize {
        self.offsets[self.block_of[i as usize] as usize] + self.local[i as usize] as usize
    }

    /// A partition from explicit blocks (CSR `members` / `offsets`): every
    /// index of `0..n` exactly once, no empty block, none above `cap`.
    pub fn from_blocks(
        n: usize,
        members: Vec<u32>,
        offsets: Vec<usize>,
        cap: usize,
    ) -> Result<Self> {
        if members.len() != n {
            return Err(Error::invalid(
                "blocks",
                format!(
                    "{} members for {n} features; every feature exactly once",
                    members.len()
                ),
            ));
        }
        if offsets.first() != Some(&0) || offsets.last() != Some(&n) {
            return Err(Error::invalid(
                "offsets",
                format!("must start at 0 and end at {n} (the feature count)"),
            ));
        }
        let mut block_of = vec![u32::MAX; n];
        let mut local = vec![0u32; n];
        for (b, w) in offsets.windows(2).enumerate() {
            let size = w[1].checked_sub(w[0]).ok_or_else(|| {
                Error::invalid(
                    "offsets",
                    format!("decrease at block {b}; must be ascending"),
                )
            })?;
            if size == 0 || size > cap {
                return Err(Error::invalid(
                    "blocks",
                    format!("block {b} has {size} features; allowed 1..={cap}"),
                ));
            }
            let bid = u32::try_from(b).map_err(|_| Error::invalid("blocks", "too many blocks"))?;
            for (l, &i) in members[w[0]..w[1]].iter().enumerate() {
                let slot = block_of.get_mut(i as usize).ok_or_else(|| {
                    Error::invalid("blocks", format!("member {i} is not below {n}"))
                })?;
                if *slot != u32::MAX {
                    return Err(Error::invalid(
                        "blocks",
                        format!("feature {i} appears twice; every feature exactly once"),
                    ));
                }
                *slot = bid;
                local[i as usize] = l as u32; // l < size <= cap <= n <= u32::MAX
            }
        }
        Ok(Partition {
            members,
            offsets,
            block_of,
            local,
        })
    }
}

/// `i < j < n` for every edge, strictly ascending row-major.
fn check_edges(n: usize, edges: &[(u32, u32)]) -> Result<()> {
    let mut prev: Option<(u32, u32)> = None;
    for (k, &(i, j)) in edges.iter().enumerate() {
        if i >= j || j as usize >= n || prev.is_some_and(|p| p >= (i, j)) {
            return Err(Error::invalid(
                "edges",
                format!(
                    "edge {k} is ({i}, {j}); edges must satisfy i < j < {n} and be strictly \
                     ascending row-major"
                ),
            ));
        }
        prev = Some((i, j));
    }
    Ok(())
}

/// Symmetric adjacency in CSR form, every neighbour list ascending.
struct Adjacency {
    offsets: Vec<usize>,
    targets: Vec<u32>,
}

impl Adjacency {
    /// Row-major edges fill each list in ascending order: the lower
    /// neighbours `(i, v)` of `v` precede its upper ones `(v, j)`.
    fn new(n: usize, edges: &[(u32, u32)]) -> Result<Self> {
        let mut deg = vec![0usize; n + 1];
        for &(i, j) in edges {
            deg[i as usize + 1] += 1;
            deg[j as usize + 1] += 1;
        }
        for k in 0..n {
            deg[k + 1] += deg[k];
        }
        let total = edges
            .len()
            .checked_mul(2)
            .ok_or_else(|| Error::invalid("edges", "edge count overflows"))?;
        let mut fill = deg.clone();
        let mut targets = vec![0u32; total];
        for &(i, j) in edges {
            targets[fill[i as usize]] = j;
            fill[i as usize] += 1;
            targets[fill[j as usize]] = i;
            fill[j as usize] += 1;
        }
        Ok(Adjacency {
            offsets: deg,
            targets,
        })
    }

    fn neighbours(&self, v: usize) -> &[u32] {
        &self.targets[self.offsets[v]..self.offsets[v + 1]]
    }
}

/// Greedy breadth-first blocks of at most `cap` features (spec 17 §17.3.2):
/// seeds in ascending order; a block grows from a FIFO queue, visiting each
/// entry's unassigned neighbours in ascending order until it is full.
pub fn bfs_blocks(n: usize, edges: &[(u32, u32)], cap: usize) -> Result<Partition> {
    if cap < 1 {
        return Err(Error::invalid(
            "cap",
            "got 0; blocks hold at least one feature",
        ));
    }
    crate::cosine::check_row_count("features", n)?;
    check_edges(n, edges)?;
    let adj = Adjacency::new(n, edges)?;
    let mut block_of = vec![u32::MAX; n];
    let mut local = vec![0u32; n];
    let mut members: Vec<u32> = Vec::with_capacity(n);
    let mut offsets = vec![0usize];
    for seed in 0..n {
        if block_of[seed] != u32::MAX {
            continue;
        }
        let b = (offsets.len() - 1) as u32; // blocks <= n <= u32::MAX
        let start = members.len();
        block_of[seed] = b;
        members.push(seed as u32);
        // the queue is the block itself: every assigned feature joins both
        let mut head = start;
        'grow: while head < members.len() {
            let u = members[head] as usize;
            head += 1;
            for &v in adj.neighbours(u) {
                let size = members.len() - start;
                if size >= cap {
                    break 'grow;
                }
                if block_of[v as usize] == u32::MAX {
                    block_of[v as usize] = b;
                    local[v as usize] = size as u32; // size < cap <= n
                    members.push(v);
                }
            }
        }
        offsets.push(members.len());
    }
    Ok(Partition {
        members,
        offsets,
        block_of,
        local,
    })
}

/// Cross-block edges as sorted global-position pairs `(p_i, p_j)`, `p_i < p_j`
/// — the canonical key order of spec 17 §17.1 — dropping intra-block edges.
pub fn split_cross(edges: &[(u32, u32)], part: &Partition) -> Result<Vec<(u32, u32)>> {
    let n = part.block_of.len();
    if let Some(&(i, j)) = edges
        .iter()
        .find(|&&(i, j)| i as usize >= n || j as usize >= n)
    {
        return Err(Error::invalid(
            "edges",
            format!("edge ({i}, {j}) is outside the {n} partitioned features"),
        ));
    }
    let mut cross: Vec<(u32, u32)> = edges
        .par_iter()
        .filter(|&&(i, j)| part.block_of[i as usize] != part.block_of[j as usize])
        .map(|&(i, j)| {
            // positions < n <= u32::MAX
            let (p, q) = (part.position(i) as u32, part.position(j) as u32);
            if p < q {
                (p, q)
            } else {
                (q, p)
            }
        })
        .collect();
    cross.par_sort_unstable(); // keys are unique
    Ok(cross)
}

/// Gram of every block, flattened: block `b` is the row-major `k_b × k_b`
/// matrix at `out[start_b..start_b + k_b²]`, starts returned alongside
/// (length `n_blocks + 1`).  Each equals [`gram::gram`] of the block's rows.
pub fn block_grams(
    enc: &Encoding,
    table: ArrayView2<'_, f64>,
    part: &Partition,
    ctx: &Ctx,
) -> Result<(Vec<C64>, Vec<usize>)> {
    if table.nrows() != part.block_of.len() {
        return Err(Error::invalid(
            "params",
            format!(
                "{} knob rows for {} partitioned features",
                table.nrows(),
                part.block_of.len()
            ),
        ));
    }
    let mut starts = Vec::with_capacity(part.offsets.len());
    let mut total = 0usize;
    starts.push(0);
    for w in part.offsets.windows(2) {
        let k = w[1] - w[0];
        total = k
            .checked_mul(k)
            .and_then(|kk| total.checked_add(kk))
            .ok_or_else(|| Error::invalid("blocks", "block Gram sizes overflow"))?;
        starts.push(total);
    }
    let windows: Vec<(usize, usize)> = part.offsets.windows(2).map(|w| (w[0], w[1])).collect();
    let grams: Vec<Array2<C64>> = ctx.map(windows, Ctx::serial, |one, (a, b)| {
        let idx = &part.members[a..b];
        let sub = Array2::from_shape_fn((idx.len(), table.ncols()), |(r, c)| {
            table[[idx[r] as usize, c]]
        });
        gram::gram(enc, sub.view(), one) // a block is tiny: serial inside
    })?;
    let mut out = Vec::with_capacity(total);
    for g in grams {
        out.extend(g.iter());
    }
    Ok((out, starts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// The spec's level-by-level loop, written plainly.
    fn bfs_oracle(n: usize, edges: &[(u32, u32)], cap: usize) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); n];
        for &(i, j) in edges {
            adj[i as usize].push(j as usize);
            adj[j as usize].push(i as usize);
        }
        for a in &mut adj {
            a.sort_unstable();
        }
        let mut assigned = vec![false; n];
        let mut blocks = Vec::new();
        for seed in 0..n {
            if assigned[seed] {
                continue;
            }
            assigned[seed] = true;
            let mut block = vec![seed];
            let mut q = VecDeque::from([seed]);
            'outer: while let Some(u) = q.pop_front() {
                for &v in &adj[u] {
                    if block.len() >= cap {
                        break 'outer;
                    }
                    if !assigned[v] {
                        assigned[v] = true;
                        block.push(v);
                        q.push_back(v);
                    }
                }
            }
            blocks.push(block);
        }
        blocks
    }

    fn random_edges(n: usize, p: u64, seed: u64) -> Vec<(u32, u32)> {
        let mut s = seed.max(1);
        let mut out = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                if s % 100 < p {
                    out.push((i as u32, j as u32));
                }
            }
        }
        out
    }

    #[test]
    fn bfs_matches_the_plain_loop() {
        for (n, p, cap, seed) in [
            (40, 8, 8, 1),
            (60, 3, 3, 2),
            (25, 30, 1, 3),
            (50, 50, 16, 4),
        ] {
            let e = random_edges(n, p, seed);
            let part = bfs_blocks(n, &e, cap).unwrap();
            let want = bfs_oracle(n, &e, cap);
            let got: Vec<Vec<usize>> = part
                .offsets
                .windows(2)
                .map(|w| {
                    part.members[w[0]..w[1]]
                        .iter()
                        .map(|&v| v as usize)
                        .collect()
                })
                .collect();
            assert_eq!(got, want);
            for (b, blk) in got.iter().enumerate() {
                for (l, &v) in blk.iter().enumerate() {
                    assert_eq!(part.block_of[v] as usize, b);
                    assert_eq!(part.local[v] as usize, l);
                }
            }
        }
    }

    #[test]
    fn cross_edges_are_canonical() {
        let e = random_edges(30, 20, 7);
        let part = bfs_blocks(30, &e, 4).unwrap();
        let cross = split_cross(&e, &part).unwrap();
        let mut want: Vec<(u32, u32)> = Vec::new();
        for &(i, j) in &e {
            if part.block_of[i as usize] != part.block_of[j as usize] {
                let (p, q) = (part.position(i) as u32, part.position(j) as u32);
                want.push((p.min(q), p.max(q)));
            }
        }
        want.sort();
        assert_eq!(cross, want);
        assert!(cross.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bad_edges_and_blocks_are_errors() {
        assert!(bfs_blocks(3, &[(1, 0)], 2).is_err());
        assert!(bfs_blocks(3, &[(0, 3)], 2).is_err());
        assert!(bfs_blocks(3, &[(0, 2), (0, 1)], 2).is_err());
        assert!(bfs_blocks(3, &[], 0).is_err());
        assert!(Partition::from_blocks(3, vec![0, 1, 1], vec![0, 2, 3], 2).is_err());
        assert!(Partition::from_blocks(3, vec![0, 1, 2], vec![0, 3], 2).is_err());
        assert!(Partition::from_blocks(3, vec![0, 1, 2], vec![0, 0, 3], 3).is_err());
        let p = Partition::from_blocks(3, vec![2, 0, 1], vec![0, 1, 3], 2).unwrap();
        assert_eq!(p.block_of, vec![1, 1, 0]);
        assert_eq!(p.local, vec![0, 1, 0]);
        assert_eq!(p.position(1), 2);
    }

    #[test]
    fn block_grams_equal_the_dense_gram_of_each_block() {
        let table = Array2::from_shape_fn((7, 4), |(i, k)| 0.1 * (i * 4 + k) as f64 - 0.9);
        let part = bfs_blocks(7, &[(0, 3), (1, 2), (3, 6)], 3).unwrap();
        let (flat, starts) =
            block_grams(&Encoding::Mps, table.view(), &part, &Ctx::serial()).unwrap();
        for b in 0..part.n_blocks() {
            let idx = &part.members[part.offsets[b]..part.offsets[b + 1]];
            let sub = Array2::from_shape_fn((idx.len(), 4), |(r, c)| table[[idx[r] as usize, c]]);
            let g = gram::gram(&Encoding::Mps, sub.view(), &Ctx::serial()).unwrap();
            let got = &flat[starts[b]..starts[b + 1]];
            assert_eq!(got, g.as_slice().unwrap());
        }
    }
}
