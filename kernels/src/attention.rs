//! Attention of a few query rows over a KV cache kept in f16: decoding, where each new
//! token reads the whole cache once.
//!
//! A decoded token's attention is bound by reading the cache, and a long context makes
//! it as large as the weights (SmolLM2 at 1536 positions: 71 MB a token in f32), so the
//! cache is kept in f16 as llama.cpp keeps it and read here in place, in chunks of keys
//! spread over the threads: each chunk's softmax is summed locally (its own maximum,
//! sum and weighted values) and the chunks are then combined exactly; the probabilities
//! can be read out on the way (attribution reads them while decoding). Prefill, whose
//! many query rows make it a matrix product, and the attention read-out of pruning stay
//! with Burn's operations.
//!
//! The scalar path is the reference the SIMD paths are tested against; they differ only
//! in the order of sums.

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::dot::Isa;

/// Keys one task scores. Their f32 copy (64 KiB at 64 values a head) stays in the
/// core's cache between scoring them and summing their values.
const CHUNK: usize = 256;

/// Query heads, key/value heads (each serving `heads / kv_heads` query heads) and the
/// width of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Heads {
    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }
}

/// One layer's cache: keys and values `[kv_heads, capacity, head_dim]`.
#[derive(Debug, Clone, Copy)]
pub struct Cache<'a> {
    pub keys: &'a [f16],
    pub values: &'a [f16],
    pub capacity: usize,
}

/// Causal attention of `t` query rows `q` (`[t, heads, head_dim]`) that take the cache
/// slots `start..start + t`: row `j` attends to slots `0..=start + j`. Returns the
/// attention output `[t, heads, head_dim]`.
///
/// # Panics
/// When the shapes disagree, or `isa` is not one [`Isa::available`] lists.
pub fn attend(isa: Isa, shape: Heads, q: &[f32], t: usize, cache: Cache, start: usize) -> Vec<f32> {
    let partials = partials(isa, shape, q, t, cache, start);
    output(shape, t, &partials)
}

/// [`attend`], also returning the attention probabilities `[heads, t, start + t]`
/// (row `j` is zero after slot `start + j`): what the model looked at, read out at
/// the cost of writing them.
///
/// # Panics
/// As [`attend`].
pub fn attend_reading(
    isa: Isa,
    shape: Heads,
    q: &[f32],
    t: usize,
    cache: Cache,
    start: usize,
) -> (Vec<f32>, Vec<f32>) {
    let partials = partials(isa, shape, q, t, cache, start);
    let seen = start + t;
    let chunks = seen.div_ceil(CHUNK);
    let group = shape.group();
    let mut probs = vec![0f32; shape.heads * t * seen];
    for (head, parts) in partials.chunks_exact(chunks).enumerate() {
        for row in 0..t * group {
            let (j, g) = (row / group, row % group);
            let at = ((head * group + g) * t + j) * seen;
            let (max, total) = normaliser(parts, row);
            for (c, p) in parts.iter().enumerate() {
                let n = p.scores.len() / (t * group);
                let w = (p.max[row] - max).exp() / total;
                let out = &mut probs[at + c * CHUNK..at + c * CHUNK + n];
                for (o, s) in out.iter_mut().zip(&p.scores[row * n..(row + 1) * n]) {
                    *o = s * w;
                }
            }
        }
    }
    (output(shape, t, &partials), probs)
}

/// Every (KV head, chunk of keys) task's partial softmax, KV head major.
fn partials(
    isa: Isa,
    shape: Heads,
    q: &[f32],
    t: usize,
    cache: Cache,
    start: usize,
) -> Vec<Partial> {
    let Heads {
        heads,
        kv_heads,
        head_dim: hd,
    } = shape;
    let seen = start + t;
    let cache_len = kv_heads * cache.capacity * hd;
    assert!(
        kv_heads > 0
            && heads.is_multiple_of(kv_heads)
            && q.len() == t * heads * hd
            && cache.keys.len() == cache_len
            && cache.values.len() == cache_len
            && seen <= cache.capacity,
        "attention of {t} rows at slot {start} with {shape:?} over a cache of {} keys, {} values, capacity {}",
        cache.keys.len(),
        cache.values.len(),
        cache.capacity
    );
    assert!(
        Isa::available().contains(&isa),
        "{isa:?} kernels do not run on this CPU"
    );
    let scale = 1.0 / (hd as f32).sqrt();
    let chunks = seen.div_ceil(CHUNK);
    (0..kv_heads * chunks)
        .into_par_iter()
        .map(|task| {
            let (head, chunk) = (task / chunks, task % chunks);
            let keys = chunk * CHUNK..seen.min((chunk + 1) * CHUNK);
            let queries = Queries::gather(shape, q, t, head, scale);
            let at = head * cache.capacity * hd;
            let rows = at + keys.start * hd..at + keys.end * hd;
            queries.partial(
                isa,
                &cache.keys[rows.clone()],
                &cache.values[rows],
                keys.start,
                start,
            )
        })
        .collect()
}

