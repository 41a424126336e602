//! The q8 dot on aarch64 with Advanced SIMD: each group of 32 weight codes (signed,
//! or unsigned below 128, so that they read as signed) meets the 32 activation codes
//! of its block 16 at a time, giving four i32 sums each, which times the 16's integer
//! scale are scaled into f32 accumulators. The sums come from widening multiplies
//! (`smull`, pairs of i16 products summed to i16, then pairwise to i32) on every
//! aarch64 CPU, and from `sdot` on those with the dot-product extension.
//!
//! The walk over a row's blocks and the decoding of codes are the f32 dot's
//! (`codes_row!`, [`crate::dot::neon`]).

use std::arch::aarch64::*;
use std::arch::asm;

use crate::dot::neon::{
    Bytes32, f16_pair, f16x8, load32, minus, nibbles16, split_nibbles, with_fifth_bits,
    with_high_bits,
};
use crate::dot::{KBlock, Scales};
use crate::q8::Q8Row;
use crate::quant::{GgmlType, f16_at};

/// Each row's sums in two accumulators that groups take in turn when there is one row,
/// so that its FMAs do not each wait on the last (several rows are independent
/// already, and one accumulator each leaves registers for the rest).
type Acc = [float32x4_t; 2];

/// Whether this CPU has `sdot`, detected once (by the standard library).
pub fn has_dotprod() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

/// The q8 dot with the sums of 16 products from `$sums`, compiled for `$feature`.
macro_rules! dot_fn {
    ($(#[$doc:meta])* $name:ident, $feature:literal, $sums:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $feature)]
        pub fn $name<const N: usize>(ty: GgmlType, row: &[u8], xs: [&Q8Row; N]) -> [f32; N] {
            let mut acc = [[vdupq_n_f32(0.0); 2]; N];
            // The weights' mins times the activation blocks' sums, four blocks at a time.
            let mut mins = [vdupq_n_f32(0.0); N];
            codes_row!(
                ty,
                row,
                |g, q, s| q6_k(&mut acc, &xs, g, q, s),
                |s, o, codes| {
                    let q = std::array::from_fn(|j| {
                        if j < o.count { codes(j) } else { [vdupq_n_u8(0); 2] }
                    });
                    let (scales, weight_mins) = (quads(&o.d), quads(&o.m));
                    eight(&mut acc, &mut mins, &xs, s, (scales, weight_mins), !o.signed, q);
                },
                |s, k, codes| {
                    let (scales, weight_mins) = (widen(k.scales, k.d), widen(k.mins, -k.dmin));
                    let q = KBlock::groups(codes);
                    eight(&mut acc, &mut mins, &xs, s, (scales, weight_mins), true, q);
                }
            );
            return std::array::from_fn(|r| {
                let [a, b] = acc[r];
                vaddvq_f32(vaddq_f32(vaddq_f32(a, b), mins[r]))
            });

            /// Adds Q6_K group `g`'s signed codes `q` times every activation row.
            #[target_feature(enable = $feature)]
            fn q6_k<const N: usize>(
                acc: &mut [Acc; N],
                xs: &[&Q8Row; N],
                g: usize,
                q: Bytes32,
                s: Scales,
            ) {
                let q = [vreinterpretq_s8_u8(q[0]), vreinterpretq_s8_u8(q[1])];
                for (acc, x) in acc.iter_mut().zip(xs) {
                    let c = load_codes(x.codes(g));
                    let sums = vmlaq_n_s32(
                        vmulq_n_s32($sums(q[0], c[0]), i32::from(s.ints[0])),
                        $sums(q[1], c[1]),
                        i32::from(s.ints[1]),
                    );
                    add::<N>(acc, sums, s.d * x.d(g));
                }
            }

            /// Adds eight groups' codes `q` (octet `s` of blocks, or K-quant
            /// super-block `s`) times every activation row: the groups' `scales` times
            /// the blocks' scales, and, `with_mins`, the groups' `mins` times the
            /// blocks' sums, four at a time. Codes below 128 read as signed.
            #[target_feature(enable = $feature)]
            fn eight<const N: usize>(
                acc: &mut [Acc; N],
                mins: &mut [float32x4_t; N],
                xs: &[&Q8Row; N],
                s: usize,
                (scales, weight_mins): ([float32x4_t; 2], [float32x4_t; 2]),
                with_mins: bool,
                q: [Bytes32; 8],
            ) {
                for ((acc, mins), x) in acc.iter_mut().zip(mins).zip(xs) {
                    let x = x.octet(s);
                    let mut products = [0f32; 8];
                    for h in 0..2 {
                        // SAFETY: an octet has eight scales and eight sums.
                        let (d, sums) = unsafe {
                            (vld1q_f32(x.d.as_ptr().add(4 * h)), vld1q_f32(x.sums.as_ptr().add(4 * h)))
                        };
                        // SAFETY: `products` has room for eight.
                        unsafe { vst1q_f32(products.as_mut_ptr().add(4 * h), vmulq_f32(scales[h], d)) };
                        if with_mins {
                            *mins = vfmaq_f32(*mins, weight_mins[h], sums);
                        }
                    }
                    for (j, q) in q.into_iter().enumerate() {
                        let (q, c) = ([vreinterpretq_s8_u8(q[0]), vreinterpretq_s8_u8(q[1])], load_codes(&x.codes[j]));
                        add::<N>(acc, vaddq_s32($sums(q[0], c[0]), $sums(q[1], c[1])), products[j]);
                    }
                }
            }
        }
    };
}

/// Eight f32 as two vectors of four.
#[target_feature(enable = "neon")]
fn quads(v: &[f32; 8]) -> [float32x4_t; 2] {
    // SAFETY: eight values.
    unsafe { [vld1q_f32(v.as_ptr()), vld1q_f32(v.as_ptr().add(4))] }
}

/// `sums · scale` into the accumulator whose turn it is, of one of `N` rows.
#[target_feature(enable = "neon")]
fn add<const N: usize>(acc: &mut Acc, sums: int32x4_t, scale: f32) {
    let [a, b] = *acc;
    let a = vfmaq_n_f32(a, vcvtq_f32_s32(sums), scale);
    *acc = if N == 1 { [b, a] } else { [a, b] };
}

/// Eight bytes times `scale`, as two vectors of four f32.
#[target_feature(enable = "neon")]
fn widen(b: [u8; 8], scale: f32) -> [float32x4_t; 2] {
    // SAFETY: 8 bytes are in bounds.
    let w = vmovl_u8(unsafe { vld1_u8(b.as_ptr()) });
    [
        vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(w))), scale),
        vmulq_n_f32(vcvtq_f32_u32(vmovl_high_u16(w)), scale),
    ]
}

