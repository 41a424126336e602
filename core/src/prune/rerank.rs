//! Attention rerank (ICR): the candidates and the question in one prompt; each
//! candidate scores the attention the question pays it, minus what a content-free
//! question pays it, fused with its embedding similarity. One pass ranks all
//! candidates, plus the calibration pass on the same cached context.

use super::attention::sentence_attention;
use super::prompt::ContextSentence;
use super::{embedding_similarity, fuse, head_sum};
use crate::error::Result;
use crate::model::bert::Embedder;
use crate::model::generate::Generator;

/// The score of each passage, higher is more relevant: the summed calibrated attention
/// of `heads`, z-scored and added to the z-scored MiniLM similarity (on the eval set
/// the fusion beats either alone; see docs/eval.md).
pub fn rerank(
    generator: &Generator,
    embedder: &Embedder,
    passages: &[&str],
    question: &str,
    heads: &[(usize, usize)],
) -> Result<Vec<f64>> {
    let whole = whole_passages(passages);
    let refs: Vec<&ContextSentence> = whole.iter().collect();
    let mut layers: Vec<usize> = heads.iter().map(|&(l, _)| l).collect();
    layers.sort_unstable();
    layers.dedup();
    let attn = sentence_attention(generator, &refs, question, &layers, true)?;
    Ok(fuse(
        &head_sum(&attn, heads)?,
        &embedding_similarity(embedder, &refs, question)?,
    ))
}

/// Each passage as one unit, so that attention is summed over the whole passage.
pub fn whole_passages(passages: &[&str]) -> Vec<ContextSentence> {
    passages
        .iter()
        .enumerate()
        .map(|(i, text)| ContextSentence {
            passage: i,
            chars: 0..text.chars().count(),
            text: text.to_string(),
        })
        .collect()
}

/// Every head of every layer, as the ICR paper sums them.
pub fn all_heads(generator: &Generator) -> Vec<(usize, usize)> {
    let c = &generator.llama().config;
    (0..c.layers)
        .flat_map(|l| (0..c.heads).map(move |h| (l, h)))
        .collect()
}
