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

fn load(name: &'static str) -> Fixture {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
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
            let got = m.matmul_on(isa, &f.x, 1);
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

/// Activation rows `x · 2^(j % 8)`: scaling by a power of two is exact, so each row's
/// reference is the fixture's times its scale. 11 rows take the fused dot (eight rows a
/// pass and three one by one); 40 take the widened tiles and the GEMM.
#[test]
fn several_activation_rows_give_each_its_own_products() {
    for f in NAMES.map(load) {
        let m = QMatrix::new(f.ty, f.rows, f.cols, &f.bytes).unwrap();
        for n in [11, 40] {
            let scale = |j: usize| (1u32 << (j % 8)) as f32;
            let x: Vec<f32> = (0..n)
                .flat_map(|j| f.x.iter().map(move |v| v * scale(j)))
                .collect();
            for isa in Isa::available() {
                let y = m.matmul_on(isa, &x, n);
                for j in 0..n {
                    let s = f64::from(scale(j));
                    for r in 0..f.rows {
                        let (got, want) = (y[j * f.rows + r], f.dots[r] * s);
                        assert!(
                            close(got, want, f.abs_dots[r] * s),
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
