//! The llama-family decoder (Llama, SmolLM2, Qwen2) on Burn, loaded from GGUF.
//!
//! RMSNorm, RoPE from the cache offset, grouped-query attention in which each KV head
//! serves its group of query heads without copying K/V, SwiGLU, a KV cache allocated
//! once per sequence, and an attention read-out for pruning and rerank.

use std::ops::Range;
use std::sync::Arc;

use burn::tensor::activation::{silu, softmax};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};
use half::f16;
use pith_kernels::attention::{self, Cache, Heads};
use pith_kernels::{GgmlType, Isa, QMatrix};

use super::flex::{cast, flex_values, from_flex, on_flex};
use super::gguf::Gguf;
#[cfg(feature = "gpu")]
use super::wgpu_blocks::DeviceBlocks;
use crate::device::on_cpu_pool;
use crate::error::{Error, Result};

/// Hyper-parameters, all read from GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub arch: String,
    pub layers: usize,
    pub dim: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub context: usize,
    pub rms_eps: f64,
    pub rope_base: f64,
    /// Linear RoPE scaling factor (1 when absent).
    pub rope_scale: f64,
    /// llama.cpp's GGUF conversion permutes Llama's Q/K so that RoPE rotates adjacent
    /// pairs; Qwen2 keeps the "NeoX" halves.
    pub rope_interleaved: bool,
}

impl Config {
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.str("general.architecture")?.to_string();
        let rope_interleaved = match arch.as_str() {
            "llama" => true,
            "qwen2" => false,
            other => {
                return Err(Error::Unsupported(format!(
                    "model architecture {other:?} (llama and qwen2 are supported)"
                )));
            }
        };
        let key = |k: &str| format!("{arch}.{k}");
        let dim = g.usize(&key("embedding_length"))?;
        let heads = g.usize(&key("attention.head_count"))?;
        let kv_heads = g.usize(&key("attention.head_count_kv")).unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || dim % heads != 0 || heads % kv_heads != 0 {
            return Err(Error::model(
                g.path(),
                format!(
                    "inconsistent attention shape: dim {dim}, {heads} heads, {kv_heads} KV heads"
                ),
            ));
        }
        let vocab = g.tensor_info("token_embd.weight")?.shape()[0];
        let rope_scale = match g.get(&key("rope.scaling.type")).and_then(|v| v.as_str()) {
            None | Some("none") => 1.0,
            Some("linear") => g.f64(&key("rope.scaling.factor"))?,
            Some(other) => return Err(Error::Unsupported(format!("RoPE scaling {other:?}"))),
        };
        Ok(Self {
            layers: g.usize(&key("block_count"))?,
            dim,
            ffn: g.usize(&key("feed_forward_length"))?,
            heads,
            kv_heads,
            head_dim: dim / heads,
            vocab,
            context: g.usize(&key("context_length"))?,
            rms_eps: g.f64(&key("attention.layer_norm_rms_epsilon"))?,
            rope_base: g.f64(&key("rope.freq_base")).unwrap_or(10_000.0),
            rope_scale,
            rope_interleaved,
            arch,
        })
    }

    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }
}

/// How the weight matrices are kept.
///
/// Decoding one token reads every weight once, so its speed is set by memory bandwidth:
/// f16 halves both the bytes read per token and the memory the model takes, and the
/// GGUF's own blocks (`Q`) take 4.5 to 8.5 bits a value. Activations and norms stay
/// f32; the KV cache is f16 on the CPU unless the weights are f32 (see [`KvCache`]).
///
/// The default is the weights as stored, on both devices: a fraction of the bytes to
/// read and to hold (SmolLM2 Q4_1: 98 MB against 270 MB in f16), within the accuracy
/// bounds of core/tests/generator.rs. f16 and f32 remain choices (f32 is the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
    /// As stored in the GGUF file, read by pith's kernels: no dequantised copy. On the
    /// CPU they read the file's memory map; on wgpu the blocks are uploaded as they are
    /// and a CubeCL kernel dequantises them where it reads them.
    #[default]
    Q,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "q" => Ok(Self::Q),
            _ => Err(Error::InvalidArgument(format!(
                "precision {s:?} (use q, f16 or f32)"
            ))),
        }
    }
}

/// Rows from which a matmul against f16 weights widens the weights to f32 instead.
///
/// A few rows (decoding) are bound by reading the weights, where f16 is the win. Many
/// rows (prefill) are bound by arithmetic, which the CPU does in f32 only: there
/// widening the weights once per call is cheaper than an f16 GEMM (measured on flex,
/// 256 rows: f16 GEMM 1.55x the f32 time, widening then f32 1.28x) and keeps the
/// prompt's pass, which pruning reads, at f32 accuracy. On a GPU the widening is one
/// elementwise pass over the weights per prefill chunk.
const WIDEN_FROM_ROWS: usize = 32;

