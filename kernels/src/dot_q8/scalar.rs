//! The reference q8 dot: the codes decoded into arrays and multiplied out in
//! integers, each 16 times its integer scale, as the SIMD paths sum them.

use super::Q8Block;
use crate::dot::Scales;
use crate::quant::{GgmlType, f16_at};

type Codes = [u8; 32];

pub fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[Q8Block]; N]) -> [f32; N] {
    let mut acc = [0f32; N];
    let mut mins = [0f32; N];
    // Σ_h ints[h] · Σ_{i in h} w_i · c_i, `w` read as signed or unsigned by `weight`.
    let codes = |q: &Codes, x: &Q8Block, s: Scales, weight: fn(u8) -> i32| {
        (0..2)
            .map(|h| {
                let sum = (16 * h..16 * h + 16)
                    .map(|i| weight(q[i]) * i32::from(x.codes[i]))
                    .sum::<i32>();
                i32::from(s.ints[h]) * sum
            })
            .sum::<i32>()
    };
    codes_row!(
        ty,
        row,
        |g: usize, q: Codes, s: Scales| {
            for (acc, x) in acc.iter_mut().zip(&xs) {
                let x = &x[g];
                *acc += s.d * x.d * codes(&q, x, s, |w| i32::from(w as i8)) as f32;
            }
        },
        |g: usize, q: Codes, s: Scales, min: f32| {
            for ((acc, mins), x) in acc.iter_mut().zip(&mut mins).zip(&xs) {
                let x = &x[g];
                *acc += s.d * x.d * codes(&q, x, s, i32::from) as f32;
                *mins += min * x.sum;
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

fn minus(q: Codes, k: u8) -> Codes {
    q.map(|q| q.wrapping_sub(k))
}