/// The attention output `[t, heads, head_dim]` from the partials.
fn output(shape: Heads, t: usize, partials: &[Partial]) -> Vec<f32> {
    let (heads, hd, group) = (shape.heads, shape.head_dim, shape.group());
    let chunks = partials.len() / shape.kv_heads;
    let mut out = vec![0f32; t * heads * hd];
    for (head, parts) in partials.chunks_exact(chunks).enumerate() {
        for row in 0..t * group {
            let (j, g) = (row / group, row % group);
            let at = (j * heads + head * group + g) * hd;
            combine(parts, row, hd, &mut out[at..at + hd]);
        }
    }
    out
}

/// The query rows one KV head serves, `[t · group, head_dim]` (row `j · group + g` is
/// query head `g` of the group at token `j`), pre-scaled by 1/√head_dim.
struct Queries {
    rows: Vec<f32>,
    group: usize,
    hd: usize,
}

impl Queries {
    fn gather(shape: Heads, q: &[f32], t: usize, head: usize, scale: f32) -> Self {
        let (group, hd) = (shape.group(), shape.head_dim);
        let mut rows = Vec::with_capacity(t * group * hd);
        for j in 0..t {
            let at = (j * shape.heads + head * group) * hd;
            rows.extend(q[at..at + group * hd].iter().map(|v| v * scale));
        }
        Self { rows, group, hd }
    }

    /// The keys from slot `first` on (`keys`, `values` `[n, head_dim]`) summed for every
    /// row; row `j · group + g` sees slots up to `start + j` only.
    fn partial(
        &self,
        isa: Isa,
        keys: &[f16],
        values: &[f16],
        first: usize,
        start: usize,
    ) -> Partial {
        let hd = self.hd;
        let n = keys.len() / hd;
        let rows = self.rows.len() / hd;
        let mut wide = vec![0f32; n * hd];
        widen(isa, keys, &mut wide);
        let mut scores = vec![f32::NEG_INFINITY; rows * n];
        let mut max = vec![f32::NEG_INFINITY; rows];
        for (r, q) in self.rows.chunks_exact(hd).enumerate() {
            let visible = (start + r / self.group + 1).saturating_sub(first).min(n);
            let s = &mut scores[r * n..r * n + visible];
            for (s, k) in s.iter_mut().zip(wide.chunks_exact(hd)) {
                *s = dot(isa, q, k);
            }
            max[r] = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        }
        let mut sum = vec![0f32; rows];
        for (r, s) in scores.chunks_exact_mut(n).enumerate() {
            if max[r] > f32::NEG_INFINITY {
                s.iter_mut().for_each(|s| *s = (*s - max[r]).exp());
                sum[r] = s.iter().sum();
            } else {
                s.fill(0.0);
            }
        }
        widen(isa, values, &mut wide);
        let mut acc = vec![0f32; rows * hd];
        for (k, v) in wide.chunks_exact(hd).enumerate() {
            for (r, a) in acc.chunks_exact_mut(hd).enumerate() {
                let p = scores[r * n + k];
                if p != 0.0 {
                    axpy(isa, p, v, a);
                }
            }
        }
        Partial {
            max,
            sum,
            acc,
            scores,
        }
    }
}

/// One chunk's softmax, summed locally: per row its largest score, the sum of
/// exp(score − max), the values weighted by them, and the exp(score − max) themselves
/// (`[rows, keys]`, zero where a row may not look).
struct Partial {
    max: Vec<f32>,
    sum: Vec<f32>,
    acc: Vec<f32>,
    scores: Vec<f32>,
}