/// `x @ w` for f32 `x`, returned as f32, whatever float type `w` is kept in.
fn matmul_f32(x: Tensor<2>, w: &Tensor<2>) -> Tensor<2> {
    let dtype: FloatDType = w.dtype().into();
    if dtype == FloatDType::F32 {
        x.matmul(w.clone())
    } else if x.dims()[0] >= WIDEN_FROM_ROWS {
        x.matmul(w.clone().cast(FloatDType::F32))
    } else {
        x.cast(dtype).matmul(w.clone()).cast(FloatDType::F32)
    }
}

/// A matrix kept in its GGUF blocks, `[rows, cols]` as stored, in the mapped file and,
/// on the wgpu device, in a device buffer too.
struct Stored {
    gguf: Arc<Gguf>,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    bytes: Range<usize>,
    /// The same blocks on the wgpu device, where matmuls run on them.
    #[cfg(feature = "gpu")]
    on_device: Option<DeviceBlocks>,
}

impl Stored {
    /// The matrix `name`, its blocks also uploaded to `device` unless that is the CPU
    /// (or `None`: a table only ever read row by row, on the host).
    fn load(
        g: &Arc<Gguf>,
        name: &str,
        rows: usize,
        cols: usize,
        device: Option<&Device>,
    ) -> Result<Self> {
        let (_, ty, bytes) = g.locate(name)?;
        let stored = Self {
            gguf: g.clone(),
            ty,
            rows,
            cols,
            bytes,
            #[cfg(feature = "gpu")]
            on_device: None,
        };
        stored.matrix()?;
        #[cfg(feature = "gpu")]
        let stored = Self {
            on_device: match device.filter(|d| **d != Device::flex()) {
                Some(device) => {
                    let data = g.bytes(stored.bytes.clone());
                    Some(DeviceBlocks::upload(device, ty, rows, cols, data)?)
                }
                None => None,
            },
            ..stored
        };
        // Built without the GPU, the CPU is the only device and every matrix stays in
        // the mapped file.
        #[cfg(not(feature = "gpu"))]
        let _ = device;
        Ok(stored)
    }

    /// Whether the blocks are also on the wgpu device.
    fn uploaded(&self) -> bool {
        #[cfg(feature = "gpu")]
        return self.on_device.is_some();
        #[cfg(not(feature = "gpu"))]
        false
    }

    fn matrix(&self) -> Result<QMatrix<'_>> {
        QMatrix::new(
            self.ty,
            self.rows,
            self.cols,
            self.gguf.bytes(self.bytes.clone()),
        )
        .map_err(|e| Error::model(self.gguf.path(), e))
    }

    /// `x · Wᵀ` for `x` `[t, cols]`: `[t, rows]`. A backend extension: the kernels
    /// read the activations where the device keeps them and the result becomes a
    /// tensor there without a copy (flex: pith's CPU kernels; wgpu: its CubeCL kernel,
    /// core/src/model/wgpu_blocks.rs).
    fn matmul(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        #[cfg(feature = "gpu")]
        if let Some(blocks) = &self.on_device {
            return blocks.matmul(x);
        }
        let t = x.dims()[0];
        let x = on_flex(x)?;
        let y = self.matrix()?.matmul(flex_values(&x)?, t);
        Ok(from_flex(y, [t, self.rows]))
    }
}

/// A linear layer's weight. (A Burn tensor handle is some 600 bytes, hence the box.)
enum Weight {
    /// `[in, out]` on the device, transposed on load so a forward pass is one matmul.
    Dense(Box<Tensor<2>>),
    /// `[out, in]` as stored.
    Stored(Stored),
}

struct Linear {
    weight: Weight,
    bias: Option<Tensor<2>>,
}

impl Linear {
    fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let y = match &self.weight {
            Weight::Dense(w) => matmul_f32(x, w),
            Weight::Stored(w) => w.matmul(x)?,
        };
        Ok(match &self.bias {
            Some(b) => {
                let dims = y.dims();
                y + b.clone().expand(dims)
            }
            None => y,
        })
    }
}

/// The token embedding, and the output head when it has its own: `[vocab, dim]`.
enum Table {
    Dense(Box<Tensor<2>>),
    Stored(Stored),
}

