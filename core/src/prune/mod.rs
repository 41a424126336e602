//! Attention-guided context pruning: keep the sentences the model's retrieval heads
//! attend to, up to a token budget, in their original order.

pub mod attention;
pub mod memory;
pub mod prompt;
pub mod rerank;

use rand::SeedableRng;
use rand::seq::SliceRandom;

pub use attention::{ScoringPass, SentenceAttention, scoring_pass, sentence_attention};
pub use memory::ContextMemory;
pub use prompt::{ContextSentence, split_passages};

use crate::error::{Error, Result};
use crate::model::bert::Embedder;
use crate::model::generate::Generator;

/// Retrieval heads of SmolLM2-135M as (layer, head), counted from 0: the two best
/// single heads at or below layer 15 on even-numbered questions of the squad-superbowl
/// set, checked on the odd ones (see docs/eval.md). Shallow on purpose: the scoring
/// pass runs only 16 of the 30 layers over the whole context, and the answer's prefill
/// runs the other 14 over the kept tokens alone.
pub const RETRIEVAL_HEADS: &[(usize, usize)] = &[(15, 6), (14, 3)];

/// The heads whose calibrated attention ranks whole passages (ICR): the best four
/// single heads at any depth (see docs/eval.md); rerank needs no cache afterwards.
pub const RERANK_HEADS: &[(usize, usize)] = &[(17, 4), (15, 6), (18, 6), (21, 8)];

/// How much context to keep.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    /// Keep everything.
    Off,
    /// Keep 1/ratio of the context tokens (ratio 4 keeps a quarter).
    Ratio(f64),
    /// Keep at most this many context tokens.
    Tokens(usize),
}

impl Budget {
    /// The budget from the two knobs of the C and uniffi APIs: `tokens` when non-zero,
    /// else `ratio`, where 0 and 1 both mean no pruning.
    pub fn from_knobs(ratio: f64, tokens: usize) -> Self {
        match (tokens, ratio) {
            (0, r) if r == 0.0 || r == 1.0 => Budget::Off,
            (0, r) => Budget::Ratio(r),
            (n, _) => Budget::Tokens(n),
        }
    }

    /// The token budget for a context of `total` tokens.
    pub fn tokens(self, total: usize) -> Result<usize> {
        match self {
            Budget::Off => Ok(total),
            Budget::Ratio(r) if r >= 1.0 && r.is_finite() => {
                Ok((total as f64 / r).floor() as usize)
            }
            Budget::Ratio(r) => Err(Error::InvalidArgument(format!(
                "compression ratio {r} (must be at least 1)"
            ))),
            Budget::Tokens(n) => Ok(n.min(total)),
        }
    }
}

/// How sentences are scored.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneOptions {
    pub heads: Vec<(usize, usize)>,
    /// Subtract the attention of a content-free question.
    pub calibrate: bool,
    /// Add the z-scored embedding similarity to the z-scored attention.
    pub fuse_embedding: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            heads: RETRIEVAL_HEADS.to_vec(),
            calibrate: true,
            fuse_embedding: true,
        }
    }
}

/// What the pruner made of a context.
pub struct Scored {
    /// Per sentence, higher is better.
    pub scores: Vec<f64>,
    /// Per sentence, its cosine similarity to the question (MiniLM).
    pub similarity: Vec<f64>,
    /// Per sentence, its MiniLM vector (attribution weighs them too).
    pub vectors: Vec<Vec<f32>>,
    /// The pass the attention came from (its `attention.tokens` are the generator
    /// tokens each sentence takes).
    pub pass: ScoringPass,
}

