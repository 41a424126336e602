//! The reference q8 dot: the codes decoded into arrays and multiplied out in
//! integers, as the SIMD paths sum them.

use crate::dot::{KBlock, Scales};
use crate::q8::Q8Row;
use crate::quant::{GgmlType, f16_at};

type Codes = [u8; 32];

pub fn dot<const N: usize>(ty: GgmlType, row: &[u8], xs: [&Q8Row; N]) -> [f32; N] {
    let mut acc = [0f32; N];
    let mut mins = [0f32; N];
    // Σ_h ints[h] · Σ_{i in h} w_i · c_i, `w` read as signed or unsigned.
    let products = |q: &Codes, c: &[i8; 32], ints: [i16; 2], signed: bool| {
        (0..2)
            .map(|h| {
                let sum = (16 * h..16 * h + 16)
                    .map(|i| {
                        let w = if signed {
                            i32::from(q[i] as i8)
                        } else {
                            i32::from(q[i])
                        };
                        w * i32::from(c[i])
                    })
                    .sum::<i32>();
                i32::from(ints[h]) * sum
            })
            .sum::<i32>()
    };
    codes_row!(
        ty,
        row,
        |g: usize, q: Codes, s: Scales| {
            for (acc, x) in acc.iter_mut().zip(&xs) {
                *acc += s.d * x.d(g) * products(&q, x.codes(g), s.ints, true) as f32;
            }
        },
        |s, o, codes| {
            for j in 0..o.count {
                let (g, q) = (8 * s + j, codes(j));
                for ((acc, mins), x) in acc.iter_mut().zip(&mut mins).zip(&xs) {
                    *acc += o.d[j] * x.d(g) * products(&q, x.codes(g), [1; 2], o.signed) as f32;
                    *mins += o.m[j] * x.sum(g);
                }
            }
        },
        |s, k, codes| {
            let q: [Codes; 8] = KBlock::groups(codes);
            for ((acc, mins), x) in acc.iter_mut().zip(&mut mins).zip(&xs) {
                for (j, q) in q.iter().enumerate() {
                    let (scale, min) = k.floats(j);
                    let g = 8 * s + j;
                    *acc += scale * x.d(g) * products(q, x.codes(g), [1; 2], false) as f32;
                    *mins += min * x.sum(g);
                }
            }
        }
    );
    std::array::from_fn(|r| acc[r] + mins[r])
}

fn f16_pair(b: &[u8]) -> (f32, f32) {
    (f16_at(b, 0), f16_at(b, 2))
}

fn f16x8(b: &[u8], stride: usize, at: usize) -> [f32; 8] {
    let count = b.len() / stride;
    std::array::from_fn(|j| {
        if j < count {
            f16_at(b, stride * j + at)
        } else {
            0.0
        }
    })
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
