//! Text generation: the decoder, its tokenizer and chat template, sampling, and
//! streaming of UTF-8-safe pieces with cancellation.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use tokenizers::Tokenizer;

use super::chat::{ChatTemplate, Message};
use super::gguf::Gguf;
use super::llama::{Capture, Captured, KvCache, Llama, Precision};
use super::sampling::{Sampler, SamplingOptions};
use super::tokenizer;
use crate::error::{Error, Result};

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfText,
    StopString,
    MaxTokens,
    Cancelled,
    /// Nothing was generated: `ask` abstained (see [`crate::grounding`]).
    Abstained,
}

/// The outcome of one generation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    pub stop: StopReason,
    pub prefill: Duration,
    pub decode: Duration,
    /// From the start of prefill to the first sampled token.
    pub first_token: Duration,
    /// Per token, the byte length of the decoded text once it was added (the text may
    /// run past `text` by a stop string).
    #[serde(skip)]
    pub token_ends: Vec<usize>,
    /// Per token, its log-probability under the model (before sampling's penalty).
    #[serde(skip)]
    pub token_logprobs: Vec<f32>,
}

/// Attention read out while decoding: each token fed back into the model calls
/// `on_row` with its row's attention in `layers` (`[heads, 1, keys]` each, on the
/// model's device), the row whose output predicts the next token.
pub struct DecodeTap<'a> {
    pub layers: Vec<usize>,
    pub on_row: OnRow<'a>,
}

/// What receives each decode row's attention.
pub type OnRow<'a> = Box<dyn FnMut(&[Captured]) + 'a>;

/// A loaded generator model.
pub struct Generator {
    llama: Llama,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    end_ids: Vec<u32>,
    max_context: usize,
    /// Tells generators apart (each load is a new one), for what is cached across asks.
    id: u64,
}

