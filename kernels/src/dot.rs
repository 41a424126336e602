//! The fused dequantise-and-dot kernel: one stored weight row against up to
//! [`ROWS`] f32 activation rows, decoding each block once for all of them.
//!
//! Activations stay f32, which keeps pith within summation-order rounding of the
//! dequantised model. The price is arithmetic: every weight is widened to f32 and
//! costs an FMA per activation row, which on x86-64 runs at a fifth of the speed the
//! weights can be read (a Q4_1 matvec: 6.4 GB/s on one core, which reads 32 GB/s), so
//! decoding a token is bound by this arithmetic, not by memory. Decode therefore takes
//! the integer dot on activations rounded to 8 bits ([`crate::dot_q8`]) for the
//! quantised types, as llama.cpp does; this one stays the reference it is measured
//! against, the path of the float types, and the path with f32 activations
//! ([`crate::QMatrix::matmul_f32_on`]).
//!
//! Every path computes the same sums; the scalar one is the reference the SIMD paths
//! are tested against, and the path for CPUs without them.

/// The walk over one stored row of a quantised type, shared by every path that
/// computes on the codes (the f32 SIMD dots through `widen_row!`, and the q8 dots):
/// each group of 32 weights, `32 group..32 group + 32` of the row, is decoded by the
/// expanding module's helpers (`f16_at`, `f16x8`, `f16_pair`, `load32`, `nibbles16`,
/// `split_nibbles`, `with_high_bits`, `with_fifth_bits`, `minus`) and handed on as
/// codes, eight groups at a time where they can be:
///
/// - the types with one scale a block of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) as
///   `|octet, o, codes| body` for each eight blocks, `o` their [`Octet`] of scales and
///   mins and `codes(j)` decoding group `8 octet + j` (`j < o.count`);
/// - Q4_K and Q5_K as `|super_block, k, codes| body`, `k` the super-block's
///   [`KBlock`] of packed scales and mins and `codes(pair)` decoding groups `2 pair`
///   and `2 pair + 1` (pair 0..4);
/// - Q6_K a group at a time as `$signed(group, codes, scales)`, the codes signed once
///   their offset of 32 is taken off and the [`Scales`] two a group.
///
/// The first two are written as closures but expanded as blocks, so that their bodies
/// know the types of `codes`; `$signed` is a closure expanded where it is called.
macro_rules! codes_row {
    (
        $ty:expr,
        $row:expr,
        $signed:expr,
        |$os:ident, $o:ident, $ocodes:ident| $octet:expr,
        |$s:ident, $k:ident, $codes:ident| $k_block:expr
    ) => {
        match $ty {
            GgmlType::Q8_0 => $row.chunks(8 * 34).enumerate().for_each(|(s, o)| {
                let $os = s;
                let $o = $crate::dot::Octet::signed(o.len() / 34, f16x8(o, 34, 0));
                let $ocodes = |j: usize| load32(&o[34 * j + 2..]);
                $octet;
            }),
            GgmlType::Q4_0 => $row.chunks(8 * 18).enumerate().for_each(|(s, o)| {
                let $os = s;
                let $o = $crate::dot::Octet::signed(o.len() / 18, f16x8(o, 18, 0));
                let $ocodes = |j: usize| minus(nibbles16(&o[18 * j + 2..]), 8);
                $octet;
            }),
            GgmlType::Q4_1 => $row.chunks(8 * 20).enumerate().for_each(|(s, o)| {
                let $os = s;
                let (d, m) = (f16x8(o, 20, 0), f16x8(o, 20, 2));
                let $o = $crate::dot::Octet::unsigned(o.len() / 20, d, m);
                let $ocodes = |j: usize| nibbles16(&o[20 * j + 4..]);
                $octet;
            }),
            GgmlType::Q5_0 => $row.chunks(8 * 22).enumerate().for_each(|(s, o)| {
                let $os = s;
                let $o = $crate::dot::Octet::signed(o.len() / 22, f16x8(o, 22, 0));
                let $ocodes = |j: usize| {
                    let b = &o[22 * j..];
                    minus(with_fifth_bits(nibbles16(&b[6..22]), &b[2..6]), 16)
                };
                $octet;
            }),
            GgmlType::Q5_1 => $row.chunks(8 * 24).enumerate().for_each(|(s, o)| {
                let $os = s;
                let (d, m) = (f16x8(o, 24, 0), f16x8(o, 24, 2));
                let $o = $crate::dot::Octet::unsigned(o.len() / 24, d, m);
                let $ocodes = |j: usize| {
                    let b = &o[24 * j..];
                    with_fifth_bits(nibbles16(&b[8..24]), &b[4..8])
                };
                $octet;
            }),
            GgmlType::Q4K => $row.chunks_exact(144).enumerate().for_each(|(s, b)| {
                let $s = s;
                let $k = $crate::dot::KBlock::new(f16_pair(b), &b[4..16]);
                let $codes = |pair: usize| split_nibbles(load32(&b[16 + 32 * pair..]));
                $k_block;
            }),
            GgmlType::Q5K => $row.chunks_exact(176).enumerate().for_each(|(s, b)| {
                let $s = s;
                let $k = $crate::dot::KBlock::new(f16_pair(b), &b[4..16]);
                let qh = load32(&b[16..48]);
                let $codes = |pair: usize| {
                    let (lo, hi) = split_nibbles(load32(&b[48 + 32 * pair..]));
                    let shift = 2 * pair as u32;
                    (
                        with_high_bits(lo, qh, shift, 1),
                        with_high_bits(hi, qh, shift + 1, 1),
                    )
                };
                $k_block;
            }),
            GgmlType::Q6K => $row.chunks_exact(210).enumerate().for_each(|(s, b)| {
                let d = f16_at(b, 208);
                for half in 0..2 {
                    let (first, second) = (
                        split_nibbles(load32(&b[64 * half..64 * half + 32])),
                        split_nibbles(load32(&b[64 * half + 32..64 * half + 64])),
                    );
                    let qh = load32(&b[128 + 32 * half..160 + 32 * half]);
                    let codes = [first.0, second.0, first.1, second.1];
                    for (k, low) in codes.into_iter().enumerate() {
                        let q = minus(with_high_bits(low, qh, 2 * k as u32, 3), 32);
                        let sc = &b[192 + 8 * half + 2 * k..];
                        let ints = [i16::from(sc[0] as i8), i16::from(sc[1] as i8)];
                        $signed(8 * s + 4 * half + k, q, $crate::dot::Scales { d, ints });
                    }
                }
            }),
            ty => unreachable!("{ty:?} has no path on codes"),
        }
    };
}

