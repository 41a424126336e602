//! The fused dot on x86-64 with AVX2, FMA and F16C: each group of 32 weights is
//! widened to four vectors of eight f32 (`q * scale + min`) and multiplied into every
//! activation row while it sits in registers.
//!
//! Every quantised type except Q8_0 reduces to unsigned codes with a scale and a min per
//! 16 values (Q4_0: min -8d; Q6_K: min -32·d·scale), so one widening serves them all.

use std::arch::x86_64::*;

use crate::quant::{GgmlType, scale_min_k4};

/// The f16 at `b[at..]`, converted by F16C (`half`'s conversion checks the CPU on
/// every call, which cost a fifth of the decode time).
#[target_feature(enable = "f16c")]
fn f16_at(b: &[u8], at: usize) -> f32 {
    let bits = i32::from(u16::from_le_bytes([b[at], b[at + 1]]));
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)))
}

/// 32 weights as four vectors of eight.
type Group = [__m256; 4];

pub fn available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

pub fn covers(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, F32 | F16 | Bf16 | Q4_0 | Q4_1 | Q8_0 | Q4K | Q5K | Q6K)
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `ty` must be one [`covers`] names and the
/// lengths checked by the caller.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[f32]; N]) -> [f32; N] {
    let mut acc = [[_mm256_setzero_ps(); 4]; N];
    let mut add = |group: usize, w: Group| accumulate(&mut acc, group, &xs, w);
    match ty {
        GgmlType::F32 => row
            .chunks_exact(128)
            .enumerate()
            .for_each(|(g, b)| add(g, f32_group(b))),
        GgmlType::F16 => row
            .chunks_exact(64)
            .enumerate()
            .for_each(|(g, b)| add(g, f16_group(b))),
        GgmlType::Bf16 => row
            .chunks_exact(64)
            .enumerate()
            .for_each(|(g, b)| add(g, bf16_group(b))),
        GgmlType::Q8_0 => row.chunks_exact(34).enumerate().for_each(|(g, b)| {
            let d = _mm256_set1_ps(f16_at(b, 0));
            add(g, widen_i8(load32(&b[2..34]), d));
        }),
        GgmlType::Q4_0 => row.chunks_exact(18).enumerate().for_each(|(g, b)| {
            let d = f16_at(b, 0);
            add(g, widen_u8(nibbles16(&b[2..18]), [d; 2], [-8.0 * d; 2]));
        }),
        GgmlType::Q4_1 => row.chunks_exact(20).enumerate().for_each(|(g, b)| {
            let (d, m) = (f16_at(b, 0), f16_at(b, 2));
            add(g, widen_u8(nibbles16(&b[4..20]), [d; 2], [m; 2]));
        }),
        GgmlType::Q4K => row.chunks_exact(144).enumerate().for_each(|(s, b)| {
            for j in 0..4 {
                let qs = load32(&b[16 + 32 * j..48 + 32 * j]);
                let (lo, hi) = split_nibbles(qs);
                add(8 * s + 2 * j, k_group(lo, b, 2 * j));
                add(8 * s + 2 * j + 1, k_group(hi, b, 2 * j + 1));
            }
        }),
        GgmlType::Q5K => row.chunks_exact(176).enumerate().for_each(|(s, b)| {
            let qh = load32(&b[16..48]);
            for j in 0..4 {
                let (lo, hi) = split_nibbles(load32(&b[48 + 32 * j..80 + 32 * j]));
                let lo = _mm256_or_si256(lo, high_bits(qh, 2 * j as i32, 1, 4));
                let hi = _mm256_or_si256(hi, high_bits(qh, 2 * j as i32 + 1, 1, 4));
                add(8 * s + 2 * j, k_group(lo, b, 2 * j));
                add(8 * s + 2 * j + 1, k_group(hi, b, 2 * j + 1));
            }
        }),
        GgmlType::Q6K => row.chunks_exact(210).enumerate().for_each(|(s, b)| {
            let d = f16_at(b, 208);
            for half in 0..2 {
                let (first, second) = (
                    split_nibbles(load32(&b[64 * half..64 * half + 32])),
                    split_nibbles(load32(&b[64 * half + 32..64 * half + 64])),
                );
                let qh = load32(&b[128 + 32 * half..160 + 32 * half]);
                let codes = [first.0, second.0, first.1, second.1];
                for (k, low) in codes.into_iter().enumerate() {
                    let q = _mm256_or_si256(low, high_bits(qh, 2 * k as i32, 3, 4));
                    let sc = &b[192 + 8 * half + 2 * k..];
                    let scale = [d * f32::from(sc[0] as i8), d * f32::from(sc[1] as i8)];
                    add(
                        8 * s + 4 * half + k,
                        widen_u8(q, scale, scale.map(|x| -32.0 * x)),
                    );
                }
            }
        }),
        _ => unreachable!("{ty:?} has no AVX2 path"),
    }
    acc.map(|[a, b, c, d]| hsum(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d))))
}

