//! Float reductions the compiler can vectorise.
//!
//! One running total is a chain of dependent additions that the compiler may not
//! reorder for floats, so it stays scalar; partial results in [`LANES`] lanes, combined
//! at the end, vectorise, differing from the sequential sum only in rounding.

/// Lanes of the partial results: four AVX2 registers or eight NEON ones, enough that
/// the operations of one lane do not wait on each other.
const LANES: usize = 32;

/// `combine` folded over `map(x)` for every `x` of `xs`, from `init` (which `combine`
/// must leave unchanged: 0 for a sum, −∞ for a maximum).
#[inline(always)]
pub(crate) fn fold(
    xs: &[f32],
    init: f32,
    map: impl Fn(f32) -> f32,
    combine: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut lanes = [init; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(chunk) {
            *l = combine(*l, map(x));
        }
    }
    let rest = chunks
        .remainder()
        .iter()
        .fold(init, |a, &x| combine(a, map(x)));
    lanes.iter().fold(rest, |a, &l| combine(a, l))
}

/// The sum of `xs`.
#[inline(always)]
pub(crate) fn sum(xs: &[f32]) -> f32 {
    fold(xs, 0.0, |x| x, |a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_agree_with_sequential_ones() {
        let xs: Vec<f32> = (0..203).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        assert_eq!(sum(&xs), xs.iter().sum::<f32>());
        let max = fold(&xs, f32::NEG_INFINITY, |x| x, f32::max);
        assert_eq!(max, 50.0);
        assert_eq!(sum(&[]), 0.0);
    }
}