/// The KV cache pith allocates by default: enough for a RAG prompt and an answer,
/// far less memory than the model's full 8k context.
pub const DEFAULT_CONTEXT: usize = 2048;

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Generator {
    /// Loads the GGUF at `path` with its weight matrices kept in `precision` on `device`.
    pub fn load(
        path: &Path,
        device: &Device,
        max_context: usize,
        precision: Precision,
    ) -> Result<Self> {
        let gguf = Arc::new(Gguf::open(path)?);
        let tokenizer = tokenizer::from_gguf(&gguf)?;
        let llama = Llama::load(&gguf, device, precision)?;
        let tokens = gguf.strings("tokenizer.ggml.tokens")?;
        let token = |key: &str| {
            gguf.u64(key)
                .ok()
                .and_then(|id| tokens.get(id as usize))
                .copied()
        };
        let eos_id = gguf.u64("tokenizer.ggml.eos_token_id")? as u32;
        let mut end_ids = vec![eos_id];
        // Chat models end a turn with their own marker as well as EOS.
        for marker in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"] {
            if let Some(id) = tokenizer
                .token_to_id(marker)
                .filter(|id| !end_ids.contains(id))
            {
                end_ids.push(id);
            }
        }
        let template = match gguf.get("tokenizer.chat_template").and_then(|v| v.as_str()) {
            Some(src) => Some(ChatTemplate::new(
                src,
                token("tokenizer.ggml.bos_token_id").unwrap_or(""),
                token("tokenizer.ggml.eos_token_id").unwrap_or(""),
            )?),
            None => None,
        };
        Ok(Self {
            max_context: max_context.min(llama.config.context),
            llama,
            tokenizer,
            template,
            end_ids,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn llama(&self) -> &Llama {
        &self.llama
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// Token ids of `text`, with special tokens such as `<|im_start|>` recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The chat prompt for `messages` from the model's own template.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<String> {
        self.template
            .as_ref()
            .ok_or_else(|| Error::Unsupported("the model has no chat template".into()))?
            .render(messages)
    }

    pub fn new_cache(&self) -> KvCache {
        self.llama.new_cache(self.max_context)
    }

    /// Prefills `prompt` and generates, calling `on_text` with each new piece of text;
    /// `on_text` returning false, or `cancel` becoming true, stops generation.
    pub fn generate(
        &self,
        prompt: &[u32],
        options: &SamplingOptions,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Generation> {
        self.generate_tapped(prompt, options, None, on_text, cancel)
    }

    /// [`Generator::generate`], reading attention out through `tap`.
    pub fn generate_tapped(
        &self,
        prompt: &[u32],
        options: &SamplingOptions,
        tap: Option<&mut DecodeTap>,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Generation> {
        let mut cache = self.new_cache();
        let start = Instant::now();
        let pass = self.llama.forward(prompt, &mut cache, None, None)?;
        let logits = pass.logits.expect("a full forward pass returns logits");
        self.continue_from(
            cache,
            prompt.to_vec(),
            logits,
            start,
            options,
            tap,
            on_text,
            cancel,
        )
    }

    /// Generates after a prompt already in `cache`, whose last logits are `logits`
    /// (`history` is the prompt's tokens, for the repetition penalty).
    #[allow(clippy::too_many_arguments)]
    pub fn continue_from(
        &self,
        mut cache: KvCache,
        history: Vec<u32>,
        mut logits: Vec<f32>,
        start: Instant,
        options: &SamplingOptions,
        mut tap: Option<&mut DecodeTap>,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Generation> {
        let prompt_tokens = history.len();
        let prefill = start.elapsed();
        let mut sampler = Sampler::new(options.clone());
        let mut history = history;
        let mut stream = TextStream::new(&options.stop);
        let mut first_token = None;
        let mut token_logprobs = vec![];
        let decode_start = Instant::now();
        let stop = loop {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                break StopReason::Cancelled;
            }
            if stream.tokens.len() >= options.max_tokens {
                break StopReason::MaxTokens;
            }
            let log_normaliser = log_sum_exp(&logits);
            let raw = logits.clone();
            let next = sampler.sample(&mut logits, &history);
            first_token.get_or_insert_with(|| start.elapsed());
            if self.end_ids.contains(&next) {
                break StopReason::EndOfText;
            }
            token_logprobs.push(raw[next as usize] - log_normaliser);
            let (piece, hit_stop) = stream.push(next, &self.tokenizer)?;
            if !piece.is_empty() && !on_text(&piece) {
                break StopReason::Cancelled;
            }
            if hit_stop {
                break StopReason::StopString;
            }
            history.push(next);
            if cache.next_position() >= cache.capacity() {
                return Err(Error::ContextOverflow {
                    needed: cache.next_position() + 1,
                    limit: cache.capacity(),
                });
            }
            let capture = tap.as_ref().map(|t| Capture {
                queries: cache.len()..cache.len() + 1,
                layers: t.layers.clone(),
            });
            let pass = self
                .llama
                .forward(&[next], &mut cache, capture.as_ref(), None)?;
            if let Some(t) = tap.as_mut() {
                (t.on_row)(&pass.captured);
            }
            logits = pass.logits.expect("a full forward pass returns logits");
        };
        let rest = stream.finish();
        if !rest.is_empty() && stop != StopReason::Cancelled {
            on_text(&rest);
        }
        Ok(Generation {
            text: stream.text,
            tokens: stream.tokens,
            prompt_tokens,
            stop,
            prefill,
            decode: decode_start.elapsed(),
            first_token: first_token.unwrap_or(prefill),
            token_ends: stream.ends,
            token_logprobs,
        })
    }
}

/// `ln Σ exp(x)`, computed stably.
fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = x.iter().map(|v| (v - max).exp()).sum();
    max + sum.ln()
}

/// Turns tokens into text pieces that never split a UTF-8 character and never show
/// the beginning of a stop string that may still complete.
struct TextStream<'a> {
    stops: &'a [String],
    tokens: Vec<u32>,
    /// Text emitted so far.
    text: String,
    /// Decoded text not yet emitted (held back as a possible stop-string prefix).
    pending: String,
    /// Per token, the decoded length once it was added.
    ends: Vec<usize>,
}

impl<'a> TextStream<'a> {
    fn new(stops: &'a [String]) -> Self {
        Self {
            stops,
            tokens: vec![],
            text: String::new(),
            pending: String::new(),
            ends: vec![],
        }
    }

    /// Adds a token; returns the text that is safe to show and whether a stop string
    /// was completed (the text before it is emitted, the stop string is not).
    fn push(&mut self, token: u32, tokenizer: &Tokenizer) -> Result<(String, bool)> {
        self.tokens.push(token);
        let all = tokenizer
            .decode(&self.tokens, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        // A multi-byte character split across tokens decodes to U+FFFD until complete.
        if all.ends_with('\u{FFFD}') {
            self.ends.push(self.ends.last().copied().unwrap_or(0));
            return Ok((String::new(), false));
        }
        self.ends.push(all.len());
        let shown = self.text.len() + self.pending.len();
        self.pending.push_str(all.get(shown..).unwrap_or(""));
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min()
        {
            let piece = self.pending[..at].to_string();
            self.text.push_str(&piece);
            self.pending.clear();
            return Ok((piece, true));
        }
        let hold = self
            .stops
            .iter()
            .flat_map(|s| {
                (1..s.len())
                    .filter(|&n| s.is_char_boundary(n))
                    .map(move |n| &s[..n])
            })
            .filter(|p| self.pending.ends_with(p))
            .map(str::len)
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - hold;
        let piece: String = self.pending.drain(..cut).collect();
        self.text.push_str(&piece);
        Ok((piece, false))
    }

    fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.text.push_str(&rest);
        rest
    }
}