/// Sentence scores from the shipped pruner (or an ablation of it); `memory` as in
/// [`scoring_pass`].
pub fn score(
    generator: &Generator,
    embedder: &Embedder,
    sentences: &[&ContextSentence],
    question: &str,
    options: &PruneOptions,
    memory: Option<&mut ContextMemory>,
) -> Result<Scored> {
    let mut layers: Vec<usize> = options.heads.iter().map(|&(l, _)| l).collect();
    layers.sort_unstable();
    layers.dedup();
    // The embedder runs beside the scoring pass: the two models share nothing, and
    // the similarity (which also grounds the answer) is otherwise a fixed cost on
    // every pruned ask.
    let (pass, embedded) = std::thread::scope(|scope| {
        let embedded = scope.spawn(|| Embedded::new(embedder, sentences, question));
        let pass = scoring_pass(
            generator,
            sentences,
            question,
            &layers,
            options.calibrate,
            memory,
        );
        // A panic there goes on here, as if the similarity had run on this thread.
        let embedded = embedded
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (pass, embedded)
    });
    let (
        pass,
        Embedded {
            similarity,
            vectors,
        },
    ) = (pass?, embedded?);
    let mut scores = head_sum(&pass.attention, &options.heads)?;
    if options.fuse_embedding {
        scores = fuse(&scores, &similarity);
    }
    Ok(Scored {
        scores,
        similarity,
        vectors,
        pass,
    })
}

/// Sum of z-scores: each signal counts by how far it sets a sentence apart.
pub fn fuse(a: &[f64], b: &[f64]) -> Vec<f64> {
    zscore(a)
        .iter()
        .zip(zscore(b))
        .map(|(x, y)| x + y)
        .collect()
}

/// Mean-rank fusion: each signal votes by rank, so that one signal's outlier cannot
/// push out a sentence that both rank well. An ablation of `fuse`, in `eval prune`.
pub fn fuse_ranks(a: &[f64], b: &[f64]) -> Vec<f64> {
    places(&ranking(a))
        .iter()
        .zip(places(&ranking(b)))
        .map(|(x, y)| -((x + y) as f64))
        .collect()
}

/// Each index's place in `order` (a permutation of the indices), 0 for the first.
fn places(order: &[usize]) -> Vec<usize> {
    let mut place = vec![0; order.len()];
    for (p, &i) in order.iter().enumerate() {
        place[i] = p;
    }
    place
}

/// Words that open a sentence which leans on the one before it (a follow-up question
/// leans on these and more: `crate::conversation`).
pub(crate) const ANAPHORA: &[&str] = &[
    "he", "she", "it", "they", "this", "these", "those", "his", "her", "its", "their",
];

/// A sentence that opens with a pronoun continues the one before it in its passage,
/// so it is raised to the mean of its own and its predecessor's score when that is
/// higher: a kept sentence's follow-up ("He then folded the bag ...") then survives
/// the budget's edge more often. An ablation in `eval prune`.
pub fn carry_to_pronouns(scores: &[f64], sentences: &[&ContextSentence]) -> Vec<f64> {
    let opens_with_pronoun = |s: &ContextSentence| {
        let first = s
            .text
            .split(|c: char| !c.is_alphabetic())
            .find(|w| !w.is_empty());
        first.is_some_and(|w| ANAPHORA.contains(&w.to_lowercase().as_str()))
    };
    (0..scores.len())
        .map(|i| match i.checked_sub(1) {
            Some(p)
                if sentences[p].passage == sentences[i].passage
                    && opens_with_pronoun(sentences[i]) =>
            {
                scores[i].max((scores[i] + scores[p]) / 2.0)
            }
            _ => scores[i],
        })
        .collect()
}

/// The summed scores of `heads`.
pub fn head_sum(attn: &SentenceAttention, heads: &[(usize, usize)]) -> Result<Vec<f64>> {
    let mut total = vec![0.0; attn.tokens.len()];
    for &(l, h) in heads {
        let s = attn.head(l, h).ok_or_else(|| {
            Error::InvalidArgument(format!("head {h} of layer {l} does not exist"))
        })?;
        total.iter_mut().zip(s).for_each(|(t, x)| *t += x);
    }
    Ok(total)
}

