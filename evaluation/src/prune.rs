//! Evidence recall of context pruning at 2x, 4x and 8x, for pith's pruner, its
//! ablations and the baselines, plus a per-head search for retrieval heads.

use std::collections::BTreeMap;

use super::{EvalSet, HeadScore, best_heads};
use pith_core::Result;
use pith_core::model::bert::Embedder;
use pith_core::model::generate::Generator;
use pith_core::prune::{self, ContextSentence, RERANK_HEADS, RETRIEVAL_HEADS};

/// Questions whose evidence was kept, `[half][ratio]` (halves: even and odd questions).
type Hits = [[usize; 3]; 2];

pub const RATIOS: [(&str, f64); 3] = [("2x", 2.0), ("4x", 4.0), ("8x", 8.0)];

/// Per method, per ratio: the share of questions whose evidence survived.
pub type Recall = BTreeMap<String, BTreeMap<&'static str, f64>>;

#[derive(Debug, Clone, serde::Serialize)]
pub struct PruneReport {
    pub questions: usize,
    /// Recall on all questions evaluated.
    pub recall: Recall,
    /// Recall on the odd-numbered questions only (heads were chosen on the even ones).
    pub check_recall: Recall,
    /// The best heads by selection-half recall at 4x.
    pub heads: Vec<HeadScore>,
    /// Per ratio, the questions whose evidence the shipped pruner lost and embedding
    /// similarity kept: where to look when the two differ by a few questions.
    pub lost_to_embedding: BTreeMap<&'static str, Vec<String>>,
}

/// Whether the kept sentences hold one answer span of the gold passage whole.
fn evidence_kept(
    sentences: &[ContextSentence],
    kept: &[usize],
    gold: usize,
    spans: &[(usize, usize)],
) -> bool {
    // Adjacent kept sentences of one passage form one span.
    let mut runs: Vec<(usize, usize)> = vec![];
    let mut prev: Option<usize> = None;
    for &i in kept {
        let s = &sentences[i];
        if s.passage != gold {
            prev = None;
            continue;
        }
        match (prev, runs.last_mut()) {
            (Some(p), Some(run)) if p + 1 == i => run.1 = s.chars.end,
            _ => runs.push((s.chars.start, s.chars.end)),
        }
        prev = Some(i);
    }
    spans
        .iter()
        .any(|&(a, b)| runs.iter().any(|&(s, e)| s <= a && b <= e))
}

/// Evaluates the first `limit` questions (all when `None`).
pub fn evaluate(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    limit: Option<usize>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PruneReport> {
    let questions = set.first(limit);
    let all_layers: Vec<usize> = (0..generator.llama().config.layers).collect();
    let all_heads = prune::rerank::all_heads(generator);

    // kept[method][ratio] per question, split by parity.
    let mut hits: BTreeMap<String, Hits> = BTreeMap::new();
    let mut head_hits = vec![[0.0f64; 2]; all_heads.len()];
    let mut counts = [0usize; 2];
    let mut lost_to_embedding: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for (n, q) in questions.iter().enumerate() {
        let (texts, gold) = set.context(q)?;
        let sentences = prune::split_passages(&texts);
        let refs: Vec<&ContextSentence> = sentences.iter().collect();
        let attn = prune::sentence_attention(generator, &refs, &q.question, &all_layers, true)?;
        let raw = attn.uncalibrated();
        let sim = prune::embedding_similarity(embedder, &refs, &q.question)?;
        let selected = prune::head_sum(&attn, RETRIEVAL_HEADS)?;
        let shipped_scores = prune::fuse(&selected, &sim);
        let carried = prune::carry_to_pronouns(&shipped_scores, &refs);
        let methods: Vec<(&str, Vec<f64>)> = vec![
            ("attention", shipped_scores),
            (
                "attention_no_calibration",
                prune::fuse(&prune::head_sum(&raw, RETRIEVAL_HEADS)?, &sim),
            ),
            (
                "attention_all_heads",
                prune::fuse(&prune::head_sum(&attn, &all_heads)?, &sim),
            ),
            (
                // The four best heads at any depth, which rerank uses: a deeper
                // scoring pass for a little more recall.
                "attention_deep_heads",
                prune::fuse(&prune::head_sum(&attn, RERANK_HEADS)?, &sim),
            ),
            ("attention_rank_fusion", prune::fuse_ranks(&selected, &sim)),
            ("attention_pronoun_carry", carried),
            ("attention_no_fusion", selected),
            ("embedding", sim),
            ("lead", prune::lead_scores(refs.len())),
            ("random", prune::random_scores(refs.len(), n as u64)),
        ];
        let total: usize = attn.tokens.iter().sum();
        let half = n % 2;
        counts[half] += 1;
        let mut shipped = [false; 3];
        for (name, scores) in methods {
            let row = hits.entry(name.to_string()).or_default();
            for (r, &(ratio_name, ratio)) in RATIOS.iter().enumerate() {
                let kept = prune::select(&scores, &attn.tokens, (total as f64 / ratio) as usize);
                let ok = evidence_kept(&sentences, &kept, gold, &q.answer_spans);
                row[half][r] += usize::from(ok);
                match name {
                    "attention" => shipped[r] = ok,
                    "embedding" if ok && !shipped[r] => lost_to_embedding
                        .entry(ratio_name)
                        .or_default()
                        .push(q.id.clone()),
                    _ => {}
                }
            }
        }
        let budget4 = total / 4;
        for (i, &(l, h)) in all_heads.iter().enumerate() {
            let scores = attn.head(l, h).expect("all layers were read");
            let kept = prune::select(&scores, &attn.tokens, budget4);
            head_hits[i][half] += f64::from(u8::from(evidence_kept(
                &sentences,
                &kept,
                gold,
                &q.answer_spans,
            )));
        }
        progress(n + 1, questions.len());
    }

    let share = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let table = |pick: &dyn Fn(&Hits, usize) -> (usize, usize)| -> Recall {
        hits.iter()
            .map(|(m, row)| {
                let by_ratio = RATIOS
                    .iter()
                    .enumerate()
                    .map(|(r, &(name, _))| {
                        let (k, n) = pick(row, r);
                        (name, share(k, n))
                    })
                    .collect();
                (m.clone(), by_ratio)
            })
            .collect()
    };
    let recall = table(&|row, r| (row[0][r] + row[1][r], counts[0] + counts[1]));
    let check_recall = table(&|row, r| (row[1][r], counts[1]));
    Ok(PruneReport {
        questions: questions.len(),
        recall,
        check_recall,
        heads: best_heads(&all_heads, &head_hits, counts),
        lost_to_embedding,
    })
}