impl Table {
    /// The rows of `ids`, as f32 `[ids, dim]`. A stored table is read row by row.
    fn rows(&self, ids: &[u32], device: &Device) -> Result<Tensor<2>> {
        let t = ids.len();
        match self {
            Self::Dense(table) => {
                let ids: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
                let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [t]), device);
                Ok(table.clone().select(0, ids).cast(FloatDType::F32))
            }
            Self::Stored(table) => {
                let matrix = table.matrix()?;
                let mut rows = Vec::with_capacity(t * table.cols);
                for &id in ids {
                    matrix.dequantize_row(id as usize, &mut rows);
                }
                Ok(Tensor::from_data(
                    TensorData::new(rows, [t, table.cols]),
                    device,
                ))
            }
        }
    }

    /// `table · x` for one f32 row `x` `[1, dim]`: a value per table row.
    fn scores(&self, x: Tensor<2>) -> Result<Vec<f32>> {
        match self {
            // `table @ xᵀ` keeps the [vocab, dim] matrix as stored: no transposed copy.
            Self::Dense(table) => {
                let dtype: FloatDType = table.dtype().into();
                read_vec(
                    table
                        .clone()
                        .matmul(x.transpose().cast(dtype))
                        .cast(FloatDType::F32),
                )
            }
            Self::Stored(table) if table.uploaded() => read_vec(table.matmul(x)?),
            Self::Stored(table) => Ok(table.matrix()?.matmul(&read_vec(x)?, 1)),
        }
    }
}