/// Cosine similarity of each sentence to the question (MiniLM).
pub fn embedding_similarity(
    embedder: &Embedder,
    sentences: &[&ContextSentence],
    question: &str,
) -> Result<Vec<f64>> {
    Ok(Embedded::new(embedder, sentences, question)?.similarity)
}

/// The sentences' MiniLM vectors and their cosine similarity to the question.
pub struct Embedded {
    pub similarity: Vec<f64>,
    pub vectors: Vec<Vec<f32>>,
}

impl Embedded {
    pub fn new(
        embedder: &Embedder,
        sentences: &[&ContextSentence],
        question: &str,
    ) -> Result<Self> {
        let mut texts: Vec<&str> = vec![question];
        texts.extend(sentences.iter().map(|s| s.text.as_str()));
        let mut vectors = embedder.embed(&texts)?;
        let question = vectors.remove(0);
        Ok(Self {
            similarity: vectors.iter().map(|v| cosine(v, &question)).collect(),
            vectors,
        })
    }
}

/// The cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum()
}

pub fn zscore(x: &[f64]) -> Vec<f64> {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    x.iter()
        .map(|v| if sd > 0.0 { (v - mean) / sd } else { 0.0 })
        .collect()
}

/// Keeps the best-scoring sentences whose tokens fit in `budget` (skipping any that
/// would overflow it), returned in their original order.
pub fn select(scores: &[f64], tokens: &[usize], budget: usize) -> Vec<usize> {
    let mut used = 0;
    let mut kept: Vec<usize> = ranking(scores)
        .into_iter()
        .filter(|&i| {
            let fits = used + tokens[i] <= budget;
            if fits {
                used += tokens[i];
            }
            fits
        })
        .collect();
    kept.sort_unstable();
    kept
}

/// Indices ordered by score, best first; ties keep the given order.
pub fn ranking(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Scores for the baselines: leading sentences first, or a seeded random order.
pub fn lead_scores(n: usize) -> Vec<f64> {
    (0..n).map(|i| -(i as f64)).collect()
}

pub fn random_scores(n: usize, seed: u64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    places(&order).into_iter().map(|p| -(p as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_fits_the_budget_and_keeps_order() {
        let kept = select(&[0.1, 0.9, 0.5, 0.8], &[5, 5, 5, 10], 12);
        assert_eq!(kept, vec![1, 2]);
        assert_eq!(select(&[1.0, 2.0], &[3, 3], 0), Vec::<usize>::new());
    }

    #[test]
    fn rank_fusion_rewards_agreement() {
        // Sentence 0 is an outlier in one signal only; sentence 1 is second in both.
        let fused = fuse_ranks(&[10.0, 1.0, 0.9, 0.0], &[0.0, 0.8, 0.1, 0.9]);
        assert_eq!(ranking(&fused)[0], 1);
    }

    #[test]
    fn pronouns_lean_on_the_sentence_before() {
        let s = |passage: usize, text: &str| ContextSentence {
            passage,
            chars: 0..text.len(),
            text: text.to_string(),
        };
        let sentences = [
            s(0, "Armstrong took a sample."),
            s(0, "He then folded the bag."),
            s(1, "It rained."),
            s(1, "Itself unrelated."),
        ];
        let refs: Vec<&ContextSentence> = sentences.iter().collect();
        let carried = carry_to_pronouns(&[4.0, 0.0, 2.0, -2.0], &refs);
        // The follower rises to the mean; a passage's first sentence and a word that
        // merely starts like a pronoun do not.
        assert_eq!(carried, vec![4.0, 2.0, 2.0, -2.0]);
    }

    #[test]
    fn budgets() {
        assert_eq!(Budget::Ratio(4.0).tokens(100).unwrap(), 25);
        assert_eq!(Budget::Tokens(500).tokens(100).unwrap(), 100);
        assert!(Budget::Ratio(0.5).tokens(100).is_err());
    }
}
