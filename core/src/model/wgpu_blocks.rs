//! GGUF blocks on the wgpu device: `y = x · Wᵀ` for f32 activations `x` `[t, cols]`
//! and a matrix `W` `[rows, cols]` kept in its GGUF block bytes, as a CubeCL kernel
//! run as a Burn backend extension.
//!
//! The bytes are uploaded once, as u32 words (WGSL has no u8: a byte is read by
//! shifting its word), and decoded where they are read: a workgroup takes a few
//! output values, the lanes of each walk its row's 32-value chunks, dequantise and
//! dot them with the activations in f32, and a shared-memory tree adds the lanes'
//! sums. The activations are read where the backend keeps them and the output stays
//! on the device: no copy through host memory. From [`DEQUANTIZE_FROM_ROWS`] rows of
//! activations (prefill) the matrix is instead dequantised for the call and Burn's
//! matmul runs on it.
//!
//! A correct first design, run on Mesa's lavapipe in the tests; speed on a real GPU
//! (coalesced reads, activations in shared memory, vector loads, subgroup sums) is
//! later work.

use burn::backend::DispatchDevice;
use burn::tensor::{DType, Device, FloatDType, Shape, Tensor};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{Cube, CubeDevice};
use cubecl::client::Client;
use cubecl::prelude::*;
use cubecl::server::Handle;
use pith_kernels::GgmlType;

use crate::error::{Error, Result};

/// Lanes per output value, each summing every `ROW_LANES`-th 32-value chunk of a row,
/// and rows per workgroup. 8 lanes keep most busy on short rows (576 columns: 18
/// chunks, 3 rounds of 8) where 32 left 14 idle.
const ROW_LANES: u32 = 8;
const CUBE_ROWS: u32 = 8;

/// Rows of activations from which a product dequantises the matrix to f32 for the call
/// and multiplies with Burn's matmul instead. A few rows (decoding) are bound by reading
/// the weights, where the fused kernel reads the fewest bytes; many rows (prefill) by
/// arithmetic, where the fused kernel decodes each block once per row while a tiled
/// GEMM reuses what it loads (lavapipe, 64-token prefill of SmolLM2-135M: 19 s fused,
/// about 2 s with f16 weights through the GEMM).
const DEQUANTIZE_FROM_ROWS: usize = 32;

/// Type codes, compile-time parameters of the kernel (GGML's type ids).
const F32: u32 = 0;
const F16: u32 = 1;
const Q4_0: u32 = 2;
const Q4_1: u32 = 3;
const Q5_0: u32 = 6;
const Q5_1: u32 = 7;
const Q8_0: u32 = 8;
const Q4K: u32 = 12;
const Q5K: u32 = 13;
const Q6K: u32 = 14;

/// The kernel's code for `ty`, and how its rows split into 32-value chunks: chunks
/// per block and bytes per block (for F32/F16, a "block" of 32 values).
fn layout(ty: GgmlType) -> Option<(u32, u32, u32)> {
    Some(match ty {
        GgmlType::F32 => (F32, 1, 128),
        GgmlType::F16 => (F16, 1, 64),
        GgmlType::Q4_0 => (Q4_0, 1, 18),
        GgmlType::Q4_1 => (Q4_1, 1, 20),
        GgmlType::Q5_0 => (Q5_0, 1, 22),
        GgmlType::Q5_1 => (Q5_1, 1, 24),
        GgmlType::Q8_0 => (Q8_0, 1, 34),
        GgmlType::Q4K => (Q4K, 8, 144),
        GgmlType::Q5K => (Q5K, 8, 176),
        GgmlType::Q6K => (Q6K, 8, 210),
        GgmlType::Bf16 => return None,
    })
}

/// Byte `at` of the little-endian word stream.
#[cube]
fn byte_at(w: &[u32], at: u32) -> u32 {
    (w[(at / 4) as usize] >> ((at % 4) * 8)) & 0xFF
}

