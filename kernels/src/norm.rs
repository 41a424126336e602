//! Layer normalisation of rows, with the residual added first: BERT's `LayerNorm(x + r)`
//! after each block.
//!
//! Composed from Burn's operations it is nine passes over the activations (add, mean,
//! subtract, square, mean, add, root, divide, scale and shift), each a fresh tensor:
//! with the allocations and the threads woken for each, about 6% of the embedder's time
//! at one passage a call. Here each row is normalised in place while it is in the
//! core's cache (a few short loops over its 384 values), the rows shared among the
//! threads. Straight-line loops the compiler vectorises for the instruction set it
//! compiles them for; the scalar build is the reference the SIMD builds are tested
//! against.

use rayon::prelude::*;

use crate::dot::Isa;
use crate::reduce::{fold, sum};

/// A row's learnt scale and shift, and the epsilon added to its variance.
#[derive(Debug, Clone, Copy)]
pub struct Norm<'a> {
    pub weight: &'a [f32],
    pub bias: &'a [f32],
    pub eps: f32,
}

/// `x ← LayerNorm(x + residual)` row by row, rows as wide as `norm.weight`.
///
/// # Panics
/// When the lengths disagree, or `isa` is not one [`Isa::available`] lists.
pub fn add_layer_norm(isa: Isa, x: &mut [f32], residual: &[f32], norm: Norm) {
    assert!(
        Isa::available().contains(&isa),
        "{isa:?} kernels do not run on this CPU"
    );
    let width = norm.weight.len();
    assert!(
        width > 0
            && norm.bias.len() == width
            && x.len() == residual.len()
            && x.len().is_multiple_of(width),
        "{} values and {} residuals are not rows of {width}",
        x.len(),
        residual.len()
    );
    let chunk = width * ROWS_PER_TASK;
    x.par_chunks_mut(chunk)
        .zip(residual.par_chunks(chunk))
        .for_each(|(x, residual)| match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 and FMA, checked above.
            Isa::Avx2 => unsafe { rows_avx2(x, residual, norm) },
            // aarch64's baseline has Advanced SIMD, so the plain loops vectorise there.
            _ => rows(x, residual, norm),
        });
}

/// Rows one task normalises: enough to outweigh handing it to another thread.
const ROWS_PER_TASK: usize = 32;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rows_avx2(x: &mut [f32], residual: &[f32], norm: Norm) {
    rows(x, residual, norm);
}

#[inline(always)]
fn rows(x: &mut [f32], residual: &[f32], norm: Norm) {
    let width = norm.weight.len();
    for (row, r) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
        row.iter_mut().zip(r).for_each(|(x, r)| *x += r);
        let mean = sum(row) / width as f32;
        row.iter_mut().for_each(|x| *x -= mean);
        let var = fold(row, 0.0, |x| x * x, |a, b| a + b) / width as f32;
        let inv = 1.0 / (var + norm.eps).sqrt();
        for ((x, w), b) in row.iter_mut().zip(norm.weight).zip(norm.bias) {
            *x = *x * inv * w + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::bytes;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        bytes(n, seed)
            .into_iter()
            .map(|b| f32::from(b) / 32.0 - 4.0)
            .collect()
    }

    #[test]
    fn every_isa_matches_the_definition() {
        // A width that is not a multiple of the lanes, rows offset far from zero (where a
        // one-pass variance would cancel), and more rows than one task takes.
        let (width, rows) = (389, 2 * ROWS_PER_TASK + 5);
        let x: Vec<f32> = values(rows * width, 1).iter().map(|v| v + 300.0).collect();
        let residual = values(rows * width, 2);
        let (weight, bias) = (values(width, 3), values(width, 4));
        let norm = Norm {
            weight: &weight,
            bias: &bias,
            eps: 1e-12,
        };
        for isa in Isa::available() {
            let mut got = x.clone();
            add_layer_norm(isa, &mut got, &residual, norm);
            for (r, row) in got.chunks_exact(width).enumerate() {
                let sum: Vec<f64> = (0..width)
                    .map(|i| f64::from(x[r * width + i]) + f64::from(residual[r * width + i]))
                    .collect();
                let mean = sum.iter().sum::<f64>() / width as f64;
                let var = sum.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / width as f64;
                for (i, &g) in row.iter().enumerate() {
                    let want = (sum[i] - mean) / (var + 1e-12).sqrt() * f64::from(weight[i])
                        + f64::from(bias[i]);
                    assert!(
                        (f64::from(g) - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{isa:?} row {r} [{i}]: {g} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "not rows of")]
    fn a_partial_row_is_refused() {
        let mut x = vec![0f32; 5];
        add_layer_norm(
            Isa::Scalar,
            &mut x,
            &[0.0; 5],
            Norm {
                weight: &[1.0; 2],
                bias: &[0.0; 2],
                eps: 1e-5,
            },
        );
    }
}
