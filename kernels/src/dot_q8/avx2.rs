//! The q8 dot on x86-64 with AVX2: each group of 32 weight codes meets the 32
//! activation codes of its block in `maddubs` (unsigned bytes times signed bytes,
//! pairs summed to i16: signed weight codes give it their magnitude and move their
//! sign onto the activation codes) and `madd` (pairs times the integer scales, or 1,
//! summed to i32), and the eight i32 sums are scaled into f32 accumulators. Eight
//! groups' scales and mins (an octet of blocks, or a K-quant super-block) meet the
//! eight activation blocks' scales and sums a vector at a time.
//!
//! The walk over a row's blocks and the decoding of codes are the f32 dot's
//! (`codes_row!`, [`crate::dot::avx2`]).

use std::arch::x86_64::*;

use crate::dot::avx2::{
    f16_at, f16_pair, f16x8, hsum, load32, minus, nibbles16, split_nibbles, with_fifth_bits,
    with_high_bits,
};
use crate::dot::{KBlock, Octet, Scales};
use crate::q8::Q8Row;
use crate::quant::GgmlType;

/// Each row's sums in two accumulators that groups take in turn when there is one row,
/// so that its FMAs do not each wait on the last (several rows are independent
/// already, and one accumulator each leaves registers for the rest).
type Acc = [__m256; 2];

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `ty` must be one [`super::covers`] names and
/// the lengths checked by the caller.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&Q8Row; N]) -> [f32; N] {
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    // The weights' mins times the activation blocks' sums, eight blocks at a time.
    let mut mins = [_mm256_setzero_ps(); N];
    codes_row!(
        ty,
        row,
        |g, q, s| q6_k(&mut acc, &xs, g, q, s),
        |s, o, codes| {
            let q = std::array::from_fn(|j| {
                if j < o.count {
                    codes(j)
                } else {
                    _mm256_setzero_si256()
                }
            });
            octet(&mut acc, &mut mins, &xs, s, o, q);
        },
        |s, k, codes| k_block(&mut acc, &mut mins, &xs, s, k, KBlock::groups(codes))
    );
    std::array::from_fn(|r| {
        let [a, b] = acc[r];
        hsum(_mm256_add_ps(_mm256_add_ps(a, b), mins[r]))
    })
}

/// Adds Q6_K group `g`'s signed codes `q` times every activation row.
#[target_feature(enable = "avx2,fma")]
fn q6_k<const N: usize>(acc: &mut [Acc; N], xs: &[&Q8Row; N], g: usize, q: __m256i, s: Scales) {
    let magnitude = _mm256_abs_epi8(q);
    // `maddubs` sums values 2i and 2i + 1, so i16 lanes 0..8 hold values 0..16.
    let ints = _mm256_set_m128i(_mm_set1_epi16(s.ints[1]), _mm_set1_epi16(s.ints[0]));
    for (acc, x) in acc.iter_mut().zip(xs) {
        let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(load_codes(x.codes(g)), q));
        let scale = _mm256_set1_ps(s.d * x.d(g));
        add::<N>(acc, _mm256_madd_epi16(pairs, ints), scale);
    }
}

/// Adds octet `s`'s eight groups of codes `q` (zeros past the row's end) times every
/// activation row: the groups' scales times the blocks' scales, and the groups' mins
/// times the blocks' sums, eight at a time.
#[target_feature(enable = "avx2,fma")]
fn octet<const N: usize>(
    acc: &mut [Acc; N],
    mins: &mut [__m256; N],
    xs: &[&Q8Row; N],
    s: usize,
    o: Octet,
    q: [__m256i; 8],
) {
    // SAFETY: eight scales and eight mins.
    let (scales, weight_mins) =
        unsafe { (_mm256_loadu_ps(o.d.as_ptr()), _mm256_loadu_ps(o.m.as_ptr())) };
    let magnitudes = if o.signed {
        q.map(|q| _mm256_abs_epi8(q))
    } else {
        q
    };
    let ones = _mm256_set1_epi16(1);
    for ((acc, mins), x) in acc.iter_mut().zip(mins).zip(xs) {
        let x = x.octet(s);
        // SAFETY: an octet has eight scales and eight sums.
        let (d, sums) = unsafe {
            (
                _mm256_loadu_ps(x.d.as_ptr()),
                _mm256_loadu_ps(x.sums.as_ptr()),
            )
        };
        let scales = _mm256_mul_ps(scales, d);
        for j in 0..8 {
            let c = load_codes(&x.codes[j]);
            let c = if o.signed {
                _mm256_sign_epi8(c, q[j])
            } else {
                c
            };
            let pairs = _mm256_maddubs_epi16(magnitudes[j], c);
            let scale = _mm256_permutevar8x32_ps(scales, _mm256_set1_epi32(j as i32));
            add::<N>(acc, _mm256_madd_epi16(pairs, ones), scale);
        }
        if !o.signed {
            *mins = _mm256_fmadd_ps(weight_mins, sums, *mins);
        }
    }
}

/// Adds K-quant super-block `s`'s eight groups of unsigned codes `q` times every
/// activation row: the groups' scales times the blocks' scales, and the groups' mins
/// times the blocks' sums, eight at a time.
#[target_feature(enable = "avx2,fma")]
fn k_block<const N: usize>(
    acc: &mut [Acc; N],
    mins: &mut [__m256; N],
    xs: &[&Q8Row; N],
    s: usize,
    k: KBlock,
    q: [__m256i; 8],
) {
    let widen = |b: [u8; 8]| {
        // SAFETY: 8 bytes are in bounds.
        let b = unsafe { _mm_loadl_epi64(b.as_ptr().cast()) };
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b))
    };
    let scales = _mm256_mul_ps(widen(k.scales), _mm256_set1_ps(k.d));
    let weight_mins = _mm256_mul_ps(widen(k.mins), _mm256_set1_ps(-k.dmin));
    let ones = _mm256_set1_epi16(1);
    for ((acc, mins), x) in acc.iter_mut().zip(mins).zip(xs) {
        let x = x.octet(s);
        // SAFETY: an octet has eight scales and eight sums.
        let (d, sums) = unsafe {
            (
                _mm256_loadu_ps(x.d.as_ptr()),
                _mm256_loadu_ps(x.sums.as_ptr()),
            )
        };
        let scales = _mm256_mul_ps(scales, d);
        for (j, q) in q.into_iter().enumerate() {
            let pairs = _mm256_maddubs_epi16(q, load_codes(&x.codes[j]));
            let scale = _mm256_permutevar8x32_ps(scales, _mm256_set1_epi32(j as i32));
            add::<N>(acc, _mm256_madd_epi16(pairs, ones), scale);
        }
        *mins = _mm256_fmadd_ps(weight_mins, sums, *mins);
    }
}

/// `sums · scale` into the accumulator whose turn it is, of one of `N` rows.
#[target_feature(enable = "avx2,fma")]
fn add<const N: usize>(acc: &mut Acc, sums: __m256i, scale: __m256) {
    let [a, b] = *acc;
    let a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, a);
    *acc = if N == 1 { [b, a] } else { [a, b] };
}

#[target_feature(enable = "avx2")]
fn load_codes(codes: &[i8; 32]) -> __m256i {
    // SAFETY: 32 codes; the load is unaligned.
    unsafe { _mm256_loadu_si256(codes.as_ptr().cast()) }
}
