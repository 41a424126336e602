//! The sentence embedder: a BERT encoder (all-MiniLM-L6-v2) with mean pooling and
//! L2 normalisation, as sentence-transformers computes it.

use std::path::Path;

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use tokenizers::{Tokenizer, TruncationParams};

use super::flex::{add_layer_norm, gelu, linear, self_attention};
use super::safetensors::SafetensorsFile;
use super::tokenizer;
use crate::device::on_cpu_pool;
use crate::error::{Error, Result};

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2.
pub const MAX_TOKENS: usize = 256;
/// The most passages one forward pass takes.
const BATCH: usize = 32;
/// How many padding positions a batch may carry, as a share of its real tokens: a
/// passage joins a batch of shorter ones only while padding them all to its length
/// stays within this.
const PADDING_SLACK: f64 = 0.1;

struct Linear {
    /// Stored transposed, `[in, out]`, so the forward pass is one matmul.
    weight_t: Tensor<2>,
    bias: Tensor<1>,
}

impl Linear {
    fn forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        let [b, t, h] = x.dims();
        let out = self.bias.dims()[0];
        // One [b·t, in] × [in, out] matmul: a batch of b small products with the
        // weight broadcast to each runs several times slower on the CPU device.
        let x = x.reshape([b * t, h]);
        let y = if x.device() == Device::flex() {
            linear(x, &self.weight_t, &self.bias)?
        } else {
            x.matmul(self.weight_t.clone())
                + self.bias.clone().reshape([1, out]).expand([b * t, out])
        };
        Ok(y.reshape([b, t, out]))
    }
}

struct LayerNorm {
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    /// `LayerNorm(x + residual)`: BERT normalises each block's output with its input
    /// added.
    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Result<Tensor<3>> {
        if x.device() == Device::flex() {
            return add_layer_norm(x, residual, &self.weight, &self.bias, self.eps);
        }
        let x = x + residual;
        let [b, t, h] = x.dims();
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().powf_scalar(2.0).mean_dim(2);
        let normed = centered / (var + self.eps).sqrt();
        Ok(
            normed * self.weight.clone().reshape([1, 1, h]).expand([b, t, h])
                + self.bias.clone().reshape([1, 1, h]).expand([b, t, h]),
        )
    }
}

/// Which positions of a batch are padding, as each device's attention takes it.
enum Padding {
    /// pith's kernel on the CPU device: the real tokens of each passage.
    Lengths(Vec<usize>),
    /// Burn's attention elsewhere: `[b, 1, t, t]`, `true` at keys that are padding.
    Mask(Box<Tensor<4, Bool>>),
}

struct Layer {
    /// Query, key and value in one `[h, 3h]` product: one matrix product the width of
    /// three keeps the GEMM's kernels busier than three narrow ones.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    up: Linear,
    down: Linear,
    out_norm: LayerNorm,
}

/// The MiniLM sentence embedder.
pub struct Embedder {
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation or padding, for sizing passages.
    counter: Tokenizer,
    device: Device,
    word: Tensor<2>,
    position: Tensor<2>,
    token_type: Tensor<1>,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    dim: usize,
    name: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Config {
    hidden_size: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    layer_norm_eps: f64,
    #[serde(default)]
    model_type: String,
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| Error::model(&config_path, format!("bad config.json: {e}")))?;
        if config.model_type != "bert" {
            return Err(Error::Unsupported(format!(
                "embedder architecture {:?} (only BERT is supported)",
                config.model_type
            )));
        }
        let heads = config.num_attention_heads;
        if heads == 0 || !config.hidden_size.is_multiple_of(heads) {
            return Err(Error::model(
                &config_path,
                format!(
                    "{heads} heads do not divide a hidden size of {}",
                    config.hidden_size
                ),
            ));
        }
        let mut counter = tokenizer::from_json_file(&dir.join("tokenizer.json"))?;
        counter
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        counter.with_padding(None);
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;