/// Row `row`'s largest maximum over the chunks, and its softmax denominator at it.
fn normaliser(parts: &[Partial], row: usize) -> (f32, f32) {
    let max = parts
        .iter()
        .map(|p| p.max[row])
        .fold(f32::NEG_INFINITY, f32::max);
    let total = parts
        .iter()
        .filter(|p| p.max[row] > f32::NEG_INFINITY)
        .map(|p| (p.max[row] - max).exp() * p.sum[row])
        .sum();
    (max, total)
}

/// Row `row` of every chunk rescaled to the largest maximum among them and normalised.
fn combine(parts: &[Partial], row: usize, hd: usize, out: &mut [f32]) {
    let (max, total) = normaliser(parts, row);
    for p in parts.iter().filter(|p| p.max[row] > f32::NEG_INFINITY) {
        let w = (p.max[row] - max).exp();
        for (o, a) in out.iter_mut().zip(&p.acc[row * hd..(row + 1) * hd]) {
            *o += w * a;
        }
    }
    out.iter_mut().for_each(|o| *o /= total);
}

/// `src` as f32 into `dst`. (`half`'s slice conversion calls a function every eight
/// values, which cost more than the attention's arithmetic.)
fn widen(isa: Isa, src: &[f16], dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `attend` checked that the CPU runs `isa`.
        Isa::Avx2 if src.len().is_multiple_of(8) => unsafe { avx2::widen(src, dst) },
        _ => src.convert_to_f32_slice(dst),
    }
}

/// `q · k`.
fn dot(isa: Isa, q: &[f32], k: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `attend` checked that the CPU runs `isa`.
        Isa::Avx2 if q.len().is_multiple_of(8) => unsafe { avx2::dot(q, k) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: every aarch64 target Rust builds for has Advanced SIMD.
        Isa::Neon if q.len().is_multiple_of(4) => unsafe { neon::dot(q, k) },
        _ => q.iter().zip(k).map(|(q, k)| q * k).sum(),
    }
}

