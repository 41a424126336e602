//! Bidirectional self-attention over whole passages: the sentence embedder's, where
//! every token of a passage attends to every token of it and none to the padding a
//! batch adds.
//!
//! Burn's CPU attention takes the heads apart into contiguous copies, computes each
//! row's softmax through libm's exp one value at a time and reads a mask for every
//! score: 16% of the embedder's time at one passage a call. Here each (passage, head)
//! is a task whose two products read the head's columns in place from the fused
//! product (strided, no copies of the heads); the softmax between them
//! uses the vectorised e^x of GELU, and padding is never read. The softmax is
//! straight-line code the compiler vectorises for the instruction set it compiles it
//! for; its scalar build is the reference the SIMD builds are tested against, and
//! every build is tested against the definition in f64.

use rayon::prelude::*;

use crate::activation::exp_nonpositive;
use crate::dot::Isa;
use crate::matmul::{Strided, gemm};
use crate::reduce::{fold, sum};

/// Passages as the embedder's fused query-key-value product leaves them.
#[derive(Debug, Clone, Copy)]
pub struct Passages<'a> {
    /// `[b, t, 3·heads·head_dim]`: each token's queries, keys and values side by side,
    /// each of them `heads` runs of `head_dim`.
    pub qkv: &'a [f32],
    /// Positions in each passage (the longest passage of the batch).
    pub t: usize,
    /// Values in each position's row: `3·heads·head_dim`.
    pub width: usize,
    /// Real tokens of each passage, the rest being padding: `b` of them.
    pub lens: &'a [usize],
    pub heads: usize,
}

/// Scaled dot-product attention of every passage's real tokens over its real tokens,
/// head by head: `[b, t, heads·head_dim]`, padding rows zero.
///
/// # Panics
/// When `qkv` is not `[lens.len(), t, 3·heads·head_dim]`, a length exceeds `t`, or
/// `isa` is not one [`Isa::available`] lists.
pub fn self_attention(isa: Isa, p: Passages) -> Vec<f32> {
    assert!(
        Isa::available().contains(&isa),
        "{isa:?} kernels do not run on this CPU"
    );
    let (b, width) = (p.lens.len(), p.width);
    let h = width / 3;
    assert!(
        p.heads > 0
            && width == 3 * h
            && h.is_multiple_of(p.heads)
            && p.qkv.len() == b * p.t * width,
        "{} values are not [{b}, {}, {width}] of 3 x {} heads",
        p.qkv.len(),
        p.t,
        p.heads
    );
    assert!(
        p.lens.iter().all(|&len| len <= p.t),
        "a passage is longer than {}",
        p.t
    );
    let d = h / p.heads;
    let mut out = vec![0f32; b * p.t * h];
    if d == 0 {
        return out;
    }
    let heads: Vec<Vec<f32>> = (0..b * p.heads)
        .into_par_iter()
        .map(|task| {
            let (passage, head) = (task / p.heads, task % p.heads);
            let rows = &p.qkv[passage * p.t * width..(passage + 1) * p.t * width];
            let one = Head {
                rows,
                len: p.lens[passage],
                h,
                at: head * d,
                d,
            };
            one.attend(isa)
        })
        .collect();
    for (task, values) in heads.iter().enumerate() {
        let (passage, head) = (task / p.heads, task % p.heads);
        for (i, row) in values.chunks_exact(d).enumerate() {
            let at = (passage * p.t + i) * h + head * d;
            out[at..at + d].copy_from_slice(row);
        }
    }
    out
}

/// One head of one passage.
struct Head<'a> {
    /// The passage's `[t, 3h]` rows.
    rows: &'a [f32],
    len: usize,
    h: usize,
    /// Where the head starts within the queries (and within the keys, the values).
    at: usize,
    d: usize,
}

impl Head<'_> {
    /// `[len, d]`: each real token's attention output for this head. The two products
    /// read the head's columns where they lie, strided, and run on `gemm` (one thread
    /// each: the heads are the parallel tasks).
    fn attend(&self, isa: Isa) -> Vec<f32> {
        let (len, d, width) = (self.len, self.d, 3 * self.h as isize);
        let column = |part: usize| Strided {
            at: self.rows[part * self.h + self.at..].as_ptr(),
            row: width,
            col: 1,
        };
        let keys = column(1);
        let keys_t = Strided {
            row: keys.col,
            col: keys.row,
            ..keys
        };
        let mut scores = vec![0f32; len * len];
        // SAFETY: queries, keys and values are `len` rows `width` apart of `d` values
        // from their starts, inside `rows`; `scores` is `[len, len]`, `out` `[len, d]`.
        unsafe {
            gemm(
                [len, len, d],
                Strided::rows(scores.as_mut_ptr(), len),
                column(0),
                keys_t,
                1.0 / (d as f32).sqrt(),
                false,
                gemm::Parallelism::None,
            );
        }
        for row in scores.chunks_exact_mut(len.max(1)) {
            softmax(isa, row);
        }
        let mut out = vec![0f32; len * d];
        // SAFETY: as above.
        unsafe {
            gemm(
                [len, d, len],
                Strided::rows(out.as_mut_ptr(), d),
                Strided::rows(scores.as_ptr(), len),
                column(2),
                1.0,
                false,
                gemm::Parallelism::None,
            );
        }
        out
    }
}