/// The walk over one stored row shared by the f32 SIMD paths: each group of 32
/// weights is widened to f32 by the expanding module's `f32_group`, `f16_group`,
/// `bf16_group`, `widen_u8` and `widen_i8`, the quantised ones once `codes_row!` has
/// decoded them, and handed to `$add(group_index, weights)`.
macro_rules! widen_row {
    ($ty:expr, $row:expr, $add:ident) => {
        match $ty {
            GgmlType::F32 => $row
                .chunks_exact(128)
                .enumerate()
                .for_each(|(g, b)| $add(g, f32_group(b))),
            GgmlType::F16 => $row
                .chunks_exact(64)
                .enumerate()
                .for_each(|(g, b)| $add(g, f16_group(b))),
            GgmlType::Bf16 => $row
                .chunks_exact(64)
                .enumerate()
                .for_each(|(g, b)| $add(g, bf16_group(b))),
            ty => codes_row!(
                ty,
                $row,
                |g, q, s: Scales| $add(g, widen_i8(q, s.floats())),
                |s, o, codes| {
                    for j in 0..o.count {
                        let w = if o.signed {
                            widen_i8(codes(j), [o.d[j]; 2])
                        } else {
                            widen_u8(codes(j), o.d[j], o.m[j])
                        };
                        $add(8 * s + j, w);
                    }
                },
                |s, k, codes| {
                    for pair in 0..4 {
                        let (lo, hi) = codes(pair);
                        for (j, q) in [(2 * pair, lo), (2 * pair + 1, hi)] {
                            let (scale, min) = k.floats(j);
                            $add(8 * s + j, widen_u8(q, scale, min));
                        }
                    }
                }
            ),
        }
    };
}