/// The little-endian f16 at even byte `at`, widened to f32.
#[cube]
fn half_at(w: &[u32], at: u32) -> f32 {
    let h = (w[(at / 4) as usize] >> ((at % 4) * 8)) & 0xFFFF;
    let sign = (h & 0x8000) << 16;
    let exp = (h >> 10) & 0x1F;
    let mant = h & 0x3FF;
    let mut v = f32::reinterpret(sign | ((exp + 112) << 23) | (mant << 13));
    if exp == 0 {
        // Subnormal (or zero): mant · 2⁻²⁴.
        v = f32::cast_from(mant) * 0.000000059604645;
        if sign != 0 {
            v = -v;
        }
    }
    v
}

/// Byte `at` as a signed i8, in f32.
#[cube]
fn signed_at(w: &[u32], at: u32) -> f32 {
    let q = byte_at(w, at);
    let mut v = f32::cast_from(q);
    if q >= 128 {
        v -= 256.0;
    }
    v
}

/// Bit `j` of the little-endian u32 at byte `at` (2-aligned), the fifth bit of Q5 blocks.
#[cube]
fn q5_high(w: &[u32], at: u32, j: u32) -> u32 {
    let lo = (w[(at / 4) as usize] >> ((at % 4) * 8)) & 0xFFFF;
    let hi = (w[((at + 2) / 4) as usize] >> (((at + 2) % 4) * 8)) & 0xFFFF;
    ((lo | (hi << 16)) >> j) & 1
}

/// Value `l` of 32 packed in the 16 bytes from `qs`: low nibbles hold values 0..16,
/// high nibbles 16..32.
#[cube]
fn nibble(w: &[u32], qs: u32, l: u32) -> u32 {
    (byte_at(w, qs + l % 16) >> (4 * (l / 16))) & 0xF
}

/// The 6-bit scale of sub-block `sub` of a Q4_K/Q5_K block (12 scale bytes from 4).
#[cube]
fn k_scale(w: &[u32], block: u32, sub: u32) -> f32 {
    let sc = block + 4;
    let mut v = byte_at(w, sc + sub) & 63;
    if sub >= 4 {
        v = (byte_at(w, sc + sub + 4) & 0xF) | ((byte_at(w, sc + sub - 4) >> 6) << 4);
    }
    f32::cast_from(v)
}

/// The 6-bit min of sub-block `sub` of a Q4_K/Q5_K block.
#[cube]
fn k_min(w: &[u32], block: u32, sub: u32) -> f32 {
    let sc = block + 4;
    let mut v = byte_at(w, sc + sub + 4) & 63;
    if sub >= 4 {
        v = (byte_at(w, sc + sub + 4) >> 4) | ((byte_at(w, sc + sub) >> 6) << 4);
    }
    f32::cast_from(v)
}

/// Every type's values are `a · q + b`, with `a` and `b` shared by 16 values at least
/// and `q` read from the value's own bits. Here `q` of value `l` of a 32-value chunk
/// (`block` its block's first byte, `sub` the chunk within the block).
#[cube]
fn chunk_q(w: &[u32], block: u32, sub: u32, l: u32, #[comptime] ty: u32) -> f32 {
    let mut q = 0.0f32;
    if comptime!(ty == F32) {
        q = f32::reinterpret(w[(block / 4 + l) as usize]);
    } else if comptime!(ty == F16) {
        q = half_at(w, block + 2 * l);
    } else if comptime!(ty == Q4_0) {
        q = f32::cast_from(nibble(w, block + 2, l));
    } else if comptime!(ty == Q4_1) {
        q = f32::cast_from(nibble(w, block + 4, l));
    } else if comptime!(ty == Q5_0) {
        // As Q4, and bit `l` of a 32-bit mask before the nibbles as the fifth bit.
        q = f32::cast_from(nibble(w, block + 6, l) | (q5_high(w, block + 2, l) << 4));
    } else if comptime!(ty == Q5_1) {
        q = f32::cast_from(nibble(w, block + 8, l) | (q5_high(w, block + 4, l) << 4));
    } else if comptime!(ty == Q8_0) {
        q = signed_at(w, block + 2 + l);
    } else if comptime!(ty == Q4K) {
        // 32 bytes per pair of sub-blocks: low nibbles for even `sub`, high for odd.
        let qs = block + 16 + 32 * (sub / 2);
        q = f32::cast_from((byte_at(w, qs + l) >> (4 * (sub % 2))) & 0xF);
    } else if comptime!(ty == Q5K) {
        // As Q4_K, plus bit `sub` of byte `l` of 32 high-bit bytes.
        let qs = block + 48 + 32 * (sub / 2);
        let low = (byte_at(w, qs + l) >> (4 * (sub % 2))) & 0xF;
        q = f32::cast_from(low | (((byte_at(w, block + 16 + l) >> sub) & 1) << 4));
    } else if comptime!(ty == Q6K) {
        // Chunk `sub` = 4·half + group: low 4 bits from ql, high 2 from qh.
        let half = sub / 4;
        let group = sub % 4;
        let ql = block + 64 * half + 32 * (group % 2);
        let qh = block + 128 + 32 * half;
        let low = (byte_at(w, ql + l) >> (4 * (group / 2))) & 0xF;
        q = f32::cast_from(low | (((byte_at(w, qh + l) >> (2 * group)) & 3) << 4));
    }
    q
}

