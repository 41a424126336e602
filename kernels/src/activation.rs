//! Elementwise activations computed without calls into libm, so that they vectorise.
//!
//! BERT's GELU is x·Φ(x) with Φ from erf. flex evaluates erf through the `libm` crate
//! one value at a time, which took 15% of the embedder's time; here Φ comes from
//! Abramowitz and Stegun's 7.1.26 rational approximation of erfc (absolute error below
//! 1.5e-7) and e^y from its Taylor series after range reduction, straight-line code
//! that the compiler vectorises for each instruction set it is compiled for.

use rayon::prelude::*;

use crate::dot::Isa;

/// GELU in place: `x·Φ(x)`, Φ the standard normal CDF.
///
/// # Panics
/// When `isa` is not one [`Isa::available`] lists.
pub fn gelu(isa: Isa, x: &mut [f32]) {
    assert!(
        Isa::available().contains(&isa),
        "{isa:?} kernels do not run on this CPU"
    );
    // In parallel: one thread's pass left the other cores idle for 3-4% of the
    // embedder's time.
    x.par_chunks_mut(CHUNK).for_each(|x| match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA, checked above.
        Isa::Avx2 => unsafe { gelu_avx2(x) },
        // aarch64's baseline has Advanced SIMD, so the plain loop vectorises there.
        _ => gelu_slice(x),
    });
}

/// Values one task computes: enough to outweigh handing it to another thread.
const CHUNK: usize = 1 << 14;

fn gelu_slice(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = gelu_one(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_avx2(x: &mut [f32]) {
    gelu_slice(x);
}

/// x·Φ(x). Φ(−|x|) = ½·erfc(|x|/√2) directly, so the negative tail keeps its relative
/// accuracy instead of cancelling in 1 − Φ.
#[inline(always)]
fn gelu_one(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let tail = 0.5 * poly * exp_nonpositive(-z * z);
    let phi = if x < 0.0 { tail } else { 1.0 - tail };
    x * phi
}

/// e^y for y ≤ 0 (inputs below −87 give e^−87), to about 2e-7 relative: y = n·ln 2 + r
/// with |r| ≤ ½ ln 2, e^r by its Taylor series to r⁶, 2^n from the exponent bits.
#[inline(always)]
pub(crate) fn exp_nonpositive(y: f32) -> f32 {
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 in two parts (Cody and Waite), the first exact in a few bits, so n·LN2_HI
    // is exact and r keeps its precision.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let y = y.max(-87.0);
    let rounded = y * std::f32::consts::LOG2_E + ROUND;
    let n = rounded - ROUND;
    let r = y - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n as an integer from the bits: `rounded` and ROUND share their exponent, so their
    // bit patterns differ by n. (`n as i32` saturates, a branch per value that kept
    // the loop from vectorising.)
    let n = rounded.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    p * f32::from_bits(((n + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64: exact to about 1e-9 for |z| ≤ 4.3.
    fn erf(z: f64) -> f64 {
        let (mut term, mut sum) = (z, z);
        for n in 1..200 {
            term *= -z * z / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    fn gelu_f64(x: f64) -> f64 {
        0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
    }

    #[test]
    fn gelu_matches_the_definition_on_every_isa() {
        let xs: Vec<f32> = (-600..=600).map(|i| i as f32 / 100.0).collect();
        for isa in Isa::available() {
            let mut got = xs.clone();
            gelu(isa, &mut got);
            for (&x, &g) in xs.iter().zip(&got) {
                let want = gelu_f64(f64::from(x));
                let tol = 2e-7 * f64::from(x.abs()).max(1.0);
                assert!(
                    (f64::from(g) - want).abs() <= tol,
                    "{isa:?} gelu({x}) = {g}, want {want}"
                );
            }
        }
    }

    #[test]
    fn exp_matches_the_definition_down_to_its_floor() {
        let mut ys: Vec<f32> = (0..=8700).map(|i| -(i as f32) / 100.0).collect();
        ys.extend([-0.0, -1e-40, -1e-7, -86.99, -87.0]);
        for y in ys {
            let (got, want) = (f64::from(exp_nonpositive(y)), f64::from(y).exp());
            assert!(
                (got - want).abs() <= 3e-7 * want,
                "e^{y} = {got}, want {want}"
            );
        }
        // Below the floor: e^-87, not zero or a denormal.
        assert_eq!(exp_nonpositive(-200.0), exp_nonpositive(-87.0));
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), exp_nonpositive(-87.0));
    }

    #[test]
    fn gelu_saturates_far_out() {
        let mut x = [-200.0f32, -30.0, 30.0, 200.0, 0.0];
        gelu(Isa::best(), &mut x);
        assert!(x[..2].iter().all(|v| v.abs() < 1e-30), "{x:?}");
        assert_eq!(x[2..], [30.0, 200.0, 0.0]);
    }
}
