//! The fused dot on aarch64 with Advanced SIMD (every aarch64 CPU has it): each group
//! of 32 weights is widened to eight vectors of four f32 (`q * scale + min`) and
//! multiplied into every activation row while it sits in registers.
//!
//! The same reduction as the AVX2 path: every quantised type except Q8_0 is unsigned
//! codes with a scale and a min per 16 values. F16 goes through the scalar path: its
//! NEON conversion needs the `fp16` types, which stable Rust does not have yet.

use std::arch::aarch64::*;

use crate::quant::{GgmlType, f16_at, scale_min_k4};

/// 32 weights as eight vectors of four.
type Group = [float32x4_t; 8];

pub fn covers(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, F32 | Bf16 | Q4_0 | Q4_1 | Q8_0 | Q4K | Q5K | Q6K)
}

/// `ty` must be one [`covers`] names and the lengths checked by the caller.
#[target_feature(enable = "neon")]
pub fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[f32]; N]) -> [f32; N] {
    let mut acc = [[vdupq_n_f32(0.0); 4]; N];
    let mut add = |group: usize, w: Group| accumulate(&mut acc, group, &xs, w);
    match ty {
        GgmlType::F32 => row
            .chunks_exact(128)
            .enumerate()
            .for_each(|(g, b)| add(g, f32_group(b))),
        GgmlType::Bf16 => row
            .chunks_exact(64)
            .enumerate()
            .for_each(|(g, b)| add(g, bf16_group(b))),
        GgmlType::Q8_0 => row.chunks_exact(34).enumerate().for_each(|(g, b)| {
            add(g, widen_i8(load32(&b[2..34]), f16_at(b, 0)));
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
                let (lo, hi) = split_nibbles(load32(&b[16 + 32 * j..48 + 32 * j]));
                add(8 * s + 2 * j, k_group(lo, b, 2 * j));
                add(8 * s + 2 * j + 1, k_group(hi, b, 2 * j + 1));
            }
        }),
        GgmlType::Q5K => row.chunks_exact(176).enumerate().for_each(|(s, b)| {
            let qh = load32(&b[16..48]);
            for j in 0..4 {
                let (lo, hi) = split_nibbles(load32(&b[48 + 32 * j..80 + 32 * j]));
                let lo = or(lo, high_bits(qh, 2 * j as i8, 1, 4));
                let hi = or(hi, high_bits(qh, 2 * j as i8 + 1, 1, 4));
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
                    let q = or(low, high_bits(qh, 2 * k as i8, 3, 4));
                    let sc = &b[192 + 8 * half + 2 * k..];
                    let scale = [d * f32::from(sc[0] as i8), d * f32::from(sc[1] as i8)];
                    add(
                        8 * s + 4 * half + k,
                        widen_u8(q, scale, scale.map(|x| -32.0 * x)),
                    );
                }
            }
        }),
        _ => unreachable!("{ty:?} has no NEON path"),
    }
    acc.map(|[a, b, c, d]| vaddvq_f32(vaddq_f32(vaddq_f32(a, b), vaddq_f32(c, d))))
}

/// 32 bytes as two vectors of 16.
type Bytes32 = [uint8x16_t; 2];

/// Adds `w · x[32 group..]` for every activation row. One row spreads its FMAs over
/// four accumulators so that they do not wait on each other; several rows are
/// independent already, and one accumulator each leaves registers for the weights.
#[target_feature(enable = "neon")]
fn accumulate<const N: usize>(
    acc: &mut [[float32x4_t; 4]; N],
    group: usize,
    xs: &[&[f32]; N],
    w: Group,
) {
    for (a, x) in acc.iter_mut().zip(xs) {
        let x = &x[32 * group..32 * group + 32];
        for (k, w) in w.into_iter().enumerate() {
            // SAFETY: `x` has 32 values, so 4 from `4 k` are in bounds.
            let v = unsafe { vld1q_f32(x.as_ptr().add(4 * k)) };
            let a = &mut a[if N == 1 { k % 4 } else { 0 }];
            *a = vfmaq_f32(*a, w, v);
        }
    }
}