        let file = SafetensorsFile::open(&dir.join("model.safetensors"))?;
        let load = |name: &str| -> Result<(Vec<f32>, Vec<usize>)> { file.f32(name) };
        let t1 = |name: &str| -> Result<Tensor<1>> {
            let (v, shape) = load(name)?;
            Ok(Tensor::from_data(
                TensorData::new(v, [shape.iter().product::<usize>()]),
                device,
            ))
        };
        let t2 = |name: &str| -> Result<Tensor<2>> {
            let (v, shape) = load(name)?;
            if shape.len() != 2 {
                return Err(Error::model(
                    dir,
                    format!("tensor {name} has shape {shape:?}, not 2-d"),
                ));
            }
            Ok(Tensor::from_data(
                TensorData::new(v, [shape[0], shape[1]]),
                device,
            ))
        };
        // Weights `[out, in]` of one or more layers side by side, stored transposed and
        // contiguous: a GEMM reads a transposed view's columns strided, up to 1.7x
        // slower (1536x384 at 160 rows).
        let linear = |prefixes: &[String]| -> Result<Linear> {
            let (mut weight, mut bias, mut outs, mut ins) = (vec![], vec![], 0, 0);
            for prefix in prefixes {
                let (w, shape) = load(&format!("{prefix}.weight"))?;
                let (b, _) = load(&format!("{prefix}.bias"))?;
                let fits = shape.len() == 2 && (ins == 0 || shape[1] == ins) && b.len() == shape[0];
                if !fits {
                    return Err(Error::model(
                        dir,
                        format!(
                            "{prefix}: a weight of shape {shape:?} and {} biases are not a linear layer{}",
                            b.len(),
                            if ins == 0 {
                                String::new()
                            } else {
                                format!(" of {ins} inputs")
                            }
                        ),
                    ));
                }
                ins = shape[1];
                outs += shape[0];
                weight.extend(w);
                bias.extend(b);
            }
            let mut weight_t = vec![0f32; weight.len()];
            for (o, row) in weight.chunks_exact(ins.max(1)).enumerate() {
                for (i, &w) in row.iter().enumerate() {
                    weight_t[i * outs + o] = w;
                }
            }
            Ok(Linear {
                weight_t: Tensor::from_data(TensorData::new(weight_t, [ins, outs]), device),
                bias: Tensor::from_data(TensorData::new(bias, [outs]), device),
            })
        };
        let norm = |prefix: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: t1(&format!("{prefix}.weight"))?,
                bias: t1(&format!("{prefix}.bias"))?,
                eps: config.layer_norm_eps,
            })
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(Layer {
                    qkv: linear(
                        &["query", "key", "value"].map(|m| format!("{p}.attention.self.{m}")),
                    )?,
                    attn_out: linear(&[format!("{p}.attention.output.dense")])?,
                    attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    up: linear(&[format!("{p}.intermediate.dense")])?,
                    down: linear(&[format!("{p}.output.dense")])?,
                    out_norm: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let token_type = t2("embeddings.token_type_embeddings.weight")?
            .narrow(0, 0, 1)
            .reshape([config.hidden_size]);
        Ok(Self {
            tokenizer,
            counter,
            device: device.clone(),
            word: t2("embeddings.word_embeddings.weight")?,
            position: t2("embeddings.position_embeddings.weight")?,
            token_type,
            embed_norm: norm("embeddings.LayerNorm")?,
            layers,
            heads: config.num_attention_heads,
            dim: config.hidden_size,
            name: format!(
                "{}#bert-{}x{}",
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("embedder"),
                config.num_hidden_layers,
                config.hidden_size
            ),
        })
    }

    /// The name recorded in databases built with this embedder.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Byte end offsets of every token of `text` (no special tokens, no truncation),
    /// for sizing passages.
    pub fn token_ends(&self, text: &str) -> Vec<usize> {
        match self.counter.encode(text, false) {
            Ok(enc) => enc
                .get_offsets()
                .iter()
                .map(|&(_, e)| e)
                .filter(|&e| e > 0)
                .collect(),
            Err(_) => vec![text.len()],
        }
    }

    /// Embeds texts: unit-length vectors of `dim()` floats, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tokens = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<&[u32]> = tokens.iter().map(Vec::as_slice).collect();
        self.embed_tokens(&rows)
    }

    /// The token ids `embed` runs on for `text`: special tokens added, truncated to
    /// [`MAX_TOKENS`]. Tokenising is apart from embedding so ingest can do it on
    /// another thread while the model runs.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Embeds rows of token ids from [`Embedder::encode`], in input order.
    pub fn embed_tokens(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        on_cpu_pool(&self.device, || {
            let mut out = vec![Vec::new(); rows.len()];
            for batch in batches(rows) {
                let group: Vec<&[u32]> = batch.iter().map(|&i| rows[i]).collect();
                for (&i, v) in batch.iter().zip(self.embed_batch(&group)?) {
                    out[i] = v;
                }
            }
            Ok(out)
        })
    }

    /// Token rows, padded to the longest: a vector each.
    fn embed_batch(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let b = rows.len();
        let lens: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let t = lens.iter().copied().max().unwrap_or(0).max(1);
        let mut ids = vec![0i32; b * t];
        let mut mask = vec![0f32; b * t];
        for (row, tokens) in rows.iter().enumerate() {
            for (j, &id) in tokens.iter().enumerate() {
                ids[row * t + j] = id as i32;
                mask[row * t + j] = 1.0;
            }
        }
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [b * t]), &self.device);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, t]), &self.device);
        let padding = if self.device == Device::flex() {
            Padding::Lengths(lens)
        } else {
            Padding::Mask(Box::new(
                mask.clone()
                    .equal_elem(0.0)
                    .reshape([b, 1, 1, t])
                    .expand([b, 1, t, t]),
            ))
        };
        let pooled = self.forward(ids, mask, &padding, b, t)?;
        let values: Vec<f32> = pooled
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Device(format!("{e:?}")))?;
        Ok(values.chunks_exact(self.dim).map(<[f32]>::to_vec).collect())
    }

    fn forward(
        &self,
        ids: Tensor<1, Int>,
        mask: Tensor<2>,
        padding: &Padding,
        b: usize,
        t: usize,
    ) -> Result<Tensor<2>> {
        let h = self.dim;
        let x = self.word.clone().select(0, ids).reshape([b, t, h])
            + self
                .position
                .clone()
                .narrow(0, 0, t)
                .unsqueeze::<3>()
                .expand([b, t, h]);
        let token_type = self.token_type.clone().reshape([1, 1, h]).expand([b, t, h]);
        let mut x = self.embed_norm.forward(x, token_type)?;
        for layer in &self.layers {
            x = self.layer(layer, x, padding)?;
        }
        let m = mask.reshape([b, t, 1]);
        let summed = (x * m.clone().expand([b, t, h])).sum_dim(1).reshape([b, h]);
        let counts = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
        let mean = summed / counts.expand([b, h]);
        let norm = mean
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        Ok(mean / norm.expand([b, h]))
    }

    fn layer(&self, l: &Layer, x: Tensor<3>, padding: &Padding) -> Result<Tensor<3>> {
        let ctx = self.attention(l.qkv.forward(x.clone())?, padding)?;
        let x = l.attn_norm.forward(l.attn_out.forward(ctx)?, x)?;
        let ff = l.down.forward(gelu(l.up.forward(x.clone())?)?)?;
        l.out_norm.forward(ff, x)
    }

    /// Each token's attention over the real tokens of its passage, `[b, t, h]`, from the
    /// fused `[b, t, 3h]` queries, keys and values.
    fn attention(&self, qkv: Tensor<3>, padding: &Padding) -> Result<Tensor<3>> {
        let [b, t, width] = qkv.dims();
        let (h, n) = (width / 3, self.heads);
        let mask = match padding {
            Padding::Lengths(lens) => return self_attention(qkv, lens, n),
            Padding::Mask(mask) => (**mask).clone(),
        };
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * h, h)
                .reshape([b, t, n, h / n])
                .swap_dims(1, 2)
        };
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        Ok(
            attention(split(0), split(1), split(2), Some(mask), None, options)
                .swap_dims(1, 2)
                .reshape([b, t, h]),
        )
    }
}

