//! Activations quantised to 8 bits, for the integer dots of [`crate::dot_q8`].
//!
//! A row is cut into blocks of 32 values, each stored as a scale `d = max|x| / 127` and
//! the codes `round(x / d)` in -127..=127, as ggml's Q8_0 (ties round to even here). Each block also keeps the
//! sum of its dequantised values (`d · Σ codes`): a weight group's min times it is the
//! min's share of the dot, so the integer products only need the codes.

/// 32 activations as 8-bit codes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Q8Block {
    /// The scale: value `i` is `d · codes[i]`.
    pub d: f32,
    /// `d · Σ codes`.
    pub sum: f32,
    pub codes: [i8; 32],
}

impl Q8Block {
    /// The nearest codes to `x` (32 values) with the scale that fits its largest.
    pub fn quantize(x: &[f32]) -> Self {
        let x: &[f32; 32] = x.try_into().expect("a q8 block holds 32 values");
        let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max / 127.0;
        let inverse = if d > 0.0 { d.recip() } else { 0.0 };
        // Adding 1.5·2^23 leaves `v` rounded to an integer (ties to even) in the low
        // bits of the sum: no call to `roundf`, which x86-64's baseline lacks an
        // instruction for, and the loop vectorises.
        const ROUND: f32 = 12_582_912.0;
        let codes = x.map(|v| {
            ((v * inverse + ROUND).to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32) as i8
        });
        let sum = codes.iter().map(|&c| i32::from(c)).sum::<i32>();
        Self {
            d,
            sum: d * sum as f32,
            codes,
        }
    }

    /// The values the block stands for.
    pub fn dequantize(&self) -> [f32; 32] {
        self.codes.map(|c| self.d * f32::from(c))
    }
}

/// `x`, whose length is a multiple of 32, as q8 blocks.
///
/// # Panics
/// When it is not.
pub fn quantize(x: &[f32]) -> Vec<Q8Block> {
    assert!(
        x.len().is_multiple_of(32),
        "{} activations do not fill q8 blocks of 32",
        x.len()
    );
    x.chunks_exact(32).map(Q8Block::quantize).collect()
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
        let b = Q8Block::quantize(&x);
        assert_eq!(b.d, 2.54 / 127.0);
        assert_eq!((b.codes[0], b.codes[1], b.codes[17]), (-127, 50, 1));
        assert_eq!(b.sum, b.d * -76.0);
        for (v, q) in x.iter().zip(b.dequantize()) {
            assert!((v - q).abs() <= b.d / 2.0 * 1.0001, "{v} vs {q}");
        }
    }

    #[test]
    fn codes_are_the_nearest_integers() {
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 15.5) * 0.37).collect();
        let b = Q8Block::quantize(&x);
        for (v, c) in x.iter().zip(b.codes) {
            let exact = v / b.d;
            assert!((exact - f32::from(c)).abs() <= 0.5 + 1e-4, "{exact} to {c}");
        }
        assert_eq!(b.codes[0], -127);
    }

    #[test]
    fn zeros_stay_zeros() {
        let b = Q8Block::quantize(&[0.0; 32]);
        assert_eq!((b.d, b.sum, b.codes), (0.0, 0.0, [0; 32]));
    }
}
