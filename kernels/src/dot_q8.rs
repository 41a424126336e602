//! The integer dot: one stored weight row against up to [`ROWS`] activation rows
//! quantised to 8 bits ([`crate::q8`]), as llama.cpp decodes.
//!
//! The f32 dot ([`crate::dot`]) widens every weight to f32 and spends an FMA on it for
//! each activation row; on x86-64 that runs at a fifth of the speed the weights can be
//! read from memory, so decoding a token is bound by that arithmetic, not by the reads.
//! Here the weight codes stay bytes: 32 of them meet the activation codes of their block
//! in a few integer instructions, and only each group's sums are scaled in f32. Types
//! whose codes carry an offset (Q4_0, Q5_0, Q6_K) have it taken off the codes, which
//! become signed; the weights' mins (Q4_1's, Q5_1's, K-quants') meet the activations
//! through the blocks' precomputed sums. Groups go eight at a time where their scales
//! allow (an octet of 32-value blocks, a K-quant super-block), so that the scales and
//! mins of eight groups meet the eight activation blocks' in vectors.
//!
//! Measured on one core of an AMD EPYC with AVX2 (`examples/matvec.rs`, 200 MB of
//! weights, one activation row, best of four runs on a shared machine), against the
//! f32 dot before this one: Q4_1 5.4 -> 19.8 GB/s, Q4_K 8.5 -> 23.8, Q6_K 8.9 -> 20.4,
//! Q8_0 10.4 -> 31.4 (the core reads memory at about 32 GB/s).
//!
//! The price is the rounding of the activations: each moves by at most half its
//! block's step (`max|x| / 254`), so a dot moves by at most `Σ_blocks step/2 · Σ|w|`
//! (the tests hold every path to that); on real tensors it stays within 2e-3 of
//! `Σ|w·x|`, as llama.cpp's own q8 dots do. [`crate::QMatrix::matmul_f32_on`] keeps
//! the activations f32.
//!
//! Every path computes the same integer sums; the scalar one is the reference the SIMD
//! paths are tested against, and the path for CPUs without them.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;

use crate::dot::Isa;
use crate::q8::Q8Row;
use crate::quant::GgmlType;

/// Activation rows one pass over a weight row serves. Fewer than the f32 dot's
/// [`crate::dot::ROWS`]: each row costs the q8 dot more instructions a group than the
/// decoding they share (a Q4_1 matmul of 8 rows on one core: 3.1 GB/s of weights
/// four rows a pass, 1.9 eight).
pub const ROWS: usize = 4;

/// Whether `ty` has q8 dots (on every [`Isa`]): the quantised types. The float types
/// keep the f32 dot.
pub fn covers(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4K | Q5K | Q6K)
}

