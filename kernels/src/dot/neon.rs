//! The fused dot on aarch64 with Advanced SIMD (every aarch64 CPU has it): each group
//! of 32 weights is widened to eight vectors of four f32 (`q * scale + min`) and
//! multiplied into every activation row while it sits in registers.
//!
//! The walk over a row's blocks is [`widen_row`]'s; this file holds how NEON decodes.
//! F16 is converted one value at a time: NEON's conversion needs the `fp16` types,
//! which stable Rust does not have yet.

use std::arch::aarch64::*;

use super::Scales;
use crate::quant::{GgmlType, f16_at};

/// The f16s at `b[0..2]` and `b[2..4]` (a block's scale and min).
pub(crate) fn f16_pair(b: &[u8]) -> (f32, f32) {
    (f16_at(b, 0), f16_at(b, 2))
}

/// The f16s at `b[stride · j + at..]` for the `b.len() / stride` (at most eight)
/// blocks `j` of `b`; 0 past them.
pub(crate) fn f16x8(b: &[u8], stride: usize, at: usize) -> [f32; 8] {
    let count = b.len() / stride;
    std::array::from_fn(|j| {
        if j < count {
            f16_at(b, stride * j + at)
        } else {
            0.0
        }
    })
}

/// 32 weights as eight vectors of four.
type Group = [float32x4_t; 8];

pub fn covers(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16 | Bf16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4K | Q5K | Q6K
    )
}

/// `ty` must be one [`covers`] names and the lengths checked by the caller.
#[target_feature(enable = "neon")]
pub fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[f32]; N]) -> [f32; N] {
    let mut acc = [[vdupq_n_f32(0.0); 4]; N];
    let mut add = |group: usize, w: Group| accumulate(&mut acc, group, &xs, w);
    widen_row!(ty, row, add);
    acc.map(|[a, b, c, d]| vaddvq_f32(vaddq_f32(vaddq_f32(a, b), vaddq_f32(c, d))))
}

/// 32 bytes as two vectors of 16.
pub(crate) type Bytes32 = [uint8x16_t; 2];

accumulate_fn!("neon", float32x4_t, 4, vld1q_f32, vfmaq_f32);

#[target_feature(enable = "neon")]
pub(crate) fn load32(b: &[u8]) -> Bytes32 {
    assert!(b.len() >= 32);
    // SAFETY: 32 bytes are in bounds.
    unsafe { [vld1q_u8(b.as_ptr()), vld1q_u8(b.as_ptr().add(16))] }
}

/// 16 bytes of nibbles: the low ones are values 0..16, the high ones 16..32.
#[target_feature(enable = "neon")]
pub(crate) fn nibbles16(b: &[u8]) -> Bytes32 {
    assert!(b.len() >= 16);
    // SAFETY: 16 bytes are in bounds.
    let v = unsafe { vld1q_u8(b.as_ptr()) };
    [vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v)]
}

/// The low and the high nibbles of 32 bytes.
#[target_feature(enable = "neon")]
pub(crate) fn split_nibbles(v: Bytes32) -> (Bytes32, Bytes32) {
    let mask = vdupq_n_u8(0x0F);
    (
        [vandq_u8(v[0], mask), vandq_u8(v[1], mask)],
        [vshrq_n_u8::<4>(v[0]), vshrq_n_u8::<4>(v[1])],
    )
}

/// `q | ((qh >> shift) & mask) << 4` for each byte: the high bits of 5- and 6-bit codes.
#[target_feature(enable = "neon")]
pub(crate) fn with_high_bits(q: Bytes32, qh: Bytes32, shift: u32, mask: u8) -> Bytes32 {
    std::array::from_fn(|i| {
        let bits = vandq_u8(
            vshlq_u8(qh[i], vdupq_n_s8(-(shift as i8))),
            vdupq_n_u8(mask),
        );
        vorrq_u8(q[i], vshlq_n_u8::<4>(bits))
    })
}