struct Block {
    attn_norm: Tensor<2>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Tensor<2>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The per-sequence KV cache, allocated once for `capacity` positions.
///
/// On the CPU it is kept in f16, as llama.cpp keeps it: decoding a token reads the
/// whole cache, which at long contexts costs as much as reading the weights, and the
/// fused attention kernel reads it in place. With f32 weights (the reference precision)
/// and on a GPU it is f32.
pub struct KvCache {
    /// Per layer, `[kv_heads, capacity, head_dim]`.
    keys: Vec<Tensor<3>>,
    values: Vec<Tensor<3>>,
    dtype: FloatDType,
    len: usize,
    capacity: usize,
    /// Positions dropped by [`Llama::keep_and_finish`]: slot `s` appended after it holds
    /// position `s + skipped`.
    skipped: usize,
}

impl KvCache {
    /// Slots filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The position of the next token: the slots filled plus any positions dropped.
    pub fn next_position(&self) -> usize {
        self.len + self.skipped
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets positions from `len` on (the next forward overwrites them).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// A copy of the first `len` slots of the lowest `layers` layers, sized to them
    /// rather than to the capacity.
    pub fn prefix(&self, len: usize, layers: usize) -> KvPrefix {
        let len = len.min(self.len);
        let cut = |t: &Tensor<3>| {
            let [h, _, d] = t.dims();
            let part = t.clone().narrow(1, 0, len);
            // Assigned into a tensor of its own: a narrowed view would keep the whole
            // capacity alive.
            Tensor::<3>::empty([h, len, d], (&t.device(), t.dtype()))
                .slice_assign([0..h, 0..len, 0..d], part)
        };
        KvPrefix {
            keys: self.keys[..layers].iter().map(cut).collect(),
            values: self.values[..layers].iter().map(cut).collect(),
            len,
        }
    }

    /// Empties the cache, then fills its first `len` slots (at most the prefix's) from
    /// `prefix`, in the prefix's layers only: a pass that stops after those layers
    /// carries on from there.
    pub fn resume(&mut self, prefix: &KvPrefix, len: usize) {
        let len = len.min(prefix.len);
        let pairs = self
            .keys
            .iter_mut()
            .zip(&prefix.keys)
            .chain(self.values.iter_mut().zip(&prefix.values));
        for (kv, part) in pairs {
            let [h, _, d] = kv.dims();
            let old = std::mem::replace(kv, Tensor::empty([0, 0, 0], &part.device()));
            *kv = old.slice_assign([0..h, 0..len, 0..d], part.clone().narrow(1, 0, len));
        }
        self.len = len;
        self.skipped = 0;
    }
}

/// The first slots of a cache's lowest layers ([`KvCache::prefix`]).
#[derive(Clone)]
pub struct KvPrefix {
    keys: Vec<Tensor<3>>,
    values: Vec<Tensor<3>>,
    len: usize,
}

impl KvPrefix {
    pub fn layers(&self) -> usize {
        self.keys.len()
    }
}

/// Which attention to read out during a forward pass: from the query rows at
/// `queries` (cache slots) in the given layers, onto every cached slot.
#[derive(Debug, Clone)]
pub struct Capture {
    pub queries: Range<usize>,
    pub layers: Vec<usize>,
}

/// Attention weights read out for one layer: `[heads][query][key]`, flattened.
#[derive(Debug, Clone)]
pub struct LayerAttention {
    pub layer: usize,
    pub heads: usize,
    pub queries: usize,
    pub keys: usize,
    pub weights: Vec<f32>,
}

impl LayerAttention {
    pub fn at(&self, head: usize, query: usize, key: usize) -> f32 {
        self.weights[(head * self.queries + query) * self.keys + key]
    }
}

/// The attention probabilities a capture asked for in one layer, still on the device:
/// `[heads, rows, keys]` per chunk of the pass (a later chunk's rows see more keys).
/// Reading them back waits for the device, so a caller that reads one row per decode
/// step can reduce them there first and read once at the end.
#[derive(Debug, Clone)]
pub struct Captured {
    pub layer: usize,
    pub parts: Vec<Tensor<3>>,
}

impl Captured {
    /// The probabilities on the CPU, earlier chunks' rows padded with zeros (causal).
    pub fn read(self) -> Result<LayerAttention> {
        let keys = self.parts.iter().map(|p| p.dims()[2]).max().unwrap_or(0);
        let heads = self.parts.first().map_or(0, |p| p.dims()[0]);
        let mut rows: Vec<Vec<f32>> = vec![vec![]; heads];
        let mut queries = 0;
        for part in self.parts {
            let [_, q, k] = part.dims();
            let data = read_vec(part)?;
            for (h, row) in rows.iter_mut().enumerate() {
                for r in 0..q {
                    let at = (h * q + r) * k;
                    row.extend_from_slice(&data[at..at + k]);
                    row.extend(std::iter::repeat_n(0.0, keys - k));
                }
            }
            queries += q;
        }
        Ok(LayerAttention {
            layer: self.layer,
            heads,
            queries,
            keys,
            weights: rows.concat(),
        })
    }
}

/// Reads back every layer of a pass's capture.
pub fn read_captured(captured: Vec<Captured>) -> Result<Vec<LayerAttention>> {
    captured.into_iter().map(Captured::read).collect()
}

/// What a forward pass gives back.
pub struct Pass {
    /// Logits of the last token; `None` when `stop_after` cut the pass short.
    pub logits: Option<Vec<f32>>,
    /// The attention asked for by the capture, per layer.
    pub captured: Vec<Captured>,
    /// For a pass cut short, the hidden states `[tokens, dim]` after its last layer,
    /// from which [`Llama::keep_and_finish`] runs the remaining layers.
    pub hidden: Option<Tensor<2>>,
}

/// What the rows of one chunk need besides their hidden states: RoPE tables for their
/// positions and the causal mask over the cache slots they see.
struct Rows {
    cos: Tensor<2>,
    sin: Tensor<2>,
    mask: Tensor<2>,
}

/// The decoder's weights on a device.
pub struct Llama {
    pub config: Config,
    pub precision: Precision,
    device: Device,
    embed: Table,
    /// `None` when the output head is tied to the embedding.
    output: Option<Table>,
    norm: Tensor<2>,
    blocks: Vec<Block>,
    /// `[context, head_dim / 2]`.
    cos: Tensor<2>,
    sin: Tensor<2>,
}

/// Rows below which attention over an f16 cache runs in pith's fused kernel (decoding)
/// rather than as Burn's batched matmuls, which want many query rows to be efficient.
const FUSED_ATTENTION_BELOW: usize = 8;

/// Rows of positions processed per forward call; bounds the score matrix of prefill.
pub const PREFILL_CHUNK: usize = 256;

impl Llama {
    /// Loads the decoder. Weights kept as stored ([`Precision::Q`]) stay in `g`'s map,
    /// which the model then holds; on wgpu their blocks are also uploaded as they are.
    pub fn load(g: &Arc<Gguf>, device: &Device, precision: Precision) -> Result<Self> {
        let config = Config::from_gguf(g)?;
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            check_shape(g, name, shape)?;
            Ok(g.dequantize(name)?.0)
        };
        let on_device = |v: Vec<f32>, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(v, shape), device)
        };
        // Narrowed on the host, so the f32 copy never reaches the device.
        let dense = |v: Vec<f32>, shape: [usize; 2]| match precision {
            Precision::F16 => {
                let v: Vec<f16> = v.into_iter().map(f16::from_f32).collect();
                Tensor::<2>::from_data(TensorData::new(v, shape), (device, DType::F16))
            }
            Precision::F32 | Precision::Q => on_device(v, shape),
        };
        // `scores`: whether the table is also the output head, multiplied on the device.
        let table = |name: &str, scores: bool| -> Result<Table> {
            if precision == Precision::Q {
                check_shape(g, name, &[config.vocab, config.dim])?;
                return Ok(Table::Stored(Stored::load(
                    g,
                    name,
                    config.vocab,
                    config.dim,
                    scores.then_some(device),
                )?));
            }
            let v = tensor(name, &[config.vocab, config.dim])?;
            Ok(Table::Dense(Box::new(dense(v, [config.vocab, config.dim]))))
        };
        let norm = |name: &str| -> Result<Tensor<2>> {
            let v = tensor(name, &[config.dim])?;
            Ok(on_device(v, [1, config.dim]))
        };
        let linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
            let weight_name = format!("{name}.weight");
            let weight = if precision == Precision::Q {
                check_shape(g, &weight_name, &[out, inp])?;
                Weight::Stored(Stored::load(g, &weight_name, out, inp, Some(device))?)
            } else {
                let v = tensor(&weight_name, &[out, inp])?;
                Weight::Dense(Box::new(dense(transpose(&v, out, inp), [inp, out])))
            };
            let bias_name = format!("{name}.bias");
            let bias = if g.has_tensor(&bias_name) {
                let b = tensor(&bias_name, &[out])?;
                Some(on_device(b, [1, out]))
            } else {
                None
            };
            Ok(Linear { weight, bias })
        };
        let (d, kv) = (config.dim, config.kv_heads * config.head_dim);
        let blocks = (0..config.layers)
            .map(|i| {
                let p = format!("blk.{i}");
                Ok(Block {
                    attn_norm: norm(&format!("{p}.attn_norm.weight"))?,
                    q: linear(&format!("{p}.attn_q"), d, d)?,
                    k: linear(&format!("{p}.attn_k"), kv, d)?,
                    v: linear(&format!("{p}.attn_v"), kv, d)?,
                    o: linear(&format!("{p}.attn_output"), d, d)?,
                    ffn_norm: norm(&format!("{p}.ffn_norm.weight"))?,
                    gate: linear(&format!("{p}.ffn_gate"), config.ffn, d)?,
                    up: linear(&format!("{p}.ffn_up"), config.ffn, d)?,
                    down: linear(&format!("{p}.ffn_down"), d, config.ffn)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = if g.has_tensor("output.weight") {
            Some(table("output.weight", true)?)
        } else {
            None
        };
        let (cos, sin) = rope_tables(&config, device);
        Ok(Self {
            embed: table("token_embd.weight", output.is_none())?,
            output,
            norm: norm("output_norm.weight")?,
            blocks,
            cos,
            sin,
            device: device.clone(),
            config,
            precision,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A cache for up to `capacity` positions (at most the model's context).
    pub fn new_cache(&self, capacity: usize) -> KvCache {
        let capacity = capacity.min(self.config.context).max(1);
        let shape = [self.config.kv_heads, capacity, self.config.head_dim];
        let dtype = if self.device == Device::flex() && self.precision != Precision::F32 {
            FloatDType::F16
        } else {
            FloatDType::F32
        };
        let zeros = || Tensor::<3>::zeros(shape, (&self.device, DType::from(dtype)));
        KvCache {
            keys: (0..self.config.layers).map(|_| zeros()).collect(),
            values: (0..self.config.layers).map(|_| zeros()).collect(),
            dtype,
            len: 0,
            capacity,
            skipped: 0,
        }
    }

    /// Runs `tokens` through the model after what `cache` holds, in chunks.
    ///
    /// `stop_after` runs only the first layers: enough for an attention read-out,
    /// leaving the cache valid for those layers only.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        capture: Option<&Capture>,
        stop_after: Option<usize>,
    ) -> Result<Pass> {
        on_cpu_pool(&self.device, || {
            self.forward_here(tokens, cache, capture, stop_after)
        })
    }

    fn forward_here(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        capture: Option<&Capture>,
        stop_after: Option<usize>,
    ) -> Result<Pass> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("no tokens to run".into()));
        }
        let needed = cache.next_position() + tokens.len();
        if needed > cache.capacity {
            return Err(Error::ContextOverflow {
                needed,
                limit: cache.capacity,
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.config.vocab) {
            return Err(Error::InvalidArgument(format!(
                "token id {bad} is outside the vocabulary"
            )));
        }
        let layers = stop_after
            .unwrap_or(self.config.layers)
            .min(self.config.layers);
        let mut captured: Vec<Captured> = vec![];
        let mut outputs = vec![];
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            let (start, t) = (cache.len, chunk.len());
            let x = self.embed.rows(chunk, &self.device)?;
            let position = cache.next_position();
            let rope = (
                self.cos.clone().narrow(0, position, t),
                self.sin.clone().narrow(0, position, t),
            );
            // Rows of this chunk whose attention is read out.
            let read = capture.and_then(|c| {
                let lo = c.queries.start.max(start);
                let hi = c.queries.end.min(start + t);
                (lo < hi).then(|| (&c.layers[..], (lo - start)..(hi - start)))
            });
            let x = self.run_layers(x, 0..layers, cache, &rope, read, &mut captured)?;
            cache.len += t;
            outputs.push(x);
        }
        let last = outputs.pop().expect("at least one chunk ran");
        Ok(match stop_after {
            None => Pass {
                logits: Some(self.logits(last)?),
                captured,
                hidden: None,
            },
            Some(_) => {
                outputs.push(last);
                Pass {
                    logits: None,
                    captured,
                    hidden: Some(Tensor::cat(outputs, 0)),
                }
            }
        })
    }

    /// Keeps only the cache slots `keep` (ascending) and finishes a pass that ran the
    /// first `depth` layers (`stop_after` in [`Llama::forward`]) over every slot:
    /// `hidden` holds that pass's states for all slots in order. The layers from `depth`
    /// on run over the kept rows alone, at their original positions, so there the kept
    /// tokens never see the dropped ones. Returns the logits of the last kept slot;
    /// tokens appended later take the positions after it.
    ///
    /// This is how a pruned prompt is answered without a second prefill: the scoring
    /// pass already holds the lower layers of every kept token.
    pub fn keep_and_finish(
        &self,
        cache: &mut KvCache,
        hidden: Tensor<2>,
        keep: &[usize],
        depth: usize,
    ) -> Result<Vec<f32>> {
        on_cpu_pool(&self.device, || {
            self.keep_and_finish_here(cache, hidden, keep, depth)
        })
    }

    fn keep_and_finish_here(
        &self,
        cache: &mut KvCache,
        hidden: Tensor<2>,
        keep: &[usize],
        depth: usize,
    ) -> Result<Vec<f32>> {
        let ascending = keep.windows(2).all(|w| w[0] < w[1]);
        let Some(&last) = keep.last().filter(|&&l| ascending && l < cache.len) else {
            return Err(Error::InvalidArgument(format!(
                "slots to keep must be ascending and below {}",
                cache.len
            )));
        };
        if hidden.dims()[0] != cache.len || depth > self.config.layers || cache.skipped != 0 {
            return Err(Error::InvalidArgument(
                "keep_and_finish needs the states of one cut-short pass over the whole cache"
                    .into(),
            ));
        }
        let n = keep.len();
        let ids: Vec<i32> = keep.iter().map(|&s| s as i32).collect();
        let slots = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &self.device);
        let [kvh, _, hd] = cache.keys[0].dims();
        for layer in 0..depth {
            for kv in [&mut cache.keys[layer], &mut cache.values[layer]] {
                let kept = kv.clone().select(1, slots.clone());
                let old = std::mem::replace(kv, Tensor::empty([0, 0, 0], &self.device));
                *kv = old.slice_assign([0..kvh, 0..n, 0..hd], kept);
            }
        }
        let x = hidden.select(0, slots.clone());
        let dim = self.config.dim;
        let mut out = None;
        for lo in (0..n).step_by(PREFILL_CHUNK) {
            let hi = (lo + PREFILL_CHUNK).min(n);
            cache.len = lo;
            let positions = slots.clone().narrow(0, lo, hi - lo);
            let rope = (
                self.cos.clone().select(0, positions.clone()),
                self.sin.clone().select(0, positions),
            );
            let rows = x.clone().slice([lo..hi, 0..dim]);
            out = Some(self.run_layers(
                rows,
                depth..self.config.layers,
                cache,
                &rope,
                None,
                &mut vec![],
            )?);
        }
        cache.len = n;
        cache.skipped = last + 1 - n;
        self.logits(out.expect("at least one slot kept"))
    }

    /// Runs `layers` over the rows `x` that take the cache slots from `cache.len` on,
    /// with RoPE tables `rope` (cos, sin) for their positions; `read` names the layers
    /// and rows whose attention goes into `captured`.
    fn run_layers(
        &self,
        mut x: Tensor<2>,
        layers: Range<usize>,
        cache: &mut KvCache,
        rope: &(Tensor<2>, Tensor<2>),
        read: Option<(&[usize], Range<usize>)>,
        captured: &mut Vec<Captured>,
    ) -> Result<Tensor<2>> {
        let (start, t) = (cache.len, x.dims()[0]);
        let rows = Rows {
            cos: rope.0.clone(),
            sin: rope.1.clone(),
            mask: causal_mask(start, t, &self.device),
        };
        for i in layers {
            let block = &self.blocks[i];
            let want = read
                .as_ref()
                .filter(|(l, _)| l.contains(&i))
                .map(|(_, rows)| rows.clone());
            let (h, probs) = self.attention(block, x.clone(), i, cache, &rows, want)?;
            if let Some(p) = probs {
                match captured.iter_mut().find(|c| c.layer == i) {
                    Some(c) => c.parts.push(p),
                    None => captured.push(Captured {
                        layer: i,
                        parts: vec![p],
                    }),
                }
            }
            x = x + h;
            let n = rms_norm(x.clone(), &block.ffn_norm, self.config.rms_eps);
            let ff = block
                .down
                .forward(silu(block.gate.forward(n.clone())?) * block.up.forward(n)?)?;
            x = x + ff;
        }
        Ok(x)
    }

    /// One attention sub-layer over rows that take the cache slots from `cache.len`
    /// on. Returns its output and, when `want` names rows of this chunk, their
    /// attention probabilities `[heads, rows, keys]`.
    fn attention(
        &self,
        block: &Block,
        x: Tensor<2>,
        layer: usize,
        cache: &mut KvCache,
        rows: &Rows,
        want: Option<Range<usize>>,
    ) -> Result<(Tensor<2>, Option<Tensor<3>>)> {
        let Rows { cos, sin, mask } = rows;
        let c = &self.config;
        let (t, hd, kvh, group) = (x.dims()[0], c.head_dim, c.kv_heads, c.group());
        let start = cache.len;
        let n = rms_norm(x, &block.attn_norm, c.rms_eps);
        let q = self.rope(
            block.q.forward(n.clone())?.reshape([t, c.heads, hd]),
            cos,
            sin,
        );
        let k = self.rope(block.k.forward(n.clone())?.reshape([t, kvh, hd]), cos, sin);
        let v = block.v.forward(n)?.reshape([t, kvh, hd]);

        let end = start + t;
        let slots = [0..kvh, start..end, 0..hd];
        for (kv, new) in [(&mut cache.keys[layer], k), (&mut cache.values[layer], v)] {
            let old = std::mem::replace(kv, Tensor::empty([0, 0, 0], &self.device));
            *kv = old.slice_assign(slots.clone(), cast(new.swap_dims(0, 1), cache.dtype)?);
        }
        if t < FUSED_ATTENTION_BELOW && cache.dtype == FloatDType::F16 {
            let (out, read) =
                self.fused_attention(q, &cache.keys[layer], &cache.values[layer], start, want)?;
            return Ok((block.o.forward(out)?, read));
        }
        let widen =
            |kv: &Tensor<3>| cast(kv.clone().slice([0..kvh, 0..end, 0..hd]), FloatDType::F32);
        let (k_all, v_all) = (widen(&cache.keys[layer])?, widen(&cache.values[layer])?);
        if want.is_none() && self.device == Device::flex() {
            let out = burn::tensor::module::attention(
                q.swap_dims(0, 1).unsqueeze(),
                k_all.unsqueeze(),
                v_all.unsqueeze(),
                None,
                None,
                AttentionModuleOptions {
                    scale: None,
                    softcap: None,
                    is_causal: true,
                },
            );
            let out = out
                .reshape([c.heads, t, hd])
                .swap_dims(0, 1)
                .reshape([t, c.dim]);
            return Ok((block.o.forward(out)?, None));
        }

        // Query head h reads KV head h / group: fold each group's queries into rows
        // so one batched matmul per KV head serves the whole group.
        let q = q
            .reshape([t, kvh, group, hd])
            .permute([1, 2, 0, 3])
            .reshape([kvh, group * t, hd]);
        let scores = q.matmul(k_all.transpose()).div_scalar((hd as f64).sqrt());
        let scores = scores.reshape([kvh, group, t, end])
            + mask
                .clone()
                .reshape([1, 1, t, end])
                .expand([kvh, group, t, end]);
        let probs = softmax(scores, 3);
        let read = want.map(|r| {
            probs
                .clone()
                .slice([0..kvh, 0..group, r.clone(), 0..end])
                .reshape([c.heads, r.len(), end])
        });
        let out = probs
            .reshape([kvh, group * t, end])
            .matmul(v_all)
            .reshape([kvh, group, t, hd])
            .permute([2, 0, 1, 3])
            .reshape([t, c.dim]);
        Ok((block.o.forward(out)?, read))
    }

    /// Attention of the rows `q` `[t, heads, head_dim]`, at the cache slots from `start`
    /// on, over an f16 cache on the flex device, by pith's kernel: `[t, dim]`, and the
    /// probabilities `[heads, rows, keys]` of the rows `want`.
    fn fused_attention(
        &self,
        q: Tensor<3>,
        keys: &Tensor<3>,
        values: &Tensor<3>,
        start: usize,
        want: Option<Range<usize>>,
    ) -> Result<(Tensor<2>, Option<Tensor<3>>)> {
        let c = &self.config;
        let t = q.dims()[0];
        let capacity = keys.dims()[1];
        let (q, keys, values) = (
            on_flex(q)?,
            on_flex(keys.clone())?,
            on_flex(values.clone())?,
        );
        let shape = Heads {
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.head_dim,
        };
        let cache = Cache {
            keys: flex_values(&keys)?,
            values: flex_values(&values)?,
            capacity,
        };
        let q = flex_values(&q)?;
        let Some(rows) = want else {
            let out = attention::attend(Isa::best(), shape, q, t, cache, start);
            return Ok((from_flex(out, [t, c.dim]), None));
        };
        let (out, probs) = attention::attend_reading(Isa::best(), shape, q, t, cache, start);
        let seen = start + t;
        let probs = from_flex(probs, [c.heads, t, seen]).slice([0..c.heads, rows, 0..seen]);
        Ok((from_flex(out, [t, c.dim]), Some(probs)))
    }

    /// Rotary position embedding of `x` `[t, heads, head_dim]`.
    fn rope(&self, x: Tensor<3>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<3> {
        let [t, h, d] = x.dims();
        let half = d / 2;
        let cos = cos.clone().reshape([t, 1, half]).expand([t, h, half]);
        let sin = sin.clone().reshape([t, 1, half]).expand([t, h, half]);
        if self.config.rope_interleaved {
            let pairs = x.reshape([t, h, half, 2]);
            let a = pairs
                .clone()
                .slice([0..t, 0..h, 0..half, 0..1])
                .reshape([t, h, half]);
            let b = pairs
                .slice([0..t, 0..h, 0..half, 1..2])
                .reshape([t, h, half]);
            let ra = a.clone() * cos.clone() - b.clone() * sin.clone();
            let rb = a * sin + b * cos;
            Tensor::stack::<4>(vec![ra, rb], 3).reshape([t, h, d])
        } else {
            let a = x.clone().slice([0..t, 0..h, 0..half]);
            let b = x.slice([0..t, 0..h, half..d]);
            let ra = a.clone() * cos.clone() - b.clone() * sin.clone();
            let rb = a * sin + b * cos;
            Tensor::cat(vec![ra, rb], 2)
        }
    }

    /// Logits of the last row of `x`.
    fn logits(&self, x: Tensor<2>) -> Result<Vec<f32>> {
        let t = x.dims()[0];
        let last = rms_norm(x.narrow(0, t - 1, 1), &self.norm, self.config.rms_eps);
        self.output.as_ref().unwrap_or(&self.embed).scores(last)
    }
}

/// Fails with a clear error when a stored tensor has another shape than the model's.
fn check_shape(g: &Gguf, name: &str, want: &[usize]) -> Result<()> {
    let shape = g.tensor_info(name)?.shape();
    if shape != want {
        return Err(Error::model(
            g.path(),
            format!("tensor {name} has shape {shape:?}, expected {want:?}"),
        ));
    }
    Ok(())
}

pub(crate) fn read_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("reading back a tensor failed: {e:?}")))
}

