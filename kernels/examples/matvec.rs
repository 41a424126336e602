//! Times one decode step's product, `QMatrix::matmul_on(isa, x, 1)`, over about 200 MB
//! of random blocks of each type, on every instruction set this CPU has, with f32
//! activations and with q8 ones, and reports the weights read per second.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p pith-kernels --example matvec [MB [FILTER
//! [ROWS]]]`, FILTER keeping the lines that contain it (`Q4K`, `Avx2 q8`), ROWS
//! activation rows instead of one (below 24, the fused dots' range).

use std::time::Instant;

use pith_kernels::{GgmlType, Isa, QMatrix};

/// Deterministic bytes (xorshift).
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// Random blocks with small finite f16 scales (4096 of them, repeated).
fn blocks(ty: GgmlType, count: usize) -> Vec<u8> {
    let mut data = bytes(ty.block_bytes() * count.min(4096), 7);
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    let at: &[usize] = match ty {
        GgmlType::Q6K => &[208],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        _ => &[0],
    };
    for block in data.chunks_exact_mut(ty.block_bytes()) {
        for &i in at {
            block[i..i + 2].copy_from_slice(&scale);
        }
    }
    data.repeat(count.div_ceil(4096))[..ty.block_bytes() * count].to_vec()
}

/// One product of a matrix and a row on an instruction set.
type Product = fn(&QMatrix, Isa, &[f32]) -> Vec<f32>;

fn main() {
    let mb: usize = std::env::args().nth(1).map_or(200, |a| a.parse().unwrap());
    let filter = std::env::args().nth(2).unwrap_or_default();
    let n: usize = std::env::args().nth(3).map_or(1, |a| a.parse().unwrap());
    let cols = 2048;
    println!(
        "threads: {}, activation rows: {n}",
        rayon::current_num_threads()
    );
    for ty in [GgmlType::Q4_1, GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q8_0] {
        let row_bytes = ty.bytes_for(cols as u64).unwrap() as usize;
        let rows = mb * 1_000_000 / row_bytes;
        let data = blocks(ty, rows * cols / ty.block_len());
        let m = QMatrix::new(ty, rows, cols, &data).unwrap();
        let x: Vec<f32> = bytes(n * cols, 3)
            .iter()
            .map(|&b| f32::from(b as i8) / 64.0)
            .collect();
        for isa in Isa::available() {
            let paths: [(&str, Product); 2] = [
                ("f32", |m, isa, x| {
                    m.matmul_f32_on(isa, x, x.len() / m.cols())
                }),
                ("q8", |m, isa, x| m.matmul_on(isa, x, x.len() / m.cols())),
            ];
            for (name, run) in paths {
                if !format!("{ty:?} {isa:?} {name}").contains(&filter) {
                    continue;
                }
                run(&m, isa, &x);
                // The fastest of a few: the machine may be shared.
                let reps = if isa == Isa::Scalar { 3 } else { 20 };
                let secs = (0..reps)
                    .map(|_| {
                        let start = Instant::now();
                        std::hint::black_box(run(&m, isa, &x));
                        start.elapsed().as_secs_f64()
                    })
                    .fold(f64::INFINITY, f64::min);
                println!(
                    "{ty:?} {isa:?} {name}: {:.1} GB/s ({:.3} ms for {:.1} MB)",
                    data.len() as f64 / secs / 1e9,
                    secs * 1e3,
                    data.len() as f64 / 1e6
                );
            }
        }
    }
}
