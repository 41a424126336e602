//! The q8 dot on aarch64 with Advanced SIMD: each group of 32 weight codes (all below
//! 128, so they read as signed) meets the 32 activation codes of its block in
//! widening multiplies (`smull`, pairs of i16 products summed to i16, then pairwise to
//! i32); each 16's four i32 sums times its sub-block scale are scaled into f32
//! accumulators.
//!
//! The walk over a row's blocks and the decoding of codes are the f32 dot's
//! (`codes_row!`, [`crate::dot::neon`]).

use std::arch::aarch64::*;

use super::Q8Block;
use crate::dot::Affine;
use crate::dot::neon::{
    Bytes32, load32, nibbles16, split_nibbles, with_fifth_bits, with_high_bits,
};
use crate::quant::{GgmlType, f16_at};

/// `ty` must be one [`super::covers`] names and the lengths checked by the caller.
#[target_feature(enable = "neon")]
pub fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[Q8Block]; N]) -> [f32; N] {
    let mut acc = [vdupq_n_f32(0.0); N];
    let mut mins = [0f32; N];
    codes_row!(
        ty,
        row,
        |g, q, a: Affine| unsigned(&mut acc, &mut mins, &xs, g, q, a),
        |g, q, d| unsigned(&mut acc, &mut mins, &xs, g, q, Affine::uniform(d, 0.0))
    );
    std::array::from_fn(|r| vaddvq_f32(acc[r]) + mins[r])
}

/// Adds group `g`'s codes `q` times every activation row. Q8_0's signed codes come
/// here too, with a min of 0.
#[target_feature(enable = "neon")]
fn unsigned<const N: usize>(
    acc: &mut [float32x4_t; N],
    mins: &mut [f32; N],
    xs: &[&[Q8Block]; N],
    g: usize,
    q: Bytes32,
    a: Affine,
) {
    let q = [vreinterpretq_s8_u8(q[0]), vreinterpretq_s8_u8(q[1])];
    for ((acc, min), x) in acc.iter_mut().zip(mins).zip(xs) {
        let x = &x[g];
        // SAFETY: a block has 32 codes.
        let c = unsafe {
            [
                vld1q_s8(x.codes.as_ptr()),
                vld1q_s8(x.codes.as_ptr().add(16)),
            ]
        };
        // |q·c| <= 128·127, so a pair of products fits an i16.
        let half = |h: usize| {
            let pairs = vaddq_s16(
                vmull_s8(vget_low_s8(q[h]), vget_low_s8(c[h])),
                vmull_high_s8(q[h], c[h]),
            );
            vpaddlq_s16(pairs)
        };
        let codes = vmlaq_n_s32(
            vmulq_n_s32(half(0), i32::from(a.scales[0])),
            half(1),
            i32::from(a.scales[1]),
        );
        *acc = vfmaq_n_f32(*acc, vcvtq_f32_s32(codes), a.d * x.d);
        *min += a.mins[0] * x.sums[0] + a.mins[1] * x.sums[1];
    }
}
