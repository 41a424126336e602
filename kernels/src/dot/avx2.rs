//! The fused dot on x86-64 with AVX2, FMA and F16C: each group of 32 weights is
//! widened to four vectors of eight f32 (`q * scale + min`) and multiplied into every
//! activation row while it sits in registers.
//!
//! The walk over a row's blocks is [`widen_row`]'s; this file holds how AVX2 decodes.

use std::arch::asm;
use std::arch::x86_64::*;

use super::Scales;
use crate::quant::GgmlType;

/// The f16 at `b[at..]`, converted by F16C (`half`'s conversion checks the CPU on
/// every call, which cost a fifth of the decode time).
#[target_feature(enable = "f16c")]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    _mm_cvtss_f32(f16s(u32::from(u16::from_le_bytes([b[at], b[at + 1]]))))
}

/// The f16s at `b[0..2]` and `b[2..4]` (a block's scale and min), converted together.
#[target_feature(enable = "f16c")]
pub(crate) fn f16_pair(b: &[u8]) -> (f32, f32) {
    let f = f16s(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    (_mm_cvtss_f32(f), _mm_cvtss_f32(_mm_movehdup_ps(f)))
}

/// The two f16s in `bits`, converted into the first two lanes.
///
/// In assembly, so that the f16s enter their register by `vmovd`, which writes all of
/// it: left to itself, LLVM inserts the 16 bits into whatever register is free, and the
/// conversion then waits on that register's last value, which chained each block's
/// scales to the previous block's sums (the q8 dot of Q4_1 ran at half its speed).
#[target_feature(enable = "f16c")]
fn f16s(bits: u32) -> __m128 {
    let f: __m128;
    // SAFETY: F16C is enabled; the instructions touch only the named registers.
    unsafe {
        asm!(
            "vmovd {f}, {bits:e}",
            "vcvtph2ps {f}, {f}",
            bits = in(reg) bits,
            f = out(xmm_reg) f,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    f
}

/// The f16s at `b[stride · j + at..]` for the `b.len() / stride` (at most eight)
/// blocks `j` of `b`, converted together; 0 past them.
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(crate) fn f16x8(b: &[u8], stride: usize, at: usize) -> [f32; 8] {
    let count = b.len() / stride;
    let bits: [i16; 8] = std::array::from_fn(|j| {
        let at = stride * j + at;
        if j < count {
            i16::from_le_bytes([b[at], b[at + 1]])
        } else {
            0
        }
    });
    let v = _mm_set_epi16(
        bits[7], bits[6], bits[5], bits[4], bits[3], bits[2], bits[1], bits[0],
    );
    let mut out = [0f32; 8];
    // SAFETY: `out` has room for eight.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), _mm256_cvtph_ps(v)) };
    out
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
    matches!(
        ty,
        F32 | F16 | Bf16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4K | Q5K | Q6K
    )
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `ty` must be one [`covers`] names and the
/// lengths checked by the caller.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[f32]; N]) -> [f32; N] {
    let mut acc = [[_mm256_setzero_ps(); 4]; N];
    let mut add = |group: usize, w: Group| accumulate(&mut acc, group, &xs, w);
    widen_row!(ty, row, add);
    acc.map(|[a, b, c, d]| hsum(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d))))
}

accumulate_fn!("avx2,fma", __m256, 8, _mm256_loadu_ps, |a, w, v| {
    _mm256_fmadd_ps(w, v, a)
});

#[target_feature(enable = "avx2")]
pub(crate) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2")]
pub(crate) fn load32(b: &[u8]) -> __m256i {
    assert!(b.len() >= 32);
    // SAFETY: 32 bytes are in bounds.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// 16 bytes of nibbles: the low ones are values 0..16, the high ones 16..32.
#[target_feature(enable = "avx2")]
pub(crate) fn nibbles16(b: &[u8]) -> __m256i {
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
pub(crate) fn split_nibbles(v: __m256i) -> (__m256i, __m256i) {
    let mask = _mm256_set1_epi8(0x0F);
    (
        _mm256_and_si256(v, mask),
        _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask),
    )
}

/// `q | ((qh >> shift) & mask) << 4` for each byte: the high bits of 5- and 6-bit codes.
#[target_feature(enable = "avx2")]
pub(crate) fn with_high_bits(q: __m256i, qh: __m256i, shift: u32, mask: u8) -> __m256i {
    let bits = _mm256_and_si256(
        _mm256_srl_epi16(qh, _mm_cvtsi32_si128(shift as i32)),
        _mm256_set1_epi8(mask as i8),
    );
    _mm256_or_si256(q, _mm256_slli_epi16::<4>(bits))
}

/// `q | bit j << 4` for each byte `j` of `q`, with `qh` 32 bits little-endian: the
/// fifth bits of Q5_0/Q5_1 codes.
#[target_feature(enable = "avx2")]
pub(crate) fn with_fifth_bits(q: __m256i, qh: &[u8]) -> __m256i {
    let bits = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    // Byte j of the result takes byte j / 8 of the mask, then tests bit j % 8.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits as i32),
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    let select = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
    _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(0x10)))
}

/// 32 unsigned codes to `q * scale + min`.
#[target_feature(enable = "avx2,fma")]
fn widen_u8(q: __m256i, scale: f32, min: f32) -> Group {
    let (scale, min) = (_mm256_set1_ps(scale), _mm256_set1_ps(min));
    let halves = [_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q)];
    let eight =
        |v: __m128i| _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), scale, min);
    [
        eight(halves[0]),
        eight(_mm_srli_si128::<8>(halves[0])),
        eight(halves[1]),
        eight(_mm_srli_si128::<8>(halves[1])),
    ]
}

/// 32 signed codes times their scales, the first 16 with the first.
#[target_feature(enable = "avx2")]
fn widen_i8(q: __m256i, scales: [f32; 2]) -> Group {
    let halves = [_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q)];
    let eight = |v: __m128i, h: usize| {
        _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)),
            _mm256_set1_ps(scales[h]),
        )
    };
    [
        eight(halves[0], 0),
        eight(_mm_srli_si128::<8>(halves[0]), 0),
        eight(halves[1], 1),
        eight(_mm_srli_si128::<8>(halves[1]), 1),
    ]
}

/// `q - k` for each byte: codes stored with an offset, as signed codes.
#[target_feature(enable = "avx2")]
pub(crate) fn minus(q: __m256i, k: i8) -> __m256i {
    _mm256_sub_epi8(q, _mm256_set1_epi8(k))
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