/// The `accumulate` function of a SIMD path: adds a group's weights times the
/// activations `x[32 group..]` for every activation row. One row spreads its FMAs over
/// four accumulators so that they do not wait on each other; several rows are
/// independent already, and one accumulator each leaves registers for the weights.
/// `$load` reads `$lanes` f32 from a pointer; `$fma(acc, w, x)` is `acc + w·x`.
macro_rules! accumulate_fn {
    ($feature:literal, $vector:ty, $lanes:literal, $load:path, $fma:expr) => {
        #[target_feature(enable = $feature)]
        fn accumulate<const N: usize>(
            acc: &mut [[$vector; 4]; N],
            group: usize,
            xs: &[&[f32]; N],
            w: Group,
        ) {
            for (a, x) in acc.iter_mut().zip(xs) {
                let x = &x[32 * group..32 * group + 32];
                for (k, w) in w.into_iter().enumerate() {
                    // SAFETY: `x` has 32 values and the group's vectors cover them.
                    let v = unsafe { $load(x.as_ptr().add($lanes * k)) };
                    let a = &mut a[if N == 1 { k % 4 } else { 0 }];
                    *a = $fma(*a, w, v);
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;

use std::sync::OnceLock;

use crate::quant::GgmlType;

/// The scales of a group of 32 Q6_K codes: `d · ints[h]` for its `h`-th 16, the
/// integers kept apart from `d` so that the q8 dots can multiply them in integers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scales {
    pub d: f32,
    pub ints: [i16; 2],
}

impl Scales {
    /// Each half's scale as f32.
    pub fn floats(&self) -> [f32; 2] {
        self.ints.map(|s| self.d * f32::from(s))
    }
}

/// Eight consecutive blocks of a type with one scale a block of 32: group `j`'s weights
/// are `d[j] · q + m[j]`, with signed codes `q` and no min where `signed`. Groups from
/// `count` on are past the row's end, their scales 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Octet {
    pub count: usize,
    pub signed: bool,
    pub d: [f32; 8],
    pub m: [f32; 8],
}

impl Octet {
    pub fn signed(count: usize, d: [f32; 8]) -> Self {
        Self {
            count,
            signed: true,
            d,
            m: [0.0; 8],
        }
    }

    pub fn unsigned(count: usize, d: [f32; 8], m: [f32; 8]) -> Self {
        Self {
            count,
            signed: false,
            d,
            m,
        }
    }
}

/// A Q4_K/Q5_K super-block's scales: group `j`'s weights are
/// `d · scales[j] · q - dmin · mins[j]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KBlock {
    pub d: f32,
    pub dmin: f32,
    pub scales: [u8; 8],
    pub mins: [u8; 8],
}

impl KBlock {
    /// The block with super-scales `d` and `dmin` and 6-bit scales and mins `packed`.
    #[inline(always)]
    pub fn new((d, dmin): (f32, f32), packed: &[u8]) -> Self {
        let (scales, mins) = scales_mins_k4(packed);
        Self {
            d,
            dmin,
            scales,
            mins,
        }
    }

    /// Group `j`'s scale and min as f32.
    #[inline(always)]
    pub fn floats(&self, j: usize) -> (f32, f32) {
        (
            self.d * f32::from(self.scales[j]),
            -self.dmin * f32::from(self.mins[j]),
        )
    }

    /// The eight groups' codes from `codes(pair)`, which decodes groups `2 pair` and
    /// `2 pair + 1`.
    #[inline(always)]
    pub fn groups<C>(codes: impl Fn(usize) -> (C, C)) -> [C; 8] {
        let [(a, b), (c, d), (e, f), (g, h)] = std::array::from_fn(codes);
        [a, b, c, d, e, f, g, h]
    }
}

/// The eight 6-bit scales and the eight mins of a Q4_K/Q5_K block, packed in `q` (12
/// bytes), all at once: `quant::scale_min_k4` for every sub-block, four bytes at a time.
/// Bytes 0..4 hold scales 0..4 and their top bits scales 4..8's; bytes 4..8 the
/// same for the mins; bytes 8..12 the low nibbles of scales 4..8 and the high ones of
/// mins 4..8.
#[inline(always)]
pub(crate) fn scales_mins_k4(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (a, b, c) = (word(0), word(1), word(2));
    let low = 0x3f3f_3f3f;
    let scales_high = (c & 0x0f0f_0f0f) | ((a >> 2) & 0x3030_3030);
    let mins_high = ((c >> 4) & 0x0f0f_0f0f) | ((b >> 2) & 0x3030_3030);
    let bytes = |lo: u32, hi: u32| (u64::from(lo) | u64::from(hi) << 32).to_le_bytes();
    (bytes(a & low, scales_high), bytes(b & low, mins_high))
}

/// Activation rows one pass over a weight row serves.
pub const ROWS: usize = 8;

/// An instruction set a kernel is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
    /// aarch64 Advanced SIMD.
    Neon,
}

impl Isa {
    /// The best instruction set this CPU has, detected once.
    pub fn best() -> Self {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| Self::available().into_iter().last().unwrap_or(Self::Scalar))
    }

    /// Every instruction set this CPU can run, the scalar one first.
    pub fn available() -> Vec<Self> {
        let mut isas = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            isas.push(Self::Avx2);
        }
        #[cfg(target_arch = "aarch64")]
        isas.push(Self::Neon);
        isas
    }

    /// Whether this instruction set has a fused path for `ty` (the others decode
    /// through the scalar one).
    fn covers(self, ty: GgmlType) -> bool {
        match self {
            Self::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => avx2::covers(ty),
            #[cfg(target_arch = "aarch64")]
            Self::Neon => neon::covers(ty),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// `[row · x for x in xs]`, with `row` one stored row of `ty` and every `x` as long as
/// the row has values.
///
/// # Panics
/// When the lengths disagree, or `isa` is not one [`Isa::available`] lists.
pub fn dot<const N: usize>(isa: Isa, ty: GgmlType, row: &[u8], xs: [&[f32]; N]) -> [f32; N] {
    let cols = row.len() / ty.block_bytes() * ty.block_len();
    assert!(
        row.len().is_multiple_of(ty.block_bytes()) && xs.iter().all(|x| x.len() == cols),
        "a {ty:?} row of {} bytes against activations of {:?} values",
        row.len(),
        xs.map(<[f32]>::len)
    );
    if !isa.covers(ty) {
        return scalar(ty, row, xs);
    }
    match isa {
        Isa::Scalar => scalar(ty, row, xs),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            assert!(avx2::available(), "this CPU has no AVX2, FMA or F16C");
            // SAFETY: the CPU has the features, checked just above.
            unsafe { avx2::dot(ty, row, xs) }
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: every aarch64 target Rust builds for has Advanced SIMD.
        Isa::Neon => unsafe { neon::dot(ty, row, xs) },
        #[allow(unreachable_patterns)]
        _ => panic!("{isa:?} kernels are not built for this CPU"),
    }
}

/// The reference: each block dequantised to f32, then multiplied out in order.
fn scalar<const N: usize>(ty: GgmlType, row: &[u8], xs: [&[f32]; N]) -> [f32; N] {
    let mut sums = [0f32; N];
    let mut weights = Vec::with_capacity(ty.block_len());
    for (b, block) in row.chunks_exact(ty.block_bytes()).enumerate() {
        weights.clear();
        ty.dequantize_into(block, &mut weights);
        let at = b * ty.block_len();
        for (sum, x) in sums.iter_mut().zip(xs) {
            *sum += weights
                .iter()
                .zip(&x[at..at + weights.len()])
                .map(|(w, x)| w * x)
                .sum::<f32>();
        }
    }
    sums
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic bytes (xorshift), so a failure reproduces.
    pub(crate) fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    /// Random blocks whose f16 scales are finite, so every value is.
    pub(crate) fn blocks(ty: GgmlType, count: usize, seed: u64) -> Vec<u8> {
        let mut data = bytes(ty.block_bytes() * count, seed);
        let scale = half::f16::from_f32(0.01).to_le_bytes();
        for block in data.chunks_exact_mut(ty.block_bytes()) {
            let at: &[usize] = match ty {
                GgmlType::F32 => &[],
                GgmlType::F16 | GgmlType::Bf16 => &[0],
                GgmlType::Q6K => &[208],
                GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
                _ => &[0],
            };
            for &i in at {
                block[i..i + 2].copy_from_slice(&scale);
            }
            if ty == GgmlType::F32 {
                block.copy_from_slice(&0.5f32.to_le_bytes());
            }
        }
        data
    }

    /// `rows` random activation rows of `cols` values in [-2, 2).
    pub(crate) fn activations(cols: usize, rows: usize) -> Vec<Vec<f32>> {
        (0..rows as u64)
            .map(|s| {
                bytes(cols, 100 + s)
                    .iter()
                    .map(|&b| f32::from(b as i8) / 64.0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_isa_agrees_with_the_scalar_reference_on_every_type() {
        for ty in GgmlType::ALL {
            let cols = 512;
            let row = blocks(ty, cols / ty.block_len(), 7);
            let xs = activations(cols, ROWS);
            let refs: [&[f32]; ROWS] = std::array::from_fn(|i| xs[i].as_slice());
            let want = scalar(ty, &row, refs);
            let magnitude: Vec<f32> = {
                let w = ty.dequantize(&row);
                xs.iter()
                    .map(|x| w.iter().zip(x).map(|(w, x)| (w * x).abs()).sum())
                    .collect()
            };
            for isa in Isa::available() {
                let got = dot(isa, ty, &row, refs);
                let one = dot(isa, ty, &row, [refs[2]]);
                let tol = |r: usize| 1e-5 * magnitude[r] + 1e-6;
                for r in 0..ROWS {
                    assert!(
                        (got[r] - want[r]).abs() <= tol(r),
                        "{isa:?} {ty:?} row {r}: {} vs {}",
                        got[r],
                        want[r]
                    );
                }
                assert!(
                    (one[0] - want[2]).abs() <= tol(2),
                    "{isa:?} {ty:?}, one row alone: {} vs {}",
                    one[0],
                    want[2]
                );
            }
        }
    }

    #[test]
    fn k_scales_unpack_as_one_sub_block_at_a_time() {
        use crate::quant::scale_min_k4;
        for seed in 0..64 {
            let packed = bytes(12, seed);
            let (scales, mins) = scales_mins_k4(&packed);
            for j in 0..8 {
                assert_eq!(
                    (scales[j], mins[j]),
                    scale_min_k4(j, &packed),
                    "sub-block {j}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "against activations")]
    fn short_activations_are_refused() {
        let row = blocks(GgmlType::Q8_0, 2, 1);
        dot(Isa::best(), GgmlType::Q8_0, &row, [&[0.0; 32][..]]);
    }
}
