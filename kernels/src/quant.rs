//! GGML tensor types and their dequantisation to f32.
//!
//! Block layouts follow ggml's `ggml-common.h`; the tests compare against the
//! `gguf` Python package's dequantisation (fixtures made by `scripts/make-fixtures`).

use half::{bf16, f16};

/// The GGML element types pith can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Bf16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

impl GgmlType {
    /// Every type pith reads.
    pub const ALL: [GgmlType; 11] = [
        Self::F32,
        Self::F16,
        Self::Bf16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
    ];

    /// Maps the type id stored in a GGUF tensor info; `None` for types pith cannot dequantise.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::Bf16,
            _ => return None,
        })
    }

    /// A readable name for an id, known to pith or not (for error messages).
    pub fn name_of(id: u32) -> String {
        const NAMES: [&str; 31] = [
            "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
            "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
            "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
            "BF16",
        ];
        NAMES
            .get(id as usize)
            .map_or_else(|| format!("type {id}"), |n| (*n).to_string())
    }

    /// Elements per block.
    pub fn block_len(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::Bf16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q4K | Self::Q5K | Self::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    /// Bytes taken by `elements` values, or `None` when they do not fill whole blocks
    /// or the size overflows.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        let block = self.block_len() as u64;
        if !elements.is_multiple_of(block) {
            return None;
        }
        (elements / block).checked_mul(self.block_bytes() as u64)
    }

    /// Dequantises `data` (whole blocks) to f32.
    pub fn dequantize(self, data: &[u8]) -> Vec<f32> {
        let mut out = Vec::with_capacity(data.len() / self.block_bytes() * self.block_len());
        self.dequantize_into(data, &mut out);
        out
    }

    /// Dequantises `data` (whole blocks), appending to `out`.
    pub fn dequantize_into(self, data: &[u8], out: &mut Vec<f32>) {
        let blocks = data.chunks_exact(self.block_bytes());
        match self {
            Self::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            Self::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
            Self::Bf16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
            Self::Q4_0 => blocks.for_each(|b| q4_0(b, out)),
            Self::Q4_1 => blocks.for_each(|b| q4_1(b, out)),
            Self::Q5_0 => blocks.for_each(|b| q5_0(b, out)),
            Self::Q5_1 => blocks.for_each(|b| q5_1(b, out)),
            Self::Q8_0 => blocks.for_each(|b| q8_0(b, out)),
            Self::Q4K => blocks.for_each(|b| q4_k(b, out)),
            Self::Q5K => blocks.for_each(|b| q5_k(b, out)),
            Self::Q6K => blocks.for_each(|b| q6_k(b, out)),
        }
    }
}

#[inline]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Low nibbles give elements 0..16, high nibbles 16..32.
fn nibbles(qs: &[u8], mut value: impl FnMut(u8) -> f32, out: &mut Vec<f32>) {
    out.extend(qs.iter().map(|q| value(q & 0x0F)));
    out.extend(qs.iter().map(|q| value(q >> 4)));
}

fn q4_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    nibbles(&b[2..18], |q| (f32::from(q) - 8.0) * d, out);
}

fn q4_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    nibbles(&b[4..20], |q| f32::from(q) * d + m, out);
}

/// The fifth bit of element `j` of a Q5 block lives in a 32-bit mask.
fn q5_bits(qh: &[u8], qs: &[u8], out: &mut Vec<f32>, value: impl Fn(u8) -> f32) {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    for (j, q) in qs.iter().enumerate() {
        let hi = (((qh >> j) & 1) << 4) as u8;
        out.push(value((q & 0x0F) | hi));
    }
    for (j, q) in qs.iter().enumerate() {
        let hi = ((qh >> (j + 12)) & 0x10) as u8;
        out.push(value((q >> 4) | hi));
    }
}

fn q5_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    q5_bits(&b[2..6], &b[6..22], out, |q| (f32::from(q) - 16.0) * d);
}

fn q5_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    q5_bits(&b[4..8], &b[8..24], out, |q| f32::from(q) * d + m);
}

fn q8_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K block.
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    let (sc, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    };
    (sc, m)
}

/// [`scale_min_k4`] as f32.
fn scale_min_k4_f32(j: usize, q: &[u8]) -> (f32, f32) {
    let (sc, m) = scale_min_k4(j, q);
    (f32::from(sc), f32::from(m))
}

fn q4_k(b: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    for (chunk, qs) in b[16..144].chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min_k4_f32(2 * chunk, scales);
        let (s2, m2) = scale_min_k4_f32(2 * chunk + 1, scales);
        out.extend(qs.iter().map(|q| d * s1 * f32::from(q & 0x0F) - dmin * m1));
        out.extend(qs.iter().map(|q| d * s2 * f32::from(q >> 4) - dmin * m2));
    }
}

fn q5_k(b: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    for (chunk, ql) in b[48..176].chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min_k4_f32(2 * chunk, scales);
        let (s2, m2) = scale_min_k4_f32(2 * chunk + 1, scales);
        let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        let hi = |h: u8, u: u8| if h & u != 0 { 16.0 } else { 0.0 };
        out.extend(
            ql.iter()
                .zip(qh)
                .map(|(q, &h)| d * s1 * (f32::from(q & 0x0F) + hi(h, u1)) - dmin * m1),
        );
        out.extend(
            ql.iter()
                .zip(qh)
                .map(|(q, &h)| d * s2 * (f32::from(q >> 4) + hi(h, u2)) - dmin * m2),
        );
    }
}

fn q6_k(b: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for half in 0..2 {
        let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
        let mut y = [0f32; 128];
        for l in 0..32 {
            let is = l / 16;
            let q =
                |low: u8, shift: u32| f32::from(((low | (((qh[l] >> shift) & 3) << 4)) as i8) - 32);
            let scale = |k: usize| d * f32::from(sc[is + k] as i8);
            y[l] = scale(0) * q(ql[l] & 0x0F, 0);
            y[l + 32] = scale(2) * q(ql[l + 32] & 0x0F, 2);
            y[l + 64] = scale(4) * q(ql[l] >> 4, 4);
            y[l + 96] = scale(6) * q(ql[l + 32] >> 4, 6);
        }
        out.extend_from_slice(&y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_must_fill_whole_blocks() {
        assert_eq!(GgmlType::Q4_1.bytes_for(64), Some(40));
        assert_eq!(GgmlType::Q4_1.bytes_for(33), None);
        assert_eq!(GgmlType::Q6K.bytes_for(256), Some(210));
        assert_eq!(GgmlType::F32.bytes_for(u64::MAX), None);
    }

    #[test]
    fn q8_0_block_by_hand() {
        let mut block = vec![0u8; 34];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        block[2] = 4;
        block[3] = (-6i8) as u8;
        let out = GgmlType::Q8_0.dequantize(&block);
        assert_eq!(out.len(), 32);
        assert_eq!(&out[..3], &[2.0, -3.0, 0.0]);
    }

    #[test]
    fn unknown_types_have_names() {
        assert_eq!(GgmlType::from_id(10), None);
        assert_eq!(GgmlType::name_of(10), "Q2_K");
        assert_eq!(GgmlType::name_of(99), "type 99");
    }
}