fn rms_norm(x: Tensor<2>, weight: &Tensor<2>, eps: f64) -> Tensor<2> {
    let dims = x.dims();
    let rms = (x.clone().powf_scalar(2.0).mean_dim(1) + eps).sqrt();
    x / rms.expand(dims) * weight.clone().expand(dims)
}

/// 0 where row `i` (position `start + i`) may attend, -inf after it.
fn causal_mask(start: usize, t: usize, device: &Device) -> Tensor<2> {
    let end = start + t;
    let mut m = vec![0f32; t * end];
    for i in 0..t {
        for j in start + i + 1..end {
            m[i * end + j] = f32::NEG_INFINITY;
        }
    }
    Tensor::from_data(TensorData::new(m, [t, end]), device)
}

fn rope_tables(c: &Config, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let half = c.head_dim / 2;
    let mut cos = Vec::with_capacity(c.context * half);
    let mut sin = Vec::with_capacity(c.context * half);
    for pos in 0..c.context {
        for i in 0..half {
            let freq = c.rope_base.powf(-2.0 * i as f64 / c.head_dim as f64);
            let angle = pos as f64 / c.rope_scale * freq;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (
        Tensor::from_data(TensorData::new(cos, [c.context, half]), device),
        Tensor::from_data(TensorData::new(sin, [c.context, half]), device),
    )
}

/// `[rows, cols]` row-major to `[cols, rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}
