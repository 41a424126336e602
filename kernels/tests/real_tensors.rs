//! The kernels on rows of real model tensors, against the `gguf` Python package's
//! dequantisation times a vector (fixtures by scripts/make-kernel-fixtures.py).

use std::path::PathBuf;

use pith_kernels::{GgmlType, Isa, QMatrix};
use serde_json::Value;

struct Fixture {
    name: &'static str,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    bytes: Vec<u8>,
    x: Vec<f32>,
    dequant_row0: Vec<f32>,
    dots: Vec<f64>,
    abs_dots: Vec<f64>,
}

const NAMES: [&str; 11] = [
    "f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k",
];

fn json(name: &str) -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap()
}

fn json_floats(name: &str, key: &str) -> Vec<f64> {
    json(name)[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn load(name: &'static str) -> Fixture {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let json = json(name);
    let floats = |key: &str| -> Vec<f64> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let id = json["type_id"].as_u64().unwrap() as u32;
    Fixture {
        name,
        ty: GgmlType::from_id(id).unwrap(),
        rows: json["rows"].as_u64().unwrap() as usize,
        cols: json["cols"].as_u64().unwrap() as usize,
        bytes: std::fs::read(dir.join(json["bin"].as_str().unwrap())).unwrap(),
        x: floats("x").into_iter().map(|v| v as f32).collect(),
        dequant_row0: floats("dequant").into_iter().map(|v| v as f32).collect(),
        dots: floats("dots"),
        abs_dots: floats("abs_dots"),
    }
}

/// f32 sums over a few thousand terms in another order: well inside 1e-5 of Σ|w·x|.
fn close(got: f32, want: f64, magnitude: f64) -> bool {
    (f64::from(got) - want).abs() <= 1e-5 * magnitude + 1e-6
}

/// What rounding `x` to q8 blocks can add to the error of row `r`'s dot: each
/// activation moves by at most half its block's step, `max|x| / 254`, so the dot by
/// at most that times `Σ|w|` over the block. 0 where the type keeps f32 activations.
fn q8_bound(f: &Fixture, m: &QMatrix, r: usize) -> f64 {
    if !pith_kernels::dot_q8::covers(f.ty) {
        return 0.0;
    }
    let mut w = vec![];
    m.dequantize_row(r, &mut w);
    w.chunks_exact(32)
        .zip(f.x.chunks_exact(32))
        .map(|(w, x)| {
            let step = f64::from(x.iter().fold(0f32, |m, v| m.max(v.abs()))) / 127.0;
            step / 2.0 * w.iter().map(|w| f64::from(w.abs())).sum::<f64>()
        })
        .sum()
}

#[test]
fn rows_dequantise_like_the_gguf_package() {
    for f in NAMES.map(load) {
        let m = QMatrix::new(f.ty, f.rows, f.cols, &f.bytes).unwrap();
        let mut row = vec![];
        m.dequantize_row(0, &mut row);
        assert_eq!(row, f.dequant_row0, "{}", f.name);
    }
}

#[test]
fn every_isa_matches_the_reference_dot_products() {
    for f in NAMES.map(load) {
        let m = QMatrix::new(f.ty, f.rows, f.cols, &f.bytes).unwrap();
        for isa in Isa::available() {
            let got = m.matmul_f32_on(isa, &f.x, 1);
            for (r, &got) in got.iter().enumerate() {
                assert!(
                    close(got, f.dots[r], f.abs_dots[r]),
                    "{} on {isa:?}, row {r}: {got} vs {}",
                    f.name,
                    f.dots[r]
                );
            }
        }
    }
}

/// The q8 dots (the types [`pith_kernels::dot_q8::covers`]) differ from the exact
/// products by the activations' rounding: within [`q8_bound`]. Prints the error
/// relative to Σ|w·x| beside ggml's own q8 dot's (the fixtures' `dots_ggml`).
#[test]
fn q8_dots_stay_within_the_activations_rounding() {
    for f in NAMES.map(load) {
        let m = QMatrix::new(f.ty, f.rows, f.cols, &f.bytes).unwrap();
        if !pith_kernels::dot_q8::covers(f.ty) {
            continue;
        }
        let ggml = json_floats(f.name, "dots_ggml");
        let relative = |got: f64, r: usize| (got - f.dots[r]).abs() / f.abs_dots[r];
        let ggml_worst = (0..f.rows)
            .map(|r| relative(ggml[r], r))
            .fold(0.0, f64::max);
        for isa in Isa::available() {
            let got = m.matmul_on(isa, &f.x, 1);
            let mut worst = 0f64;
            for (r, &got) in got.iter().enumerate() {
                let bound = q8_bound(&f, &m, r) + 1e-5 * f.abs_dots[r] + 1e-6;
                let error = (f64::from(got) - f.dots[r]).abs();
                assert!(
                    error <= bound,
                    "{} on {isa:?}, row {r}: {got} vs {} (bound {bound})",
                    f.name,
                    f.dots[r]
                );
                worst = worst.max(relative(f64::from(got), r));
            }
            eprintln!(
                "{} on {isa:?}: q8 error up to {worst:.1e} of Σ|w·x| (ggml's: {ggml_worst:.1e})",
                f.name
            );
        }
    }
}

/// Activation rows `x · 2^(j % 8)`: scaling by a power of two is exact, so each row's
/// reference is the fixture's times its scale. 11 rows take the fused dots (eight or four
/// rows a pass and three one by one); 40 take the widened tiles and the GEMM.
#[test]
fn several_activation_rows_give_each_its_own_products() {
    for f in NAMES.map(load) {
        let m = QMatrix::new(f.ty, f.rows, f.cols, &f.bytes).unwrap();
        for n in [11, 40] {
            let scale = |j: usize| (1u32 << (j % 8)) as f32;
            let x: Vec<f32> = (0..n)
                .flat_map(|j| f.x.iter().map(move |v| v * scale(j)))
                .collect();
            // Only the fused dot (11 rows) takes q8 activations.
            let q8 = |r: usize| if n < 24 { q8_bound(&f, &m, r) } else { 0.0 };
            for isa in Isa::available() {
                let y = m.matmul_on(isa, &x, n);
                let y_f32 = m.matmul_f32_on(isa, &x, n);
                for j in 0..n {
                    let s = f64::from(scale(j));
                    for r in 0..f.rows {
                        let want = f.dots[r] * s;
                        let got = y_f32[j * f.rows + r];
                        assert!(
                            close(got, want, f.abs_dots[r] * s),
                            "{} on {isa:?} with f32 activations, {n} rows, activation row {j}, weight row {r}: {got} vs {want}",
                            f.name
                        );
                        let got = y[j * f.rows + r];
                        let tolerance = (q8(r) + 1e-5 * f.abs_dots[r]) * s + 1e-6;
                        assert!(
                            (f64::from(got) - want).abs() <= tolerance,
                            "{} on {isa:?}, {n} rows, activation row {j}, weight row {r}: {got} vs {want}",
                            f.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn mismatched_sizes_are_errors_not_panics() {
    let f = load("q4_k");
    let err = QMatrix::new(f.ty, f.rows, 1000, &f.bytes).unwrap_err();
    assert!(err.contains("whole"), "{err}");
    let err = QMatrix::new(f.ty, f.rows + 1, f.cols, &f.bytes).unwrap_err();
    assert!(err.contains("bytes"), "{err}");
}
