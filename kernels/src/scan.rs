//! Dot products of one 8-bit query against many 8-bit rows: the scan of an in-memory
//! vector index, which reads a quarter of the bytes of an f32 scan.
//!
//! Codes are symmetric (−127..=127), so every product and every sum of a row's
//! products up to 2^17 values fits an i32 exactly and all paths agree bit for bit.

use crate::dot::Isa;

/// `out[r] = query · rows[r]` for `rows` laid out `[out.len(), query.len()]`.
///
/// # Panics
/// When the lengths disagree, or `isa` is not one [`Isa::available`] lists.
pub fn dots_i8(isa: Isa, query: &[i8], rows: &[i8], out: &mut [i32]) {
    let dim = query.len();
    assert!(
        rows.len() == dim * out.len(),
        "{} row bytes for {} rows of {dim}",
        rows.len(),
        out.len()
    );
    assert!(
        Isa::available().contains(&isa),
        "{isa:?} kernels do not run on this CPU"
    );
    if dim == 0 {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2, checked above.
            Isa::Avx2 if dim.is_multiple_of(32) => unsafe { avx2::dot(query, row) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: every aarch64 target Rust builds for has Advanced SIMD.
            Isa::Neon if dim.is_multiple_of(16) => unsafe { neon::dot(query, row) },
            _ => scalar(query, row),
        };
    }
}

fn scalar(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Widened to i16 and multiplied pairwise into i32 (`vpmaddwd`): exact.
    #[target_feature(enable = "avx2")]
    pub fn dot(a: &[i8], b: &[i8]) -> i32 {
        let mut acc = _mm256_setzero_si256();
        for (a, b) in a.chunks_exact(32).zip(b.chunks_exact(32)) {
            // SAFETY: both chunks hold 32 bytes.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_si256(a.as_ptr().cast()),
                    _mm256_loadu_si256(b.as_ptr().cast()),
                )
            };
            let lo = |v: __m256i| _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
            let hi = |v: __m256i| _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(lo(a), lo(b)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(hi(a), hi(b)));
        }
        let half = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let pair = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
        _mm_cvtsi128_si32(_mm_add_epi32(pair, _mm_shuffle_epi32(pair, 1)))
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    /// Multiplied into i16 (`smull`) and accumulated pairwise into i32 (`sadalp`): exact.
    #[target_feature(enable = "neon")]
    pub fn dot(a: &[i8], b: &[i8]) -> i32 {
        let mut acc = vdupq_n_s32(0);
        for (a, b) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
            // SAFETY: both chunks hold 16 bytes.
            let (a, b) = unsafe { (vld1q_s8(a.as_ptr()), vld1q_s8(b.as_ptr())) };
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
            acc = vpadalq_s16(acc, vmull_high_s8(a, b));
        }
        vaddvq_s32(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::bytes;

    #[test]
    fn every_isa_matches_the_scalar_sums_exactly() {
        let dim = 384;
        // Codes in -127..=127, as the index makes them.
        let codes = |n, seed| bytes(n, seed).into_iter().map(|b| (b as i8).max(-127));
        let query: Vec<i8> = codes(dim, 7).collect();
        let mut rows: Vec<i8> = codes(dim * 50, 8).collect();
        // The extremes: every product at its largest, both signs.
        rows[..dim].fill(127);
        rows[dim..2 * dim].fill(-127);
        let want: Vec<i32> = rows.chunks_exact(dim).map(|r| scalar(&query, r)).collect();
        for isa in Isa::available() {
            let mut got = vec![0; 50];
            dots_i8(isa, &query, &rows, &mut got);
            assert_eq!(got, want, "{isa:?}");
        }
    }
}