/// `a` for values `16·half ..` of a chunk.
#[cube]
fn chunk_scale(w: &[u32], block: u32, sub: u32, half: u32, #[comptime] ty: u32) -> f32 {
    let mut a = 1.0f32;
    if comptime!(ty == Q4_0 || ty == Q4_1 || ty == Q5_0 || ty == Q5_1 || ty == Q8_0) {
        a = half_at(w, block);
    } else if comptime!(ty == Q4K || ty == Q5K) {
        a = half_at(w, block) * k_scale(w, block, sub);
    } else if comptime!(ty == Q6K) {
        // A signed scale per 16 values.
        a = half_at(w, block + 208) * signed_at(w, block + 192 + 2 * sub + half);
    }
    a
}

/// `b` for values `16·half ..` of a chunk.
#[cube]
fn chunk_offset(w: &[u32], block: u32, sub: u32, half: u32, #[comptime] ty: u32) -> f32 {
    let mut b = 0.0f32;
    if comptime!(ty == Q4_0) {
        b = 0.0 - 8.0 * half_at(w, block);
    } else if comptime!(ty == Q5_0) {
        b = 0.0 - 16.0 * half_at(w, block);
    } else if comptime!(ty == Q4_1 || ty == Q5_1) {
        b = half_at(w, block + 2);
    } else if comptime!(ty == Q4K || ty == Q5K) {
        b = 0.0 - half_at(w, block + 2) * k_min(w, block, sub);
    } else if comptime!(ty == Q6K) {
        b = 0.0 - 32.0 * chunk_scale(w, block, sub, half, ty);
    }
    b
}

/// A 32-value chunk of a row dotted with the activations from `xo`: per 16 values,
/// `a · Σ q·x + b · Σ x`.
#[cube]
fn chunk_dot(w: &[u32], x: &[f32], block: u32, sub: u32, xo: u32, #[comptime] ty: u32) -> f32 {
    let mut out = 0.0f32;
    for half in 0..2u32 {
        let mut sq = 0.0f32;
        let mut sx = 0.0f32;
        for l in 16 * half..16 * half + 16 {
            let v = x[(xo + l) as usize];
            sq += chunk_q(w, block, sub, l, ty) * v;
            sx += v;
        }
        out +=
            chunk_scale(w, block, sub, half, ty) * sq + chunk_offset(w, block, sub, half, ty) * sx;
    }
    out
}