/// `acc += p · v`.
fn axpy(isa: Isa, p: f32, v: &[f32], acc: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `attend` checked that the CPU runs `isa`.
        Isa::Avx2 if v.len().is_multiple_of(8) => unsafe { avx2::axpy(p, v, acc) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: every aarch64 target Rust builds for has Advanced SIMD.
        Isa::Neon if v.len().is_multiple_of(4) => unsafe { neon::axpy(p, v, acc) },
        _ => acc.iter_mut().zip(v).for_each(|(a, v)| *a += p * v),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use half::f16;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,f16c")]
    pub fn widen(src: &[f16], dst: &mut [f32]) {
        for (s, d) in src.chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
            // SAFETY: both chunks hold 8 values.
            unsafe {
                let wide = _mm256_cvtph_ps(_mm_loadu_si128(s.as_ptr().cast()));
                _mm256_storeu_ps(d.as_mut_ptr(), wide);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn dot(q: &[f32], k: &[f32]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        for (q, k) in q.chunks_exact(8).zip(k.chunks_exact(8)) {
            // SAFETY: both chunks hold 8 values.
            acc = unsafe {
                _mm256_fmadd_ps(
                    _mm256_loadu_ps(q.as_ptr()),
                    _mm256_loadu_ps(k.as_ptr()),
                    acc,
                )
            };
        }
        let half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn axpy(p: f32, v: &[f32], acc: &mut [f32]) {
        let p = _mm256_set1_ps(p);
        for (a, v) in acc.chunks_exact_mut(8).zip(v.chunks_exact(8)) {
            // SAFETY: both chunks hold 8 values.
            unsafe {
                let sum =
                    _mm256_fmadd_ps(p, _mm256_loadu_ps(v.as_ptr()), _mm256_loadu_ps(a.as_ptr()));
                _mm256_storeu_ps(a.as_mut_ptr(), sum);
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    #[target_feature(enable = "neon")]
    pub fn dot(q: &[f32], k: &[f32]) -> f32 {
        let mut acc = vdupq_n_f32(0.0);
        for (q, k) in q.chunks_exact(4).zip(k.chunks_exact(4)) {
            // SAFETY: both chunks hold 4 values.
            acc = unsafe { vfmaq_f32(acc, vld1q_f32(q.as_ptr()), vld1q_f32(k.as_ptr())) };
        }
        vaddvq_f32(acc)
    }

    #[target_feature(enable = "neon")]
    pub fn axpy(p: f32, v: &[f32], acc: &mut [f32]) {
        for (a, v) in acc.chunks_exact_mut(4).zip(v.chunks_exact(4)) {
            // SAFETY: both chunks hold 4 values.
            unsafe {
                let sum = vfmaq_n_f32(vld1q_f32(a.as_ptr()), vld1q_f32(v.as_ptr()), p);
                vst1q_f32(a.as_mut_ptr(), sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::bytes;

    /// Deterministic values in [-2, 2), so a failure reproduces.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        bytes(n, seed)
            .into_iter()
            .map(|b| f32::from(b as i8) / 64.0)
            .collect()
    }

    /// Softmax attention written out directly in f64: the definition, with its
    /// probabilities `[heads, t, start + t]`.
    fn definition(
        shape: Heads,
        q: &[f32],
        t: usize,
        keys: &[f16],
        values: &[f16],
        capacity: usize,
        start: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let Heads {
            heads,
            head_dim: hd,
            ..
        } = shape;
        let group = shape.group();
        let seen = start + t;
        let mut out = vec![0f32; t * heads * hd];
        let mut probs = vec![0f32; heads * t * seen];
        for j in 0..t {
            for h in 0..heads {
                let kv = (h / group) * capacity * hd;
                let qr = &q[(j * heads + h) * hd..][..hd];
                let scores: Vec<f64> = (0..=start + j)
                    .map(|s| {
                        let k = &keys[kv + s * hd..][..hd];
                        qr.iter()
                            .zip(k)
                            .map(|(q, k)| f64::from(*q) * k.to_f64())
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exp.iter().sum();
                for (s, e) in exp.iter().enumerate() {
                    probs[(h * t + j) * seen + s] = (e / total) as f32;
                    let v = &values[kv + s * hd..][..hd];
                    for (o, v) in out[(j * heads + h) * hd..][..hd].iter_mut().zip(v) {
                        *o += (e / total * v.to_f64()) as f32;
                    }
                }
            }
        }
        (out, probs)
    }

    #[test]
    fn every_isa_matches_the_definition_across_chunks_and_rows() {
        let shape = Heads {
            heads: 9,
            kv_heads: 3,
            head_dim: 64,
        };
        let capacity = 700;
        let cache_len = shape.kv_heads * capacity * shape.head_dim;
        let keys: Vec<f16> = values(cache_len, 1)
            .into_iter()
            .map(f16::from_f32)
            .collect();
        let vals: Vec<f16> = values(cache_len, 2)
            .into_iter()
            .map(f16::from_f32)
            .collect();
        let cache = Cache {
            keys: &keys,
            values: &vals,
            capacity,
        };
        // One row at the first slot, one past a chunk boundary, and three rows whose
        // causal limits fall in different chunks.
        for (start, t) in [(0, 1), (300, 1), (510, 3), (0, 4)] {
            let q = values(t * shape.heads * shape.head_dim, 3 + start as u64);
            let (want, want_probs) = definition(shape, &q, t, &keys, &vals, capacity, start);
            for isa in Isa::available() {
                let got = attend(isa, shape, &q, t, cache, start);
                let (read, probs) = attend_reading(isa, shape, &q, t, cache, start);
                assert_eq!(got, read);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-4,
                        "{isa:?} start {start} t {t} value {i}: {g} vs {w}"
                    );
                }
                assert_eq!(probs.len(), want_probs.len());
                for (i, (g, w)) in probs.iter().zip(&want_probs).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-6,
                        "{isa:?} start {start} t {t} probability {i}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "over a cache of")]
    fn a_row_past_the_capacity_is_refused() {
        let shape = Heads {
            heads: 2,
            kv_heads: 1,
            head_dim: 8,
        };
        let cache = vec![f16::ZERO; 8 * 4];
        let q = vec![0.0; 2 * 8];
        attend(
            Isa::best(),
            shape,
            &q,
            1,
            Cache {
                keys: &cache,
                values: &cache,
                capacity: 4,
            },
            4,
        );
    }
}
