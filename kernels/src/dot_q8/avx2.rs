//! The q8 dot on x86-64 with AVX2: each group of 32 weight codes meets the 32
//! activation codes of its block in `maddubs` (unsigned bytes times signed bytes,
//! pairs summed to i16: signed weight codes give it their magnitude and move their
//! sign onto the activation codes) and `madd` (pairs times the integer scales, summed
//! to i32), and the eight i32 sums are scaled into f32 accumulators.
//!
//! The walk over a row's blocks and the decoding of codes are the f32 dot's
//! (`codes_row!`, [`crate::dot::avx2`]).

use std::arch::x86_64::*;

use super::Q8Block;
use crate::dot::Scales;
use crate::dot::avx2::{
    f16_at, hsum, load32, minus, nibbles16, split_nibbles, with_fifth_bits, with_high_bits,
};
use crate::quant::GgmlType;

/// Each row's sums in two accumulators that groups take in turn, so that one row's
/// FMAs do not each wait on the last.
type Acc = [__m256; 2];

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `ty` must be one [`super::covers`] names and
/// the lengths checked by the caller.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[Q8Block]; N]) -> [f32; N] {
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    let mut mins = [[0f32; 2]; N];
    codes_row!(
        ty,
        row,
        |g, q, s| signed(&mut acc, &xs, g, q, s),
        |g, q, s, min| unsigned(&mut acc, &mut mins, &xs, g, q, s, min)
    );
    std::array::from_fn(|r| {
        let [a, b] = acc[r];
        hsum(_mm256_add_ps(a, b)) + (mins[r][0] + mins[r][1])
    })
}

/// Adds group `g`'s signed codes `q` times every activation row.
#[target_feature(enable = "avx2,fma")]
fn signed<const N: usize>(
    acc: &mut [Acc; N],
    xs: &[&[Q8Block]; N],
    g: usize,
    q: __m256i,
    s: Scales,
) {
    let magnitude = _mm256_abs_epi8(q);
    let ints = ints(s);
    for (acc, x) in acc.iter_mut().zip(xs) {
        let x = &x[g];
        let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(load_codes(x), q));
        add(acc, _mm256_madd_epi16(pairs, ints), s.d * x.d);
    }
}

/// Adds group `g`'s unsigned codes `q` times every activation row, and its `min`
/// times the rows' sums.
#[target_feature(enable = "avx2,fma")]
fn unsigned<const N: usize>(
    acc: &mut [Acc; N],
    mins: &mut [[f32; 2]; N],
    xs: &[&[Q8Block]; N],
    g: usize,
    q: __m256i,
    s: Scales,
    min: f32,
) {
    let ints = ints(s);
    for ((acc, mins), x) in acc.iter_mut().zip(mins).zip(xs) {
        let x = &x[g];
        let pairs = _mm256_maddubs_epi16(q, load_codes(x));
        add(acc, _mm256_madd_epi16(pairs, ints), s.d * x.d);
        *mins = [mins[1], mins[0] + min * x.sum];
    }
}

/// The integer scales as i16 lanes: `maddubs` sums values 2i and 2i + 1, so lanes
/// 0..8 hold values 0..16.
#[target_feature(enable = "avx2")]
fn ints(s: Scales) -> __m256i {
    if s.halves {
        _mm256_set_m128i(_mm_set1_epi16(s.ints[1]), _mm_set1_epi16(s.ints[0]))
    } else {
        _mm256_set1_epi16(s.ints[0])
    }
}

/// `sums · scale` into the accumulator whose turn it is.
#[target_feature(enable = "avx2,fma")]
fn add(acc: &mut Acc, sums: __m256i, scale: f32) {
    let [a, b] = *acc;
    *acc = [
        b,
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(scale), a),
    ];
}

#[target_feature(enable = "avx2")]
fn load_codes(x: &Q8Block) -> __m256i {
    // SAFETY: a block has 32 codes; the load is unaligned.
    unsafe { _mm256_loadu_si256(x.codes.as_ptr().cast()) }
}