/// `y[tok, first_row + row] = Σ x[tok, ·] · W[row, ·]` for the `rows` rows of `w`
/// (one part of a matrix; `y` has `y_cols` columns): a workgroup per `CUBE_ROWS` rows and a token,
/// rows spread over the x and z dimensions of the grid.
#[cube(launch)]
fn block_matmul(
    w: &[u32],
    x: &[f32],
    y: &mut [f32],
    rows: u32,
    first_row: u32,
    y_cols: u32,
    cols: u32,
    row_bytes: u32,
    chunks_per_block: u32,
    block_bytes: u32,
    #[comptime] ty: u32,
) {
    let lane = UNIT_POS_X;
    let row = (CUBE_POS_X + CUBE_POS_Z * CUBE_COUNT_X) * CUBE_DIM_Y + UNIT_POS_Y;
    let tok = CUBE_POS_Y;
    let slot = UNIT_POS_Y * CUBE_DIM_X;
    let mut acc = 0.0f32;
    if row < rows {
        let chunks = cols / 32;
        let row_base = row * row_bytes;
        let x_base = tok * cols;
        let mut c = lane;
        while c < chunks {
            let block = row_base + (c / chunks_per_block) * block_bytes;
            let sub = c % chunks_per_block;
            acc += chunk_dot(w, x, block, sub, x_base + c * 32, ty);
            c += CUBE_DIM_X;
        }
    }
    let mut sums = Shared::<[f32]>::new_slice(comptime!((ROW_LANES * CUBE_ROWS) as usize));
    sums[(slot + lane) as usize] = acc;
    sync_cube();
    let mut stride = CUBE_DIM_X / 2;
    while stride > 0 {
        if lane < stride {
            sums[(slot + lane) as usize] += sums[(slot + lane + stride) as usize];
        }
        sync_cube();
        stride /= 2;
    }
    if lane == 0 && row < rows {
        y[(tok * y_cols + first_row + row) as usize] = sums[slot as usize];
    }
}

/// `y[first_row + row, ·]` = row `row` of `w` dequantised, for the `rows` rows of `w`:
/// one unit per 32-value chunk.
#[cube(launch)]
fn block_dequantize(
    w: &[u32],
    y: &mut [f32],
    rows: u32,
    first_row: u32,
    cols: u32,
    row_bytes: u32,
    chunks_per_block: u32,
    block_bytes: u32,
    #[comptime] ty: u32,
) {
    let i = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X;
    let chunks = cols / 32;
    if i < rows * chunks {
        let row = i / chunks;
        let c = i % chunks;
        let block = row * row_bytes + (c / chunks_per_block) * block_bytes;
        let sub = c % chunks_per_block;
        let yo = (first_row + row) * cols + c * 32;
        for half in 0..2u32 {
            let a = chunk_scale(w, block, sub, half, ty);
            let b = chunk_offset(w, block, sub, half, ty);
            for l in 16 * half..16 * half + 16 {
                y[(yo + l) as usize] = a * chunk_q(w, block, sub, l, ty) + b;
            }
        }
    }
}

/// Whether `device` is a graphics card: a wgpu device whose adapter is neither a CPU
/// nor a software rasterizer (CubeCL then knows no physical card behind it).
pub(crate) fn on_a_card(device: &Device) -> bool {
    cube_device(device).is_some_and(|d| d.client().properties().identity.physical.is_some())
}