/// Indices of `rows` grouped into forward passes: by length, each pass at most [`BATCH`]
/// rows whose padding to the longest stays within [`PADDING_SLACK`] of their tokens.
/// (Padding a pass to its longest row costs linear layers in proportion and attention
/// quadratically: one pass of 32 random passages spent about half its time on padding.)
fn batches(rows: &[&[u32]]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].len());
    let mut out: Vec<Vec<usize>> = vec![];
    let mut tokens = 0;
    for i in order {
        let len = rows[i].len();
        let fits = out.last().is_some_and(|batch| {
            let padded = (batch.len() + 1) * len;
            batch.len() < BATCH && padded as f64 <= (1.0 + PADDING_SLACK) * (tokens + len) as f64
        });
        if fits {
            out.last_mut().expect("checked").push(i);
            tokens += len;
        } else {
            out.push(vec![i]);
            tokens = len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_similar_lengths_and_keep_every_row() {
        let rows: Vec<Vec<u32>> = [20, 200, 21, 20, 190, 256, 20, 100]
            .iter()
            .chain(&[50; 40])
            .map(|&n| vec![1; n])
            .collect();
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let groups = batches(&refs);
        let mut seen: Vec<usize> = groups.concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..rows.len()).collect::<Vec<_>>());
        for g in &groups {
            let longest = g.iter().map(|&i| rows[i].len()).max().unwrap();
            let tokens: usize = g.iter().map(|&i| rows[i].len()).sum();
            assert!(g.len() <= BATCH, "{g:?}");
            assert!(
                (g.len() * longest) as f64 <= (1.0 + PADDING_SLACK) * tokens as f64,
                "{g:?}"
            );
        }
        // The forty equal rows fill one pass and part of another; the short ones share one.
        assert_eq!(groups.iter().filter(|g| rows[g[0]].len() == 50).count(), 2);
        assert!(
            groups
                .iter()
                .any(|g| g.len() == 4 && g.iter().all(|&i| rows[i].len() < 30))
        );
    }
}
