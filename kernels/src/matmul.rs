//! Matrix products against a weight matrix kept in its stored blocks.

use rayon::prelude::*;

use crate::dot::{Isa, ROWS};
use crate::q8::Q8Row;
use crate::quant::GgmlType;
use crate::{dot, dot_q8};

/// Weight rows one task owns: their blocks stay in cache while every activation row
/// passes over them.
const TILE_ROWS: usize = 32;

/// Activation rows from which a product widens each task's tile of weight rows to f32
/// and multiplies it by all of them with an f32 GEMM (prefill), instead of the fused
/// dot (decode). Measured on SmolLM2's matrices, 2 threads: the fused dot is faster
/// up to about 24 rows; at 256 the GEMM takes 0.59x its time.
const GEMM_FROM_ROWS: usize = 24;

/// The most weight rows a GEMM task widens to f32 at once. One tile a thread shares
/// the GEMM's packing of the activations best (256-row tiles: 0.89x the time of 64-row
/// ones at 256 activation rows); the cap bounds the copy, in the few MiB a core's cache
/// holds, whatever the model's width.
const GEMM_TILE_ROWS: usize = 256;

/// The result of a product that tasks write by columns.
struct Columns(*mut f32);

// SAFETY: tasks write disjoint columns (see `QMatrix::gemm`).
unsafe impl Sync for Columns {}

/// Where a matrix's values lie: its first value and the steps between rows and
/// between columns (a transposed or column-sliced matrix is read in place).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided<P> {
    pub at: P,
    pub row: isize,
    pub col: isize,
}

impl<P> Strided<P> {
    /// A row-major matrix `width` values wide.
    pub fn rows(at: P, width: usize) -> Self {
        Self {
            at,
            row: width as isize,
            col: 1,
        }
    }
}

