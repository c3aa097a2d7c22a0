//! Criterion benches of the clustered-dictionary kernels (spec 17 §17.13):
//! the tiled pair pass (with and without the streamed tier statistics),
//! the capped BFS, the canonical cross-block split, the per-block Grams and
//! the co-firing graph, on the "planted" recipe of spec 17 §17.14 (groups of
//! 8 around random unit centres, d = 768).
//!
//! Run with `cargo bench -p polygram-core --bench clustered` (add `-- --quick`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use polygram_core::blocks::{bfs_blocks, block_grams, split_cross};
use polygram_core::cofiring::{co_firing_pairs, FiringSets};
use polygram_core::cosine::{pair_pass, unit_rows32, StateRows};
use polygram_core::{Ctx, Encoding};

/// Deterministic uniform values in [-1, 1) (xorshift).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.max(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// N/8 random centres, each repeated 8 times, plus noise of about a third of their size.
fn planted(n: usize, d: usize) -> Array2<f32> {
    let centres = noise(n.div_ceil(8) * d, 7);
    let jitter = noise(n * d, 11);
    Array2::from_shape_fn((n, d), |(i, k)| {
        centres[(i / 8) * d + k] + 0.35 * jitter[i * d + k]
    })
}

fn bench_pass(c: &mut Criterion) {
    let mut g = c.benchmark_group("pair_pass_planted_d768_t0.3");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for n in [1024usize, 4096] {
        let unit = unit_rows32(planted(n, 768).view()).unwrap();
        g.throughput(Throughput::Elements((n * (n - 1) / 2) as u64));
        g.bench_with_input(BenchmarkId::new("edges", n), &unit, |b, u| {
            b.iter(|| black_box(pair_pass(u, 0.3, usize::MAX, None, &Ctx::serial()).unwrap()))
        });
        let table = Array2::from_shape_fn((n, 4), |(i, k)| 0.01 * ((i * 4 + k) % 97) as f64);
        let states = StateRows::from_table(&Encoding::Mps, table.view()).unwrap();
        g.bench_with_input(BenchmarkId::new("edges+tier_stats", n), &unit, |b, u| {
            b.iter(|| {
                black_box(pair_pass(u, 0.3, usize::MAX, Some(&states), &Ctx::serial()).unwrap())
            })
        });
    }
    g.finish();
}

fn bench_blocks(c: &mut Criterion) {
    let n = 8192;
    let unit = unit_rows32(planted(n, 64).view()).unwrap();
    let edges = pair_pass(&unit, 0.3, usize::MAX, None, &Ctx::serial())
        .unwrap()
        .edges;
    let table = Array2::from_shape_fn((n, 4), |(i, k)| 0.01 * ((i * 4 + k) % 97) as f64);
    let mut g = c.benchmark_group("blocks_n8192");
    g.throughput(Throughput::Elements(edges.len() as u64));
    g.bench_function("bfs_cap8", |b| {
        b.iter(|| black_box(bfs_blocks(n, &edges, 8).unwrap()))
    });
    let part = bfs_blocks(n, &edges, 8).unwrap();
    g.bench_function("split_cross", |b| {
        b.iter(|| black_box(split_cross(&edges, &part).unwrap()))
    });
    g.bench_function("block_grams_mps", |b| {
        b.iter(|| {
            black_box(block_grams(&Encoding::Mps, table.view(), &part, &Ctx::serial()).unwrap())
        })
    });
    g.finish();
}

fn bench_cofiring(c: &mut Criterion) {
    let (t, n) = (1024usize, 2048usize);
    let bits = noise(t * n, 5);
    let fires = Array2::from_shape_fn((t, n), |(r, i)| u8::from(bits[r * n + i] > 0.8));
    let sets = FiringSets::new(fires.view()).unwrap();
    let mut g = c.benchmark_group("co_firing");
    g.sample_size(10);
    g.bench_function("pairs_t1024_n2048_j0.3", |b| {
        b.iter(|| black_box(co_firing_pairs(&sets, 0.3, usize::MAX).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_pass, bench_blocks, bench_cofiring);
criterion_main!(benches);