#[target_feature(enable = "neon")]
fn load32(b: &[u8]) -> Bytes32 {
    assert!(b.len() >= 32);
    // SAFETY: 32 bytes are in bounds.
    unsafe { [vld1q_u8(b.as_ptr()), vld1q_u8(b.as_ptr().add(16))] }
}

#[target_feature(enable = "neon")]
fn or(a: Bytes32, b: Bytes32) -> Bytes32 {
    [vorrq_u8(a[0], b[0]), vorrq_u8(a[1], b[1])]
}

/// 16 bytes of nibbles: the low ones are values 0..16, the high ones 16..32.
#[target_feature(enable = "neon")]
fn nibbles16(b: &[u8]) -> Bytes32 {
    assert!(b.len() >= 16);
    // SAFETY: 16 bytes are in bounds.
    let v = unsafe { vld1q_u8(b.as_ptr()) };
    [vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v)]
}

/// The low and the high nibbles of 32 bytes.
#[target_feature(enable = "neon")]
fn split_nibbles(v: Bytes32) -> (Bytes32, Bytes32) {
    let mask = vdupq_n_u8(0x0F);
    (
        [vandq_u8(v[0], mask), vandq_u8(v[1], mask)],
        [vshrq_n_u8::<4>(v[0]), vshrq_n_u8::<4>(v[1])],
    )
}

/// `((qh >> shift) & mask) << to` for each byte.
#[target_feature(enable = "neon")]
fn high_bits(qh: Bytes32, shift: i8, mask: u8, to: i8) -> Bytes32 {
    qh.map(|v| {
        let bits = vandq_u8(vshlq_u8(v, vdupq_n_s8(-shift)), vdupq_n_u8(mask));
        vshlq_u8(bits, vdupq_n_s8(to))
    })
}

/// A Q4_K/Q5_K sub-block's codes with its 6-bit scale and min.
#[target_feature(enable = "neon")]
fn k_group(q: Bytes32, block: &[u8], sub: usize) -> Group {
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    let (sc, m) = scale_min_k4(sub, &block[4..16]);
    widen_u8(q, [d * sc; 2], [-dmin * m; 2])
}

/// 32 unsigned codes to `q * scale + min`, the first 16 with the first scale and min.
#[target_feature(enable = "neon")]
fn widen_u8(q: Bytes32, scale: [f32; 2], min: [f32; 2]) -> Group {
    let mut out = [vdupq_n_f32(0.0); 8];
    for (h, v) in q.into_iter().enumerate() {
        let (s, m) = (vdupq_n_f32(scale[h]), vdupq_n_f32(min[h]));
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

/// 32 signed codes times `d`.
#[target_feature(enable = "neon")]
fn widen_i8(q: Bytes32, d: f32) -> Group {
    let mut out = [vdupq_n_f32(0.0); 8];
    for (h, v) in q.into_iter().enumerate() {
        let v = vreinterpretq_s8_u8(v);
        let wide = [vmovl_s8(vget_low_s8(v)), vmovl_s8(vget_high_s8(v))];
        for (i, w) in wide.into_iter().enumerate() {
            let quads = [vmovl_s16(vget_low_s16(w)), vmovl_s16(vget_high_s16(w))];
            for (k, quad) in quads.into_iter().enumerate() {
                out[4 * h + 2 * i + k] = vmulq_n_f32(vcvtq_f32_s32(quad), d);
            }
        }
    }
    out
}

#[target_feature(enable = "neon")]
fn f32_group(b: &[u8]) -> Group {
    assert!(b.len() >= 128);
    // SAFETY: 128 bytes are in bounds; vld1q_f32 needs no alignment beyond a byte's.
    std::array::from_fn(|k| unsafe { vld1q_f32(b.as_ptr().add(16 * k).cast()) })
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