#[target_feature(enable = "neon")]
fn load_codes(codes: &[i8; 32]) -> [int8x16_t; 2] {
    // SAFETY: 32 codes.
    unsafe { [vld1q_s8(codes.as_ptr()), vld1q_s8(codes.as_ptr().add(16))] }
}

dot_fn!(
    /// `ty` must be one [`super::covers`] names and the lengths checked by the caller.
    dot,
    "neon",
    widening
);

dot_fn!(
    /// # Safety
    /// The CPU must have the dot-product extension ([`has_dotprod`]); `ty` must be one
    /// [`super::covers`] names and the lengths checked by the caller.
    dot_sdot,
    "neon,dotprod",
    sdot
);

/// Four sums of four of the products of 16 codes: `smull` gives i16 products
/// (`|q·c| <= 128·127`, so a pair of them fits an i16 too), summed in pairs.
#[target_feature(enable = "neon")]
fn widening(q: int8x16_t, c: int8x16_t) -> int32x4_t {
    let pairs = vaddq_s16(
        vmull_s8(vget_low_s8(q), vget_low_s8(c)),
        vmull_high_s8(q, c),
    );
    vpaddlq_s16(pairs)
}

/// Four sums of four of the products of 16 codes, by `sdot` (its intrinsic is not
/// stable Rust yet).
#[target_feature(enable = "neon,dotprod")]
fn sdot(q: int8x16_t, c: int8x16_t) -> int32x4_t {
    let mut sums = vdupq_n_s32(0);
    // SAFETY: the dot-product extension is enabled; only the named registers change.
    unsafe {
        asm!(
            "sdot {sums:v}.4s, {q:v}.16b, {c:v}.16b",
            sums = inout(vreg) sums,
            q = in(vreg) q,
            c = in(vreg) c,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    sums
}