/// `q | bit j << 4` for each byte `j` of `q`, with `qh` 32 bits little-endian: the
/// fifth bits of Q5_0/Q5_1 codes.
#[target_feature(enable = "neon")]
pub(crate) fn with_fifth_bits(q: Bytes32, qh: &[u8]) -> Bytes32 {
    let bits = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let bytes = vreinterpretq_u8_u32(vdupq_n_u32(bits));
    let select = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
    let sixteen = vdupq_n_u8(0x10);
    // Byte j of half h takes byte 2h + j / 8 of the mask, then tests bit j % 8.
    std::array::from_fn(|h| {
        let at = vcombine_u8(vdup_n_u8(2 * h as u8), vdup_n_u8(2 * h as u8 + 1));
        let set = vtstq_u8(vqtbl1q_u8(bytes, at), select);
        vorrq_u8(q[h], vandq_u8(set, sixteen))
    })
}

/// 32 unsigned codes to `q * scale + min`.
#[target_feature(enable = "neon")]
fn widen_u8(q: Bytes32, scale: f32, min: f32) -> Group {
    let (s, m) = (vdupq_n_f32(scale), vdupq_n_f32(min));
    let mut out = [m; 8];
    for (h, v) in q.into_iter().enumerate() {
        let wide = [vmovl_u8(vget_low_u8(v)), vmovl_u8(vget_high_u8(v))];
        for (i, w) in wide.into_iter().enumerate() {
            let quads = [vmovl_u16(vget_low_u16(w)), vmovl_u16(vget_high_u16(w))];
            for (k, quad) in quads.into_iter().enumerate() {
                out[4 * h + 2 * i + k] = vfmaq_f32(m, vcvtq_f32_u32(quad), s);
            }
        }
    }
    out
}

/// 32 signed codes times their scales, the first 16 with the first.
#[target_feature(enable = "neon")]
fn widen_i8(q: Bytes32, scales: [f32; 2]) -> Group {
    let mut out = [vdupq_n_f32(0.0); 8];
    for (h, v) in q.into_iter().enumerate() {
        let v = vreinterpretq_s8_u8(v);
        let wide = [vmovl_s8(vget_low_s8(v)), vmovl_s8(vget_high_s8(v))];
        for (i, w) in wide.into_iter().enumerate() {
            let quads = [vmovl_s16(vget_low_s16(w)), vmovl_s16(vget_high_s16(w))];
            for (k, quad) in quads.into_iter().enumerate() {
                out[4 * h + 2 * i + k] = vmulq_n_f32(vcvtq_f32_s32(quad), scales[h]);
            }
        }
    }
    out
}

/// `q - k` for each byte: codes stored with an offset, as signed codes.
#[target_feature(enable = "neon")]
pub(crate) fn minus(q: Bytes32, k: u8) -> Bytes32 {
    [vsubq_u8(q[0], vdupq_n_u8(k)), vsubq_u8(q[1], vdupq_n_u8(k))]
}

#[target_feature(enable = "neon")]
fn f32_group(b: &[u8]) -> Group {
    assert!(b.len() >= 128);
    // SAFETY: 128 bytes are in bounds; vld1q_f32 needs no alignment beyond a byte's.
    std::array::from_fn(|k| unsafe { vld1q_f32(b.as_ptr().add(16 * k).cast()) })
}

#[target_feature(enable = "neon")]
fn f16_group(b: &[u8]) -> Group {
    let values: [f32; 32] = std::array::from_fn(|i| f16_at(b, 2 * i));
    // SAFETY: 32 values are in bounds.
    std::array::from_fn(|k| unsafe { vld1q_f32(values.as_ptr().add(4 * k)) })
}

/// bf16 is the top half of an f32.
#[target_feature(enable = "neon")]
fn bf16_group(b: &[u8]) -> Group {
    assert!(b.len() >= 64);
    std::array::from_fn(|k| {
        // SAFETY: 64 bytes are in bounds.
        let v = unsafe { vld1_u16(b.as_ptr().add(8 * k).cast()) };
        vreinterpretq_f32_u32(vshll_n_u16::<16>(v))
    })
}
