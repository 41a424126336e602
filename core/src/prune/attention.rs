//! Sentence scores from the generator's own attention: the question's tokens (and the
//! focus prompt after them) attend to the context; a content-free question ("N/A")
//! measures the position and sink bias, which is subtracted.

use burn::tensor::Tensor;

use super::memory::{self, ContextMemory};
use super::prompt::{self, ContextSentence, Prompt};
use crate::error::Result;
use crate::model::generate::Generator;
use crate::model::llama::{Capture, KvCache, LayerAttention, Pass, read_captured};

/// Opens the answer so the last rows predict it, as AttentionRAG's focus prompt does.
pub const FOCUS: &str = "The answer is";
/// The content-free question of the calibration pass.
const NULL_QUESTION: &str = "N/A";

/// Attention mass per head and sentence.
#[derive(Debug, Clone)]
pub struct SentenceAttention {
    pub layers: Vec<usize>,
    pub heads: usize,
    /// `real[i * heads + h][s]`: head `h` of `layers[i]` on sentence `s`.
    pub real: Vec<Vec<f64>>,
    /// The same with the content-free question, when calibrating.
    pub null: Option<Vec<Vec<f64>>>,
    /// Generator tokens of each sentence in the prompt.
    pub tokens: Vec<usize>,
}

impl SentenceAttention {
    /// The scores of one head (calibrated when the null pass ran), `None` when its
    /// layer was not read.
    pub fn head(&self, layer: usize, head: usize) -> Option<Vec<f64>> {
        let i = self.layers.iter().position(|&l| l == layer)? * self.heads + head;
        let real = self.real.get(i)?;
        Some(match &self.null {
            Some(null) => real.iter().zip(&null[i]).map(|(r, n)| r - n).collect(),
            None => real.clone(),
        })
    }

    /// Without calibration, whatever was read.
    pub fn uncalibrated(&self) -> Self {
        Self {
            null: None,
            ..self.clone()
        }
    }
}

/// The scoring pass: the attention read out, and what the answer's prefill resumes
/// from ([`crate::model::llama::Llama::keep_and_finish`]).
pub struct ScoringPass {
    pub attention: SentenceAttention,
    /// The prompt scored, with the real question and the focus prompt.
    pub prompt: Prompt,
    /// The prompt's cache, filled up to `depth` layers.
    pub cache: KvCache,
    /// Every prompt token's hidden state after layer `depth - 1`.
    pub hidden: Tensor<2>,
    pub depth: usize,
    /// Context tokens whose cache came from the memory instead of this pass.
    pub reused: usize,
}

/// Reads the attention of `layers` from the question rows onto each sentence; see
/// [`scoring_pass`].
pub fn sentence_attention(
    generator: &Generator,
    sentences: &[&ContextSentence],
    question: &str,
    layers: &[usize],
    calibrate: bool,
) -> Result<SentenceAttention> {
    Ok(scoring_pass(generator, sentences, question, layers, calibrate, None)?.attention)
}

/// Reads the attention of `layers` from the question rows onto each sentence, in one
/// prefill of the context (only up to the deepest layer asked for) plus the question;
/// with `calibrate`, the question part runs first with "N/A" on the same cached
/// context, and its attention is subtracted. With `memory`, the context's prefix
/// remembered there is not run again, and the memory then holds this pass's context.
pub fn scoring_pass(
    generator: &Generator,
    sentences: &[&ContextSentence],
    question: &str,
    layers: &[usize],
    calibrate: bool,
    memory: Option<&mut ContextMemory>,
) -> Result<ScoringPass> {
    let real = prompt::build(generator, sentences, question, Some(FOCUS))?;
    let llama = generator.llama();
    let depth = layers.iter().max().map_or(1, |&l| l + 1);
    let shared = real.context.end;
    let (mut cache, context, reused) =
        memory::prefill_lower(generator, &real.ids, real.context.clone(), depth, memory)?;

    let read = |p: &Prompt, cache: &mut KvCache| -> Result<Pass> {
        cache.truncate(shared);
        let capture = Capture {
            queries: p.question.clone(),
            layers: layers.to_vec(),
        };
        llama.forward(&p.ids[shared..], cache, Some(&capture), Some(depth))
    };
    // The calibration pass first, so that the cache ends up holding the real question.
    let null = if calibrate {
        let p = prompt::build(generator, sentences, NULL_QUESTION, Some(FOCUS))?;
        Some(read_captured(read(&p, &mut cache)?.captured)?)
    } else {
        None
    };
    let pass = read(&real, &mut cache)?;
    let attn = read_captured(pass.captured)?;
    let cut_short = "a pass cut short returns its hidden states";
    let hidden = Tensor::cat(vec![context, pass.hidden.expect(cut_short)], 0);

    let heads = llama.config.heads;
    let mass = |a: &LayerAttention, h: usize| -> Vec<f64> {
        real.sentences
            .iter()
            .map(|r| {
                let total: f64 = (0..a.queries)
                    .flat_map(|q| r.clone().map(move |k| (q, k)))
                    .map(|(q, k)| f64::from(a.at(h, q, k)))
                    .sum();
                total / a.queries as f64
            })
            .collect()
    };
    let per_head = |layers: &[LayerAttention]| -> Vec<Vec<f64>> {
        layers
            .iter()
            .flat_map(|a| (0..heads).map(move |h| mass(a, h)))
            .collect()
    };
    let attention = SentenceAttention {
        layers: attn.iter().map(|a| a.layer).collect(),
        heads,
        real: per_head(&attn),
        null: null.as_deref().map(per_head),
        tokens: real.sentences.iter().map(|r| r.len()).collect(),
    };
    Ok(ScoringPass {
        attention,
        prompt: real,
        cache,
        hidden,
        depth,
        reused,
    })
}
