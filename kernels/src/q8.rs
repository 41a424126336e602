//! Activations quantised to 8 bits, for the integer dots of [`crate::dot_q8`].
//!
//! A row is cut into blocks of 32 values, each stored as a scale `d = max|x| / 127`
//! and the codes `round(x / d)` in -127..=127, as ggml's Q8_0 (ties round to even
//! here). Each block also keeps the sum of its dequantised values (`d · Σ codes`): a
//! weight group's min times it is the min's share of the dot, so the integer products
//! only need the codes.
//!
//! Blocks are stored eight at a time, field by field ([`Q8Octet`]): a K-quant
//! super-block spans eight blocks and finds their scales and sums in one load each.

/// Eight blocks of 32 activations as 8-bit codes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(32))]
pub struct Q8Octet {
    /// The scales: value `i` of block `b` is `d[b] · codes[b][i]`.
    pub d: [f32; 8],
    /// `d[b] · Σ codes[b]`.
    pub sums: [f32; 8],
    pub codes: [[i8; 32]; 8],
}

/// A row of activations as q8 blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Q8Row {
    octets: Vec<Q8Octet>,
    blocks: usize,
}

impl Q8Row {
    /// `x`, whose length is a multiple of 32, as q8 blocks: each the nearest codes
    /// with the scale that fits the block's largest value.
    ///
    /// # Panics
    /// When the length is not a multiple of 32.
    pub fn quantize(x: &[f32]) -> Self {
        assert!(
            x.len().is_multiple_of(32),
            "{} activations do not fill q8 blocks of 32",
            x.len()
        );
        let empty = Q8Octet {
            d: [0.0; 8],
            sums: [0.0; 8],
            codes: [[0; 32]; 8],
        };
        let mut octets = vec![empty; x.len().div_ceil(256)];
        for (b, x) in x.chunks_exact(32).enumerate() {
            let o = &mut octets[b / 8];
            let (d, sum, codes) = quantize_block(x.try_into().unwrap());
            (o.d[b % 8], o.sums[b % 8], o.codes[b % 8]) = (d, sum, codes);
        }
        Self {
            octets,
            blocks: x.len() / 32,
        }
    }

    /// How many blocks of 32 the row holds.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// Blocks `8 s..8 s + 8` (those past the row's end are zeros).
    #[inline]
    pub fn octet(&self, s: usize) -> &Q8Octet {
        &self.octets[s]
    }

    /// Block `b`'s scale.
    #[inline]
    pub fn d(&self, b: usize) -> f32 {
        self.octets[b / 8].d[b % 8]
    }

    /// Block `b`'s sum of values.
    #[inline]
    pub fn sum(&self, b: usize) -> f32 {
        self.octets[b / 8].sums[b % 8]
    }

    /// Block `b`'s codes.
    #[inline]
    pub fn codes(&self, b: usize) -> &[i8; 32] {
        &self.octets[b / 8].codes[b % 8]
    }

    /// The values the row stands for.
    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.blocks)
            .flat_map(|b| self.codes(b).map(|c| self.d(b) * f32::from(c)))
            .collect()
    }
}

/// The scale, the sum and the codes of 32 values.
fn quantize_block(x: &[f32; 32]) -> (f32, f32, [i8; 32]) {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = max / 127.0;
    let inverse = if d > 0.0 { d.recip() } else { 0.0 };
    // Adding 1.5·2^23 leaves `v` rounded to an integer (ties to even) in the low bits
    // of the sum: no call to `roundf`, which x86-64's baseline lacks an instruction
    // for, and the loop vectorises.
    const ROUND: f32 = 12_582_912.0;
    let codes = x.map(|v| {
        ((v * inverse + ROUND).to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32) as i8
    });
    let sum = codes.iter().map(|&c| i32::from(c)).sum::<i32>();
    (d, d * sum as f32, codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_to_the_nearest_step_of_the_largest_value() {
        let mut x = [0f32; 32];
        x[0] = -2.54;
        x[1] = 1.0;
        x[17] = 0.011;
        let (d, sum, codes) = quantize_block(&x);
        assert_eq!(d, 2.54 / 127.0);
        assert_eq!((codes[0], codes[1], codes[17]), (-127, 50, 1));
        assert_eq!(sum, d * -76.0);
    }

    #[test]
    fn codes_are_the_nearest_integers() {
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 15.5) * 0.37).collect();
        let (d, _, codes) = quantize_block(x.as_slice().try_into().unwrap());
        for (v, c) in x.iter().zip(codes) {
            let exact = v / d;
            assert!((exact - f32::from(c)).abs() <= 0.5 + 1e-4, "{exact} to {c}");
        }
        assert_eq!(codes[0], -127);
    }

    #[test]
    fn zeros_stay_zeros() {
        assert_eq!(quantize_block(&[0.0; 32]), (0.0, 0.0, [0; 32]));
    }

    #[test]
    fn a_row_keeps_its_blocks_in_order() {
        // 11 blocks: one whole octet and three blocks of a second.
        let x: Vec<f32> = (0..352).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        let row = Q8Row::quantize(&x);
        assert_eq!(row.blocks(), 11);
        let values = row.dequantize();
        assert_eq!(values.len(), 352);
        for (b, (x, q)) in x.chunks(32).zip(values.chunks(32)).enumerate() {
            let (d, sum, codes) = quantize_block(x.try_into().unwrap());
            assert_eq!((row.d(b), row.sum(b), row.codes(b)), (d, sum, &codes));
            for (v, q) in x.iter().zip(q) {
                assert!((v - q).abs() <= d / 2.0 * 1.0001, "{v} vs {q}");
            }
        }
        assert_eq!(row.octet(1).d[3..], [0.0; 5]);
    }
}