/// The CubeCL device behind a Burn device, when it is one.
fn cube_device(device: &Device) -> Option<CubeDevice> {
    match device.as_dispatch() {
        DispatchDevice::Cube(d) => Some(d.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Consecutive rows of a matrix in one device buffer.
struct Part {
    handle: Handle,
    words: usize,
    first_row: usize,
    rows: usize,
}

/// A `[rows, cols]` matrix's GGUF blocks in device buffers: one, or several of whole
/// rows where the matrix is larger than the device binds at once.
pub(crate) struct DeviceBlocks {
    parts: Vec<Part>,
    code: u32,
    chunks_per_block: u32,
    block_bytes: u32,
    rows: usize,
    cols: usize,
}

impl DeviceBlocks {
    /// Uploads `bytes`, the matrix's blocks as stored, to `device` (a CubeCL device).
    pub(crate) fn upload(
        device: &Device,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self> {
        Self::upload_in_parts(device, ty, rows, cols, bytes, None)
    }

    /// [`upload`](Self::upload) in buffers of at most `part_bytes` (by default the
    /// largest buffer the device binds).
    fn upload_in_parts(
        device: &Device,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
        part_bytes: Option<usize>,
    ) -> Result<Self> {
        let unsupported =
            || Error::Unsupported(format!("{ty:?} weights as stored on the device {device:?}"));
        let cube = cube_device(device).ok_or_else(unsupported)?;
        let (code, chunks_per_block, block_bytes) = layout(ty).ok_or_else(unsupported)?;
        let want = ty.bytes_for((rows * cols) as u64);
        if !cols.is_multiple_of(32) || want != Some(bytes.len() as u64) {
            return Err(Error::Unsupported(format!(
                "a {ty:?} matrix [{rows}, {cols}] of {} bytes on the device",
                bytes.len()
            )));
        }
        if rows * cols >= u32::MAX as usize {
            return Err(Error::Unsupported(format!(
                "a {ty:?} matrix [{rows}, {cols}] too large for 32-bit offsets"
            )));
        }
        let client = cube.client();
        let row_bytes = bytes.len() / rows.max(1);
        let part_bytes = part_bytes
            .unwrap_or(client.properties().memory.max_page_size as usize)
            .min(u32::MAX as usize / 2);
        let part_rows = (part_bytes / row_bytes.max(1)).min(rows.max(1));
        if part_rows == 0 {
            return Err(Error::Unsupported(format!(
                "a {ty:?} row of {row_bytes} bytes, more than the device binds ({part_bytes})"
            )));
        }
        let mut parts = Vec::with_capacity(rows.div_ceil(part_rows));
        for first_row in (0..rows).step_by(part_rows) {
            let n = part_rows.min(rows - first_row);
            let part = &bytes[first_row * row_bytes..(first_row + n) * row_bytes];
            // Whole words: the tail padded with zeros.
            let words = part.len().div_ceil(4);
            let mut padded = Vec::with_capacity(words * 4);
            padded.extend_from_slice(part);
            padded.resize(words * 4, 0);
            parts.push(Part {
                handle: client.create_from_slice(&padded),
                words,
                first_row,
                rows: n,
            });
        }
        Ok(Self {
            parts,
            code,
            chunks_per_block,
            block_bytes,
            rows,
            cols,
        })
    }

    /// `x · Wᵀ` for `x` `[t, cols]` on the device: `[t, rows]` f32, on the device.
    pub(crate) fn matmul(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let [t, cols] = x.dims();
        if cols != self.cols {
            return Err(Error::Device(format!(
                "activations of {cols} columns against a matrix of {}",
                self.cols
            )));
        }
        let x = if x.dtype() == DType::F32 {
            x
        } else {
            x.cast(FloatDType::F32)
        };
        let x: CubeTensor = x.try_into_primitive::<Cube>().map_err(|e| {
            Error::Unsupported(format!(
                "weights as stored on the device take its activations ({e:?})"
            ))
        })?;
        let x = if x.is_contiguous() {
            x
        } else {
            burn_cubecl::kernel::into_contiguous(x)
        };
        let client = x.client.clone();
        let rows = self.rows;
        if t >= DEQUANTIZE_FROM_ROWS {
            let w = self.dequantize(&client, &x.device);
            let w = Tensor::<2>::from_primitive::<Cube>(w);
            return Ok(Tensor::<2>::from_primitive::<Cube>(x).matmul(w.transpose()));
        }
        if t * rows >= u32::MAX as usize || t * cols >= u32::MAX as usize {
            return Err(Error::Unsupported(format!(
                "{t} rows of activations too many for 32-bit offsets"
            )));
        }
        let out = client.empty(t * rows * size_of::<f32>());
        for part in self.parts.iter().filter(|_| t > 0) {
            let groups = part.rows.div_ceil(CUBE_ROWS as usize);
            let grid_x = groups.min(u16::MAX as usize);
            let grid_z = groups.div_ceil(grid_x);
            // SAFETY: the lengths are those of the buffers: the words uploaded, the
            // contiguous activations and the output just reserved.
            unsafe {
                block_matmul::launch(
                    &client,
                    CubeCount::Static(grid_x as u32, t as u32, grid_z as u32),
                    CubeDim::new_2d(ROW_LANES, CUBE_ROWS),
                    BufferArg::from_raw_parts(part.handle.clone(), part.words),
                    BufferArg::from_raw_parts(x.handle.clone(), t * cols),
                    BufferArg::from_raw_parts(out.clone(), t * rows),
                    part.rows as u32,
                    part.first_row as u32,
                    rows as u32,
                    cols as u32,
                    (cols as u32 / 32 / self.chunks_per_block) * self.block_bytes,
                    self.chunks_per_block,
                    self.block_bytes,
                    self.code,
                );
            }
        }
        let y = CubeTensor::new_contiguous(
            client,
            x.device.clone(),
            Shape::new([t, rows]),
            out,
            DType::F32,
        );
        Ok(Tensor::from_primitive::<Cube>(y))
    }

    /// The matrix dequantised to f32 `[rows, cols]` on the device, for one call.
    fn dequantize(&self, client: &Client, device: &CubeDevice) -> CubeTensor {
        let (rows, cols) = (self.rows, self.cols);
        let out = client.empty(rows * cols * size_of::<f32>());
        let units = ROW_LANES * CUBE_ROWS;
        for part in &self.parts {
            let cubes = (part.rows * cols / 32).div_ceil(units as usize);
            let grid_x = cubes.min(u16::MAX as usize);
            let grid_y = cubes.div_ceil(grid_x);
            // SAFETY: as in `matmul`; the output holds every row of every part.
            unsafe {
                block_dequantize::launch(
                    client,
                    CubeCount::Static(grid_x as u32, grid_y as u32, 1),
                    CubeDim::new_1d(units),
                    BufferArg::from_raw_parts(part.handle.clone(), part.words),
                    BufferArg::from_raw_parts(out.clone(), rows * cols),
                    part.rows as u32,
                    part.first_row as u32,
                    cols as u32,
                    (cols as u32 / 32 / self.chunks_per_block) * self.block_bytes,
                    self.chunks_per_block,
                    self.block_bytes,
                    self.code,
                );
            }
        }
        CubeTensor::new_contiguous(
            client.clone(),
            device.clone(),
            Shape::new([rows, cols]),
            out,
            DType::F32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{self, DeviceChoice};
    use crate::model::gguf::Gguf;
    use burn::tensor::TensorData;
    use pith_kernels::{Isa, QMatrix};

    fn gguf() -> Gguf {
        let models = std::env::var_os("PITH_MODELS").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"),
            std::path::PathBuf::from,
        );
        Gguf::open(models.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap()
    }

    /// Deterministic values in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The kernel against pith's CPU kernels on the same blocks, for `t` rows.
    fn check(device: &Device, ty: GgmlType, rows: usize, cols: usize, bytes: &[u8], t: usize) {
        check_parts(device, ty, rows, cols, bytes, t, None);
    }

    fn check_parts(
        device: &Device,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
        t: usize,
        part_bytes: Option<usize>,
    ) {
        let x = noise(t * cols, (rows * 31 + t) as u64);
        // The CPU kernels with f32 activations: the exact reference (decode's default
        // rounds activations to 8 bits, which the wgpu kernel does not).
        let want = QMatrix::new(ty, rows, cols, bytes)
            .unwrap()
            .matmul_f32_on(Isa::best(), &x, t);
        let blocks =
            DeviceBlocks::upload_in_parts(device, ty, rows, cols, bytes, part_bytes).unwrap();
        if let Some(part_bytes) = part_bytes {
            assert_eq!(blocks.parts.len(), bytes.len().div_ceil(part_bytes));
        }
        let xt = Tensor::<2>::from_data(TensorData::new(x, [t, cols]), device);
        let got = blocks.matmul(xt).unwrap();
        assert_eq!(got.dims(), [t, rows]);
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        eprintln!("{ty:?} [{rows}, {cols}] t={t}: max |Δ| {worst:e} (scale {scale})");
        assert!(
            worst <= 1e-4 * scale,
            "{ty:?} [{rows}, {cols}] t={t}: max |Δ| {worst} against the CPU kernels"
        );
    }

    fn gpu() -> Option<Device> {
        let dev = device::open(DeviceChoice::Gpu);
        if dev.kind != DeviceChoice::Gpu {
            eprintln!("skipped: no wgpu adapter");
            return None;
        }
        Some(dev.device)
    }

    /// A software rasterizer is no card, so `auto` leaves it for the CPU device; a card
    /// is taken.
    #[test]
    fn auto_takes_a_card_and_leaves_a_software_adapter() {
        assert!(!on_a_card(&Device::flex()));
        let auto = device::open(DeviceChoice::Auto);
        assert!(auto.warning.is_none());
        let Some(device) = gpu() else {
            assert_eq!(auto.kind, DeviceChoice::Cpu);
            return;
        };
        let name = cube_device(&device)
            .unwrap()
            .client()
            .properties()
            .identity
            .name
            .clone();
        let software = [
            "llvmpipe",
            "lavapipe",
            "SwiftShader",
            "Microsoft Basic Render",
        ]
        .iter()
        .any(|s| name.contains(s));
        eprintln!("adapter {name:?}");
        assert_eq!(on_a_card(&device), !software, "{name}");
        let card = !software;
        assert_eq!(auto.kind == DeviceChoice::Gpu, card);
        assert_eq!(auto.device == device, card);
    }

    #[test]
    fn kernel_matches_cpu_kernels_on_the_shipped_tensors() {
        let Some(device) = gpu() else { return };
        let g = gguf();
        // Q4_1 (the linear layers; ffn_down has 1536 columns) and Q8_0 (the embedding,
        // which is also the output head: its first 4096 rows, and all of them for one row).
        for (name, rows_kept, ts) in [
            ("blk.0.attn_q.weight", None, &[1, 5, 40][..]),
            ("blk.0.attn_k.weight", None, &[1, 3][..]),
            ("blk.3.ffn_down.weight", None, &[1, 4, 33][..]),
            ("token_embd.weight", Some(4096), &[3][..]),
            ("token_embd.weight", None, &[1][..]),
        ] {
            let (info, ty, bytes) = g.raw(name).unwrap();
            let shape = info.shape();
            let (mut rows, cols) = (shape[0], shape[1]);
            let mut bytes = bytes;
            if let Some(keep) = rows_kept {
                rows = keep;
                bytes = &bytes[..ty.bytes_for((rows * cols) as u64).unwrap() as usize];
            }
            for &t in ts {
                check(&device, ty, rows, cols, bytes, t);
            }
        }
    }

    /// A matrix larger than the device binds at once goes up in parts of whole rows,
    /// each writing its own columns of the output.
    #[test]
    fn kernel_reads_a_matrix_uploaded_in_parts() {
        let Some(device) = gpu() else { return };
        let g = gguf();
        let (_, ty, bytes) = g.raw("token_embd.weight").unwrap();
        let (rows, cols) = (1000, 576);
        let bytes = &bytes[..ty.bytes_for((rows * cols) as u64).unwrap() as usize];
        // 300 rows a part (612 bytes a row): four parts, the last of 100 rows.
        for t in [1, 3, 32] {
            check_parts(&device, ty, rows, cols, bytes, t, Some(300 * 612));
        }
    }

    /// Blocks of every other type the kernel reads, from random bytes with scales kept
    /// small and finite (the shipped model has only Q4_1 and Q8_0).
    #[test]
    fn kernel_matches_cpu_kernels_on_every_type() {
        let Some(device) = gpu() else { return };
        let (rows, cols) = (67, 512);
        // Every type but BF16, which the kernel refuses.
        for ty in GgmlType::ALL.into_iter().filter(|&ty| ty != GgmlType::Bf16) {
            let n = ty.bytes_for((rows * cols) as u64).unwrap() as usize;
            let bb = ty.block_bytes();
            let noise = noise(n, ty.block_bytes() as u64);
            let mut bytes: Vec<u8> = noise.iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
            for (b, vals) in bytes.chunks_exact_mut(bb).zip(noise.chunks_exact(bb)) {
                let halves = |b: &mut [u8], at: usize, v: f32| {
                    b[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes())
                };
                match ty {
                    GgmlType::F32 => b.copy_from_slice(&vals[0].to_le_bytes()),
                    GgmlType::F16 => halves(b, 0, vals[0]),
                    GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => {
                        halves(b, 0, vals[0] * 0.05)
                    }
                    GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => {
                        halves(b, 0, vals[0] * 0.05);
                        halves(b, 2, vals[1] * 0.05);
                    }
                    GgmlType::Q6K => halves(b, 208, vals[0] * 0.05),
                    GgmlType::Bf16 => unreachable!(),
                }
            }
            for t in [1, 4, 32] {
                check(&device, ty, rows, cols, &bytes, t);
            }
        }
    }
}