/// `[row · x for x in xs]`, with `row` one stored row of `ty` and every `x` as many q8
/// blocks as the row has values over 32.
///
/// # Panics
/// When the lengths disagree, `ty` is not one [`covers`] names or `isa` is not one
/// [`Isa::available`] lists.
pub fn dot<const N: usize>(isa: Isa, ty: GgmlType, row: &[u8], xs: [&Q8Row; N]) -> [f32; N] {
    assert!(covers(ty), "{ty:?} has no q8 dot");
    let cols = row.len() / ty.block_bytes() * ty.block_len();
    assert!(
        row.len().is_multiple_of(ty.block_bytes()) && xs.iter().all(|x| 32 * x.blocks() == cols),
        "a {ty:?} row of {} bytes against q8 activations of {:?} blocks",
        row.len(),
        xs.map(Q8Row::blocks)
    );
    match isa {
        Isa::Scalar => scalar::dot(ty, row, xs),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            assert!(
                crate::dot::avx2::available(),
                "this CPU has no AVX2, FMA or F16C"
            );
            // SAFETY: the CPU has the features, checked just above.
            unsafe { avx2::dot(ty, row, xs) }
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: every aarch64 target Rust builds for has Advanced SIMD, and `sdot`
        // is checked for.
        Isa::Neon => unsafe {
            if neon::has_dotprod() {
                neon::dot_sdot(ty, row, xs)
            } else {
                neon::dot(ty, row, xs)
            }
        },
        #[allow(unreachable_patterns)]
        _ => panic!("{isa:?} kernels are not built for this CPU"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Eight rows, as the f32 dot's tests.
    use crate::dot::ROWS;
    use crate::dot::tests::{activations, blocks};

    /// The types with an 8-bit path.
    fn types() -> impl Iterator<Item = GgmlType> {
        GgmlType::ALL.into_iter().filter(|&ty| covers(ty))
    }

    /// How far rounding the activations of `x` can move `w · x`: each value by at most
    /// half its block's step.
    pub(crate) fn rounding_bound(w: &[f32], x: &[f32]) -> f32 {
        w.chunks_exact(32)
            .zip(x.chunks_exact(32))
            .map(|(w, x)| {
                let step = x.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                step / 2.0 * w.iter().map(|w| w.abs()).sum::<f32>()
            })
            .sum()
    }

    #[test]
    fn every_isa_agrees_with_the_q8_reference_and_the_f32_dot_on_every_type() {
        // 352 values: eleven blocks of 32, the last octet partly filled.
        for (ty, cols) in types()
            .flat_map(|ty| [(ty, 512), (ty, 352)])
            .filter(|(ty, cols)| cols % ty.block_len() == 0)
        {
            let row = blocks(ty, cols / ty.block_len(), 7);
            let w = ty.dequantize(&row);
            let xs = activations(cols, ROWS);
            let q: Vec<Q8Row> = xs.iter().map(|x| Q8Row::quantize(x)).collect();
            let qs: [&Q8Row; ROWS] = std::array::from_fn(|i| &q[i]);
            let want = scalar::dot(ty, &row, qs);
            let refs: [&[f32]; ROWS] = std::array::from_fn(|i| xs[i].as_slice());
            let exact = crate::dot::dot(Isa::Scalar, ty, &row, refs);
            for r in 0..ROWS {
                let magnitude: f32 = w.iter().zip(&xs[r]).map(|(w, x)| (w * x).abs()).sum();
                let bound = rounding_bound(&w, &xs[r]) + 1e-5 * magnitude + 1e-6;
                assert!(
                    (want[r] - exact[r]).abs() <= bound,
                    "{ty:?} row {r}: q8 {} vs f32 {} (bound {bound})",
                    want[r],
                    exact[r]
                );
            }
            for isa in Isa::available() {
                // Eight rows a pass, the q8 dots' four, and one alone.
                let eight = dot(isa, ty, &row, qs);
                let four = dot(isa, ty, &row, [qs[0], qs[1], qs[2], qs[3]]);
                let one = dot(isa, ty, &row, [qs[2]]);
                let got = (0..ROWS)
                    .map(|r| (r, eight[r]))
                    .chain((0..4).map(|r| (r, four[r])).chain([(2, one[0])]));
                for (r, got) in got {
                    let magnitude: f32 = w.iter().zip(&xs[r]).map(|(w, x)| (w * x).abs()).sum();
                    assert!(
                        (got - want[r]).abs() <= 1e-5 * magnitude + 1e-6,
                        "{isa:?} {ty:?} row {r}: {got} vs {}",
                        want[r]
                    );
                }
            }
        }
    }

    /// Both NEON paths, whichever [`dot`] picks: `smull` on every CPU, `sdot` where
    /// the CPU has it (qemu's default CPU does).
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn both_neon_sums_agree_with_the_q8_reference() {
        let cols = 512;
        let xs = activations(cols, ROWS);
        let q: Vec<Q8Row> = xs.iter().map(|x| Q8Row::quantize(x)).collect();
        let qs: [&Q8Row; ROWS] = std::array::from_fn(|i| &q[i]);
        if !neon::has_dotprod() {
            eprintln!("this CPU has no sdot: only the smull path is tested");
        }
        for ty in types() {
            let row = blocks(ty, cols / ty.block_len(), 11);
            let w = ty.dequantize(&row);
            let want = scalar::dot(ty, &row, qs);
            // SAFETY: Advanced SIMD is everywhere.
            let mut paths = vec![("smull", unsafe { neon::dot(ty, &row, qs) })];
            if neon::has_dotprod() {
                // SAFETY: the CPU has `sdot`.
                paths.push(("sdot", unsafe { neon::dot_sdot(ty, &row, qs) }));
            }
            for (path, got) in paths {
                for r in 0..ROWS {
                    let magnitude: f32 = w.iter().zip(&xs[r]).map(|(w, x)| (w * x).abs()).sum();
                    assert!(
                        (got[r] - want[r]).abs() <= 1e-5 * magnitude + 1e-6,
                        "{path} {ty:?} row {r}: {} vs {}",
                        got[r],
                        want[r]
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "against q8 activations")]
    fn short_activations_are_refused() {
        let row = blocks(GgmlType::Q8_0, 2, 1);
        dot(
            Isa::best(),
            GgmlType::Q8_0,
            &row,
            [&Q8Row::quantize(&[0.0; 32])],
        );
    }

    #[test]
    #[should_panic(expected = "no q8 dot")]
    fn float_types_are_refused() {
        dot(
            Isa::Scalar,
            GgmlType::F32,
            &[0; 128],
            [&Q8Row::quantize(&[0.0; 32])],
        );
    }
}