/// `dst ← scale · lhs · rhs`, `lhs` `[m, k]`, `rhs` `[k, n]`, `dst` `[m, n]`; with
/// `accumulate`, `dst ← dst + scale · lhs · rhs`. On `gemm`'s best kernels for this CPU.
///
/// # Safety
/// The three views lie within live buffers for their shapes, and no one else reads or
/// writes `dst`'s values meanwhile.
pub(crate) unsafe fn gemm(
    [m, n, k]: [usize; 3],
    dst: Strided<*mut f32>,
    lhs: Strided<*const f32>,
    rhs: Strided<*const f32>,
    scale: f32,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.at,
            dst.col,
            dst.row,
            accumulate,
            lhs.at,
            lhs.col,
            lhs.row,
            rhs.at,
            rhs.col,
            rhs.row,
            if accumulate { 1.0 } else { 0.0 },
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `x · w + bias` for `x` `[rows, ins]` and `w` `[ins, outs]`, row-major f32 (a linear
/// layer with its weight stored transposed; `outs` is `bias.len()`): the bias is
/// written first and the GEMM adds the product onto it, one pass over the output fewer
/// than adding it after; in parallel over the current pool's threads.
///
/// # Panics
/// When the lengths disagree.
pub fn affine(x: &[f32], [rows, ins]: [usize; 2], w: &[f32], bias: &[f32]) -> Vec<f32> {
    let outs = bias.len();
    assert!(
        x.len() == rows * ins && w.len() == ins * outs,
        "{} activations for [{rows}, {ins}] and {} weights for [{ins}, {outs}]",
        x.len(),
        w.len()
    );
    let mut y = bias.repeat(rows);
    // SAFETY: `y` is `[rows, outs]`, `x` `[rows, ins]` and `w` `[ins, outs]`, row-major.
    unsafe {
        gemm(
            [rows, outs, ins],
            Strided::rows(y.as_mut_ptr(), outs),
            Strided::rows(x.as_ptr(), ins),
            Strided::rows(w.as_ptr(), outs),
            1.0,
            true,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
    y
}

/// A `[rows, cols]` matrix of one GGML type, row-major as GGUF stores it (a linear
/// layer's `[out, in]`).
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    data: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// Checks that `data` holds exactly `rows` rows of `cols` values of `ty`.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, String> {
        let row_bytes = ty.bytes_for(cols as u64).ok_or_else(|| {
            format!(
                "rows of {cols} values do not fill whole {ty:?} blocks of {}",
                ty.block_len()
            )
        })?;
        if (data.len() as u64) != row_bytes * rows as u64 {
            return Err(format!(
                "{} bytes for {rows} {ty:?} rows of {cols} values ({row_bytes} bytes each)",
                data.len()
            ));
        }
        Ok(Self {
            ty,
            rows,
            cols,
            data,
        })
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn row_bytes(&self) -> usize {
        self.data.len() / self.rows.max(1)
    }

    /// The stored bytes of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }

    /// Appends row `r` dequantised to f32 (an embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut Vec<f32>) {
        self.ty.dequantize_into(self.row(r), out);
    }

    /// `x · Wᵀ` for `x` `[n, cols]` row-major: `[n, rows]`, on the best kernels this
    /// CPU has, in parallel over weight rows.
    ///
    /// Below 24 activation rows (decode), quantised weights meet the
    /// activations rounded to 8 bits ([`dot_q8`]); [`QMatrix::matmul_f32_on`] keeps
    /// them f32.
    pub fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        self.matmul_on(Isa::best(), x, n)
    }

    /// [`QMatrix::matmul`] on the kernels of `isa`.
    ///
    /// # Panics
    /// When `x` is not `n` rows of `cols` values.
    pub fn matmul_on(&self, isa: Isa, x: &[f32], n: usize) -> Vec<f32> {
        self.product(isa, x, n, dot_q8::covers(self.ty))
    }

    /// [`QMatrix::matmul_on`] with the activations kept f32 on every path: the
    /// reference the q8 dots are measured against.
    pub fn matmul_f32_on(&self, isa: Isa, x: &[f32], n: usize) -> Vec<f32> {
        self.product(isa, x, n, false)
    }

    fn product(&self, isa: Isa, x: &[f32], n: usize, with_q8: bool) -> Vec<f32> {
        assert_eq!(
            x.len(),
            n * self.cols,
            "activations are not [{n}, {}]",
            self.cols
        );
        if n == 0 || self.rows == 0 {
            return vec![0.0; n * self.rows];
        }
        if n >= GEMM_FROM_ROWS {
            return self.gemm(x, n);
        }
        let xs: Vec<&[f32]> = x.chunks_exact(self.cols).collect();
        // Each activation row quantised once, for every weight row.
        let q8: Vec<Q8Row> = if with_q8 {
            xs.iter().map(|x| Q8Row::quantize(x)).collect()
        } else {
            vec![]
        };
        let q8s: Vec<&Q8Row> = q8.iter().collect();
        // Computed transposed, `[rows, n]`, so each task writes one contiguous slice.
        let mut yt = vec![0f32; self.rows * n];
        yt.par_chunks_mut(TILE_ROWS * n)
            .enumerate()
            .for_each(|(tile, out)| {
                if q8s.is_empty() {
                    self.tile::<_, ROWS>(isa, tile * TILE_ROWS, &xs, out);
                } else {
                    self.tile::<_, { dot_q8::ROWS }>(isa, tile * TILE_ROWS, &q8s, out);
                }
            });
        if n == 1 {
            return yt;
        }
        let mut y = vec![0f32; n * self.rows];
        for (r, column) in yt.chunks_exact(n).enumerate() {
            for (j, &v) in column.iter().enumerate() {
                y[j * self.rows + r] = v;
            }
        }
        y
    }

    /// `x · Wᵀ` by tiles of weight rows widened to f32, each task writing its columns of
    /// the `[n, rows]` result in place.
    fn gemm(&self, x: &[f32], n: usize) -> Vec<f32> {
        let tile_rows = self
            .rows
            .div_ceil(rayon::current_num_threads())
            .min(GEMM_TILE_ROWS);
        let mut y = vec![0f32; n * self.rows];
        let out = Columns(y.as_mut_ptr());
        (0..self.rows.div_ceil(tile_rows))
            .into_par_iter()
            .for_each(|tile| {
                let first = tile * tile_rows;
                let rows = tile_rows.min(self.rows - first);
                // SAFETY: `y` is `[n, rows]`, and each task writes the columns of its
                // own weight rows only.
                unsafe { self.gemm_tile(first, rows, x, n, &out) };
            });
        y
    }

    /// The weight rows `first..first + rows`, widened to f32, times `x` (`[n, cols]`)
    /// transposed, into columns `first..first + rows` of `out` (`[n, self.rows]`).
    ///
    /// # Safety
    /// `out` points at `n · self.rows` values that no other thread writes in those
    /// columns meanwhile.
    unsafe fn gemm_tile(&self, first: usize, rows: usize, x: &[f32], n: usize, out: &Columns) {
        let mut w = Vec::with_capacity(rows * self.cols);
        for r in first..first + rows {
            self.dequantize_row(r, &mut w);
        }
        // SAFETY: `w` is `[rows, cols]` and `x` `[n, cols]`, row-major (so `x` read with
        // its steps swapped is its transpose); the caller guarantees the destination
        // columns.
        unsafe {
            gemm(
                [rows, n, self.cols],
                Strided {
                    at: out.0.add(first),
                    row: 1,
                    col: self.rows as isize,
                },
                Strided::rows(w.as_ptr(), self.cols),
                Strided {
                    at: x.as_ptr(),
                    row: 1,
                    col: self.cols as isize,
                },
                1.0,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// The weight rows from `first` that `out` (`[rows, n]`) has room for, against
    /// every activation row, `R` activation rows at a time.
    fn tile<A: Activations + ?Sized, const R: usize>(
        &self,
        isa: Isa,
        first: usize,
        xs: &[&A],
        out: &mut [f32],
    ) {
        let n = xs.len();
        let whole = n - n % R;
        for j in (0..whole).step_by(R) {
            let group: [&A; R] = std::array::from_fn(|i| xs[j + i]);
            for (r, column) in out.chunks_exact_mut(n).enumerate() {
                let sums = A::dot(isa, self.ty, self.row(first + r), group);
                column[j..j + R].copy_from_slice(&sums);
            }
        }
        for (j, x) in xs.iter().enumerate().skip(whole) {
            for (r, column) in out.chunks_exact_mut(n).enumerate() {
                column[j] = A::dot(isa, self.ty, self.row(first + r), [x])[0];
            }
        }
    }
}

/// An activation row as a fused dot takes it: f32 ([`dot::dot`]) or q8
/// ([`dot_q8::dot`]).
trait Activations {
    fn dot<const N: usize>(isa: Isa, ty: GgmlType, row: &[u8], xs: [&Self; N]) -> [f32; N];
}

impl Activations for [f32] {
    fn dot<const N: usize>(isa: Isa, ty: GgmlType, row: &[u8], xs: [&Self; N]) -> [f32; N] {
        dot::dot(isa, ty, row, xs)
    }
}

impl Activations for Q8Row {
    fn dot<const N: usize>(isa: Isa, ty: GgmlType, row: &[u8], xs: [&Self; N]) -> [f32; N] {
        dot_q8::dot(isa, ty, row, xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::tests::bytes;

    #[test]
    fn affine_adds_the_bias_to_the_product() {
        let (n, k, m) = (37, 70, 45);
        let floats = |len: usize, seed: u64| -> Vec<f32> {
            bytes(len, seed)
                .into_iter()
                .map(|b| f32::from(b) / 64.0 - 2.0)
                .collect()
        };
        let (x, w, bias) = (floats(n * k, 1), floats(k * m, 2), floats(m, 3));
        let y = affine(&x, [n, k], &w, &bias);
        assert_eq!(y.len(), n * m);
        for i in 0..n {
            for j in 0..m {
                let want = f64::from(bias[j])
                    + (0..k)
                        .map(|p| f64::from(x[i * k + p]) * f64::from(w[p * m + j]))
                        .sum::<f64>();
                let got = f64::from(y[i * m + j]);
                assert!((got - want).abs() < 1e-4, "[{i}, {j}]: {got} vs {want}");
            }
        }
        // No rows, and rows of no inputs (the bias alone).
        assert_eq!(affine(&[], [0, k], &w, &bias), Vec::<f32>::new());
        assert_eq!(affine(&[], [2, 0], &[], &bias), bias.repeat(2));
    }
}
