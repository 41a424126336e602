//! The q8 dot on x86-64 with AVX2: each group of 32 weight codes meets the 32
//! activation codes of its block in `maddubs` (unsigned weight codes times signed
//! activation codes, pairs summed to i16) and `madd` (pairs times the sub-block
//! scales, summed to i32), and the eight i32 sums are scaled into f32 accumulators.
//!
//! The walk over a row's blocks and the decoding of codes are the f32 dot's
//! (`codes_row!`, [`crate::dot::avx2`]).

use std::arch::x86_64::*;

use super::Q8Block;
use crate::dot::Affine;
use crate::dot::avx2::{
    f16_at, hsum, load32, nibbles16, split_nibbles, with_fifth_bits, with_high_bits,
};
use crate::quant::GgmlType;

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `ty` must be one [`super::covers`] names and
/// the lengths checked by the caller.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[Q8Block]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let mut mins = [0f32; N];
    codes_row!(
        ty,
        row,
        |g, q, a: Affine| unsigned(&mut acc, &mut mins, &xs, g, q, a),
        |g, q, d| signed(&mut acc, &xs, g, q, d)
    );
    std::array::from_fn(|r| hsum(acc[r]) + mins[r])
}

/// Adds group `g`'s unsigned codes `q` times every activation row.
#[target_feature(enable = "avx2,fma")]
fn unsigned<const N: usize>(
    acc: &mut [__m256; N],
    mins: &mut [f32; N],
    xs: &[&[Q8Block]; N],
    g: usize,
    q: __m256i,
    a: Affine,
) {
    // maddubs sums values 2i and 2i + 1; i16 lanes 0..8 hold values 0..16.
    let scales = _mm256_set_m128i(_mm_set1_epi16(a.scales[1]), _mm_set1_epi16(a.scales[0]));
    for ((acc, min), x) in acc.iter_mut().zip(mins).zip(xs) {
        let x = &x[g];
        let codes = _mm256_madd_epi16(_mm256_maddubs_epi16(q, load_codes(x)), scales);
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(codes), _mm256_set1_ps(a.d * x.d), *acc);
        *min += a.mins[0] * x.sums[0] + a.mins[1] * x.sums[1];
    }
}

/// Adds group `g`'s signed codes `q` (Q8_0) times every activation row: `maddubs`
/// takes `|q|` and moves the sign onto the activation codes.
#[target_feature(enable = "avx2,fma")]
fn signed<const N: usize>(
    acc: &mut [__m256; N],
    xs: &[&[Q8Block]; N],
    g: usize,
    q: __m256i,
    d: f32,
) {
    let magnitude = _mm256_abs_epi8(q);
    for (acc, x) in acc.iter_mut().zip(xs) {
        let x = &x[g];
        let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(load_codes(x), q));
        let codes = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(codes), _mm256_set1_ps(d * x.d), *acc);
    }
}

#[target_feature(enable = "avx2")]
fn load_codes(x: &Q8Block) -> __m256i {
    // SAFETY: a block has 32 codes; the load is unaligned.
    unsafe { _mm256_loadu_si256(x.codes.as_ptr().cast()) }
}
