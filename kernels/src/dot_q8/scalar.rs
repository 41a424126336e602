//! The reference q8 dot: the codes decoded into arrays and multiplied out in
//! integers, in the order the SIMD paths sum them.

use super::Q8Block;
use crate::dot::Affine;
use crate::quant::{GgmlType, f16_at};

type Codes = [u8; 32];

pub fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[Q8Block]; N]) -> [f32; N] {
    let mut acc = [0f32; N];
    let mut mins = [0f32; N];
    codes_row!(
        ty,
        row,
        |g: usize, q: Codes, a: Affine| {
            for ((acc, min), x) in acc.iter_mut().zip(&mut mins).zip(&xs) {
                let x = &x[g];
                let halves = [0, 1].map(|h| {
                    (16 * h..16 * h + 16)
                        .map(|i| i32::from(q[i]) * i32::from(x.codes[i]))
                        .sum::<i32>()
                });
                let codes = i32::from(a.scales[0]) * halves[0] + i32::from(a.scales[1]) * halves[1];
                *acc += a.d * x.d * codes as f32;
                *min += a.mins[0] * x.sums[0] + a.mins[1] * x.sums[1];
            }
        },
        |g: usize, q: Codes, d: f32| {
            for (acc, x) in acc.iter_mut().zip(&xs) {
                let x = &x[g];
                let codes = (0..32)
                    .map(|i| i32::from(q[i] as i8) * i32::from(x.codes[i]))
                    .sum::<i32>();
                *acc += d * x.d * codes as f32;
            }
        }
    );
    std::array::from_fn(|r| acc[r] + mins[r])
}

fn load32(b: &[u8]) -> Codes {
    b[..32].try_into().unwrap()
}

/// 16 bytes of nibbles: the low ones are values 0..16, the high ones 16..32.
fn nibbles16(b: &[u8]) -> Codes {
    std::array::from_fn(|i| if i < 16 { b[i] & 0x0F } else { b[i - 16] >> 4 })
}

fn split_nibbles(v: Codes) -> (Codes, Codes) {
    (v.map(|b| b & 0x0F), v.map(|b| b >> 4))
}

fn with_high_bits(q: Codes, qh: Codes, shift: u32, mask: u8) -> Codes {
    std::array::from_fn(|i| q[i] | ((qh[i] >> shift) & mask) << 4)
}

fn with_fifth_bits(q: Codes, qh: &[u8]) -> Codes {
    let bits = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    std::array::from_fn(|i| q[i] | (((bits >> i) & 1) << 4) as u8)
}