/// Adds `w · x[32 group..]` for every activation row. One row spreads its FMAs over
/// four accumulators so that they do not wait on each other; several rows are
/// independent already, and one accumulator each leaves registers for the weights.
#[target_feature(enable = "avx2,fma")]
fn accumulate<const N: usize>(
    acc: &mut [[__m256; 4]; N],
    group: usize,
    xs: &[&[f32]; N],
    w: Group,
) {
    for (a, x) in acc.iter_mut().zip(xs) {
        let x = &x[32 * group..32 * group + 32];
        for (k, w) in w.into_iter().enumerate() {
            // SAFETY: `x` has 32 values, so 8 from `8 k` are in bounds.
            let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * k)) };
            let a = &mut a[if N == 1 { k } else { 0 }];
            *a = _mm256_fmadd_ps(w, v, *a);
        }
    }
}

#[target_feature(enable = "avx2")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2")]
fn load32(b: &[u8]) -> __m256i {
    assert!(b.len() >= 32);
    // SAFETY: 32 bytes are in bounds.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// 16 bytes of nibbles: the low ones are values 0..16, the high ones 16..32.
#[target_feature(enable = "avx2")]
fn nibbles16(b: &[u8]) -> __m256i {
    assert!(b.len() >= 16);
    // SAFETY: 16 bytes are in bounds.
    let v = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
    let mask = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(v, mask);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(v), mask);
    _mm256_set_m128i(hi, lo)
}

/// The low and the high nibbles of 32 bytes.
#[target_feature(enable = "avx2")]
fn split_nibbles(v: __m256i) -> (__m256i, __m256i) {
    let mask = _mm256_set1_epi8(0x0F);
    (
        _mm256_and_si256(v, mask),
        _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask),
    )
}

/// `((qh >> shift) & mask) << to` for each byte.
#[target_feature(enable = "avx2")]
fn high_bits(qh: __m256i, shift: i32, mask: i8, to: i32) -> __m256i {
    let bits = _mm256_and_si256(
        _mm256_srl_epi16(qh, _mm_cvtsi32_si128(shift)),
        _mm256_set1_epi8(mask),
    );
    _mm256_sll_epi16(bits, _mm_cvtsi32_si128(to))
}

/// A Q4_K/Q5_K sub-block's codes with its 6-bit scale and min.
#[target_feature(enable = "avx2,fma,f16c")]
fn k_group(q: __m256i, block: &[u8], sub: usize) -> Group {
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    let (sc, m) = scale_min_k4(sub, &block[4..16]);
    widen_u8(q, [d * sc; 2], [-dmin * m; 2])
}

/// 32 unsigned codes to `q * scale + min`, the first 16 with the first scale and min.
#[target_feature(enable = "avx2,fma")]
fn widen_u8(q: __m256i, scale: [f32; 2], min: [f32; 2]) -> Group {
    let halves = [_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q)];
    let eight = |v: __m128i, h: usize| {
        let f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
        _mm256_fmadd_ps(f, _mm256_set1_ps(scale[h]), _mm256_set1_ps(min[h]))
    };
    [
        eight(halves[0], 0),
        eight(_mm_srli_si128::<8>(halves[0]), 0),
        eight(halves[1], 1),
        eight(_mm_srli_si128::<8>(halves[1]), 1),
    ]
}

/// 32 signed codes times `d`.
#[target_feature(enable = "avx2")]
fn widen_i8(q: __m256i, d: __m256) -> Group {
    let halves = [_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q)];
    let eight = |v: __m128i| _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d);
    [
        eight(halves[0]),
        eight(_mm_srli_si128::<8>(halves[0])),
        eight(halves[1]),
        eight(_mm_srli_si128::<8>(halves[1])),
    ]
}

#[target_feature(enable = "avx2")]
fn f32_group(b: &[u8]) -> Group {
    assert!(b.len() >= 128);
    // SAFETY: 128 bytes are in bounds; loads are unaligned.
    std::array::from_fn(|k| unsafe { _mm256_loadu_ps(b.as_ptr().add(32 * k).cast()) })
}

#[target_feature(enable = "avx2,f16c")]
fn f16_group(b: &[u8]) -> Group {
    assert!(b.len() >= 64);
    // SAFETY: 64 bytes are in bounds; loads are unaligned.
    std::array::from_fn(|k| {
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(b.as_ptr().add(16 * k).cast()) })
    })
}

/// bf16 is the top half of an f32.
#[target_feature(enable = "avx2")]
fn bf16_group(b: &[u8]) -> Group {
    assert!(b.len() >= 64);
    std::array::from_fn(|k| {
        // SAFETY: 64 bytes are in bounds; loads are unaligned.
        let v = unsafe { _mm_loadu_si128(b.as_ptr().add(16 * k).cast()) };
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(v)))
    })
}