/// A row of scores replaced by their softmax.
fn softmax(isa: Isa, row: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self_attention` checked that the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { softmax_avx2(row) },
        // aarch64's baseline has Advanced SIMD, so the plain loops vectorise there.
        _ => softmax_slice(row),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_avx2(row: &mut [f32]) {
    softmax_slice(row);
}

#[inline(always)]
fn softmax_slice(row: &mut [f32]) {
    // A plain comparison, not `f32::max`, whose NaN rule keeps it from vectorising.
    let max = fold(
        row,
        f32::NEG_INFINITY,
        |x| x,
        |a, b| if b > a { b } else { a },
    );
    row.iter_mut().for_each(|s| *s = exp_nonpositive(*s - max));
    let inv = 1.0 / sum(row);
    row.iter_mut().for_each(|s| *s *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::bytes;

    /// The definition in f64: softmax(q·kᵀ/√d) · v over the passage's real tokens.
    fn definition(p: Passages, passage: usize, head: usize, i: usize) -> Vec<f64> {
        let width = p.qkv.len() / (p.lens.len() * p.t);
        let h = width / 3;
        let d = h / p.heads;
        let value = |j: usize, part: usize, c: usize| {
            f64::from(p.qkv[(passage * p.t + j) * width + part * h + head * d + c])
        };
        let len = p.lens[passage];
        let scores: Vec<f64> = (0..len)
            .map(|j| {
                (0..d).map(|c| value(i, 0, c) * value(j, 1, c)).sum::<f64>() / (d as f64).sqrt()
            })
            .collect();
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f64 = weights.iter().sum();
        (0..d)
            .map(|c| (0..len).map(|j| weights[j] * value(j, 2, c)).sum::<f64>() / sum)
            .collect()
    }

    #[test]
    fn every_isa_matches_the_definition_and_ignores_padding() {
        let (heads, d, t) = (3, 32, 45);
        let width = 3 * heads * d;
        // An empty passage among them.
        let lens = [45, 7, 1, 0, 33];
        // Values in [-3, 3), so the softmax is peaked, not flat; the first passage's ten
        // times larger, scores in the hundreds, where e^(s - max) overflows unless the
        // row maximum is found.
        let mut qkv: Vec<f32> = bytes(lens.len() * t * width, 7)
            .into_iter()
            .map(|b| (f32::from(b) / 64.0 - 2.0) * 1.5)
            .collect();
        qkv[..t * width].iter_mut().for_each(|v| *v *= 10.0);
        for (passage, &len) in lens.iter().enumerate() {
            let padding = (passage * t + len) * width..(passage + 1) * t * width;
            qkv[padding].fill(1e6);
        }
        let p = Passages {
            qkv: &qkv,
            t,
            width,
            lens: &lens,
            heads,
        };
        for isa in Isa::available() {
            let out = self_attention(isa, p);
            for (passage, &len) in lens.iter().enumerate() {
                for i in 0..t {
                    for head in 0..heads {
                        let at = (passage * t + i) * heads * d + head * d;
                        let got = &out[at..at + d];
                        if i >= len {
                            assert!(got.iter().all(|&v| v == 0.0), "{isa:?} padding row {i}");
                            continue;
                        }
                        let want = definition(p, passage, head, i);
                        // Scores in the hundreds carry f32 rounding of about 1e-4 into
                        // the weights.
                        let tol = if passage == 0 { 1e-3 } else { 2e-5 };
                        for (c, (&g, w)) in got.iter().zip(want).enumerate() {
                            assert!(
                                (f64::from(g) - w).abs() <= tol * w.abs().max(1.0),
                                "{isa:?} passage {passage} row {i} head {head} [{c}]: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "longer than")]
    fn a_length_past_the_positions_is_refused() {
        let qkv = vec![0f32; 2 * 4 * 6];
        self_attention(
            Isa::Scalar,
            Passages {
                qkv: &qkv,
                t: 4,
                width: 6,
                lens: &[4, 5],
                heads: 1,
            },
        );
    }
}
