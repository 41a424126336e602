//! Attention rerank (ICR) of each question's five context passages: recall@1 and MRR
//! of the gold passage, against embedding similarity and the given (shuffled) order,
//! plus a search for the heads that rank best.

use std::collections::BTreeMap;

use super::{EvalSet, HeadScore, best_heads};
use pith_core::Result;
use pith_core::model::bert::Embedder;
use pith_core::model::generate::Generator;
use pith_core::prune::{self, ContextSentence, RERANK_HEADS};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RankMetrics {
    #[serde(rename = "recall@1")]
    pub recall_at_1: f64,
    pub mrr: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RerankReport {
    pub questions: usize,
    pub methods: BTreeMap<String, RankMetrics>,
    /// The same on the odd-numbered questions only.
    pub check: BTreeMap<String, RankMetrics>,
    /// The heads with the best selection-half MRR.
    pub heads: Vec<HeadScore>,
}

/// Reciprocal rank of `gold` when passages are ordered by `scores`.
fn reciprocal_rank(scores: &[f64], gold: usize) -> f64 {
    let rank = prune::ranking(scores)
        .iter()
        .position(|&i| i == gold)
        .expect("gold is one of the passages");
    1.0 / (rank as f64 + 1.0)
}

/// Evaluates the first `limit` questions (all when `None`).
pub fn evaluate(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    limit: Option<usize>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RerankReport> {
    let questions = set.first(limit);
    let all_layers: Vec<usize> = (0..generator.llama().config.layers).collect();
    let all_heads = prune::rerank::all_heads(generator);
    // Per method: [half] of (sum of recall@1, sum of reciprocal rank).
    let mut sums: BTreeMap<&str, [(f64, f64); 2]> = BTreeMap::new();
    let mut head_rr = vec![[0.0f64; 2]; all_heads.len()];
    let mut counts = [0usize; 2];
    for (n, q) in questions.iter().enumerate() {
        let (texts, gold) = set.context(q)?;
        let whole = prune::rerank::whole_passages(&texts);
        let refs: Vec<&ContextSentence> = whole.iter().collect();
        let attn = prune::sentence_attention(generator, &refs, &q.question, &all_layers, true)?;
        let selected = prune::head_sum(&attn, RERANK_HEADS)?;
        let raw = prune::head_sum(&attn.uncalibrated(), RERANK_HEADS)?;
        let sim = prune::embedding_similarity(embedder, &refs, &q.question)?;
        // "attention" is the shipped rerank; all heads unfused is the ICR paper's sum.
        let methods: [(&str, Vec<f64>); 6] = [
            ("attention", prune::fuse(&selected, &sim)),
            ("attention_no_fusion", selected),
            ("attention_all_heads", prune::head_sum(&attn, &all_heads)?),
            ("attention_no_calibration", prune::fuse(&raw, &sim)),
            ("embedding", sim),
            ("given_order", prune::lead_scores(refs.len())),
        ];
        let half = n % 2;
        counts[half] += 1;
        for (name, scores) in methods {
            let rr = reciprocal_rank(&scores, gold);
            let s = &mut sums.entry(name).or_default()[half];
            s.0 += f64::from(u8::from(rr == 1.0));
            s.1 += rr;
        }
        for (i, &(l, h)) in all_heads.iter().enumerate() {
            let scores = attn.head(l, h).expect("all layers were read");
            head_rr[i][half] += reciprocal_rank(&scores, gold);
        }
        progress(n + 1, questions.len());
    }

    let mean = |x: f64, n: usize| if n == 0 { 0.0 } else { x / n as f64 };
    let table = |halves: &[usize]| -> BTreeMap<String, RankMetrics> {
        let n: usize = halves.iter().map(|&h| counts[h]).sum();
        sums.iter()
            .map(|(name, s)| {
                let (r1, rr) = halves
                    .iter()
                    .fold((0.0, 0.0), |acc, &h| (acc.0 + s[h].0, acc.1 + s[h].1));
                let metrics = RankMetrics {
                    recall_at_1: mean(r1, n),
                    mrr: mean(rr, n),
                };
                (name.to_string(), metrics)
            })
            .collect()
    };
    Ok(RerankReport {
        questions: questions.len(),
        methods: table(&[0, 1]),
        check: table(&[1]),
        heads: best_heads(&all_heads, &head_rr, counts),
    })
}
