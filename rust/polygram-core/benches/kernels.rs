//! Criterion benches of the core kernels: MPS states, Gram matrices (MPS and
//! HEA), a full 200×200 interference sweep, 1000² and 4096² cancellation grids and
//! union-find components of 10^5 / 10^6 random edges.
//!
//! The workloads mirror `benches/compare.py`: the quickstart dictionary of the
//! seed README (two clusters of two features) with the sweep over
//! `dog_poodle.phi` × `bird_hawk.phi`.
//!
//! Run with `cargo bench -p polygram-core` (add `-- --quick` for a short run).

use std::f64::consts::PI;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{array, Array2};
use polygram_core::encoding::mps;
use polygram_core::gram::{gram, states};
use polygram_core::scan::{Axis, Scan};
use polygram_core::tiers::Tiers;
use polygram_core::union_find::components;
use polygram_core::{Ctx, Encoding, Entangler, Hea, Rotation};

/// Knob columns of the MPS encoding.
const WIDTH: usize = 4;
const PHI: usize = 3;

/// The seed README quickstart: dogs (β = −0.5) and birds (β = +0.5).
fn quickstart() -> Array2<f64> {
    array![
        [0.0, -0.5, 0.0, 0.0],
        [0.0, -0.5, 0.0, 0.0],
        [0.0, 0.5, 0.0, 0.0],
        [0.0, 0.5, 0.0, 0.0]
    ]
}

/// Eight features with every knob in use (same table as `benches/compare.py`).
fn eight_features() -> Array2<f64> {
    Array2::from_shape_fn((8, WIDTH), |(f, k)| {
        let x = f as f64;
        match k {
            0 => 0.15 * x,
            1 => -0.6 + 0.16 * x,
            2 => 0.05 * x - 0.2,
            _ => 0.3 * x,
        }
    })
}

fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            if i + 1 == n {
                hi
            } else {
                lo + i as f64 * (hi - lo) / (n - 1) as f64
            }
        })
        .collect()
}

/// The (dog_poodle.phi, bird_hawk.phi) grid over `[0, hi]²` with `n` steps per axis.
fn phi_scan(n: usize, hi: f64) -> Scan {
    let axes = vec![
        Axis {
            slots: vec![PHI],
            values: linspace(0.0, hi, n),
        },
        Axis {
            slots: vec![2 * WIDTH + PHI],
            values: linspace(0.0, hi, n),
        },
    ];
    Scan::new(Encoding::Mps, quickstart().view(), axes, &Ctx::serial()).expect("valid scan")
}

fn tiers() -> Tiers {
    Tiers::new(vec![0, 0, 1, 1], 2).expect("valid tiers")
}

fn bench_states(c: &mut Criterion) {
    let mut g = c.benchmark_group("mps_state");
    g.bench_function("amplitudes", |b| {
        b.iter(|| {
            mps::amplitudes(
                black_box(0.3),
                black_box(-0.5),
                black_box(0.1),
                black_box(1.2),
            )
        })
    });
    let t8 = eight_features();
    g.bench_function("states_8_features", |b| {
        b.iter(|| {
            states(&Encoding::Mps, black_box(t8.view()), &Ctx::serial()).expect("valid table")
        })
    });
    g.finish();
}

fn bench_gram(c: &mut Criterion) {
    let mut g = c.benchmark_group("gram");
    let tables = [("mps", 4, quickstart()), ("mps", 8, eight_features())];
    for (name, n, table) in &tables {
        g.bench_with_input(BenchmarkId::new(*name, n), table, |b, t| {
            b.iter(|| {
                gram(&Encoding::Mps, black_box(t.view()), &Ctx::serial()).expect("valid table")
            })
        });
    }
    // AnimalsHea layout: 3 qubits, depth 2, (Ry, Rz) layers, ring entangler.
    let hea = Hea::new(3, 2, vec![Rotation::Ry, Rotation::Rz], Entangler::Ring).expect("valid");
    let enc = Encoding::Hea(hea);
    let theta = Array2::from_shape_fn((4, enc.width()), |(f, k)| {
        ((f * 7 + k) as f64 * 0.37).sin() * 1.5
    });
    g.bench_with_input(BenchmarkId::new("hea_3q_d2", 4), &theta, |b, t| {
        b.iter(|| gram(&enc, black_box(t.view()), &Ctx::serial()).expect("valid table"))
    });
    g.finish();
}

fn bench_sweep(c: &mut Criterion) {
    let mut g = c.benchmark_group("sweep");
    g.sample_size(20);
    let (scan, tiers) = (phi_scan(200, PI), tiers());
    g.throughput(Throughput::Elements(scan.n_points() as u64));
    g.bench_function("200x200", |b| {
        b.iter(|| {
            let s = scan
                .sweep(&tiers, (0, 2), &Ctx::serial())
                .expect("valid scan");
            black_box(s.stats[[0, 0]])
        })
    });
    g.finish();
}

fn bench_grid(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancellation_grid");
    g.sample_size(10);
    for n in [1000usize, 4096] {
        let (scan, tiers) = (phi_scan(n, 2.0 * PI), tiers());
        g.throughput(Throughput::Elements(scan.n_points() as u64));
        g.bench_function(format!("{n}x{n}_preserve_tiers"), |b| {
            b.iter(|| {
                scan.grid(&tiers, (0, 2), true, false, &Ctx::serial())
                    .expect("valid scan")
                    .best
            })
        });
    }
    g.finish();
}

/// `n` pseudo-random edges over `n` ids (a fixed 64-bit LCG: no extra crates).
fn random_edges(n: usize) -> Vec<(u64, u64)> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % n as u64
    };
    (0..n).map(|_| (next(), next())).collect()
}

fn bench_union_find(c: &mut Criterion) {
    let mut g = c.benchmark_group("union_find");
    g.sample_size(10);
    for n in [100_000usize, 1_000_000] {
        let edges = random_edges(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("components", n), &edges, |b, e| {
            b.iter(|| components(e.iter().copied()).len())
        });
    }
    g.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_states, bench_gram, bench_sweep, bench_grid, bench_union_find
}
criterion_main!(kernels);
