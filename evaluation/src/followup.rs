//! Follow-up questions (`eval/followups`): does a question that leans on the one before
//! it find its gold passage, and is it answered, when searched as asked, as
//! `Engine::chat` makes it standalone, and as its self-contained original (the ceiling)?
//! Both evaluation sets share one database, so a question that lost its subject can
//! land in the wrong article.

use std::collections::BTreeMap;
use std::path::Path;

use super::qa::normalize;
use super::{EvalSet, Passages, RetrievalMetrics, ingest, parse_jsonl};
use pith_core::model::sampling::SamplingOptions;
use pith_core::{AskOptions, Conversation, Engine, Error, Method, Result, grounding};

/// One pair of `pairs.jsonl` (`scripts/make-followups.py`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Pair {
    pub id: String,
    pub set: String,
    pub first_question: String,
    pub followup: String,
    pub original_question: String,
    pub gold: String,
    pub answers: Vec<String>,
}

/// How a follow-up is put to the engine.
const WAYS: [&str; 3] = ["as_asked", "standalone", "original"];

/// Tokens per answer, as `eval grounding`.
const ANSWER_TOKENS: usize = 48;

#[derive(Debug, Clone, serde::Serialize)]
pub struct FollowupReport {
    pub pairs: usize,
    /// Hybrid search for the follow-up's gold passage, per way of asking.
    pub retrieval: BTreeMap<&'static str, RetrievalMetrics>,
    /// Share of answers holding a gold answer (with answers only).
    pub containment: BTreeMap<&'static str, f64>,
    /// Share of asks below the shipped abstention threshold (with answers only).
    pub abstain_rate: BTreeMap<&'static str, f64>,
}

/// The pairs in `dir` and the evaluation sets they come from (beside `dir`).
pub fn load(dir: &Path) -> Result<(Vec<Pair>, BTreeMap<String, EvalSet>)> {
    let path = dir.join("pairs.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let pairs: Vec<Pair> = parse_jsonl(&text, &path)?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    let mut sets = BTreeMap::new();
    for p in &pairs {
        if !sets.contains_key(&p.set) {
            sets.insert(p.set.clone(), EvalSet::load(&parent.join(&p.set))?);
        }
    }
    Ok((pairs, sets))
}

/// Ingests every set into `engine` (a fresh database), then puts the first `limit`
/// pairs; with `answers`, each way of asking is answered too (greedy, never abstaining,
/// so that containment and the abstention rate are read from the same answers).
pub fn evaluate(
    engine: &Engine,
    dir: &Path,
    limit: Option<usize>,
    answers: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<FollowupReport> {
    let (pairs, sets) = load(dir)?;
    let pairs = &pairs[..limit.unwrap_or(usize::MAX).min(pairs.len())];
    // Each ingest maps every stored document, so the last one maps them all.
    let mut passages = Passages(BTreeMap::new());
    for set in sets.values() {
        passages = ingest(engine, set, None)?;
    }
    let options = AskOptions {
        sampling: SamplingOptions::greedy(if answers { ANSWER_TOKENS } else { 1 }),
        abstain_below: grounding::NEVER,
        ..AskOptions::default()
    };
    let mut ranks = vec![vec![]; WAYS.len()];
    let mut contained = [0.0; WAYS.len()];
    let mut abstained = [0.0; WAYS.len()];
    for (n, p) in pairs.iter().enumerate() {
        let mut conversation = Conversation::new();
        engine.chat(
            &mut conversation,
            &p.first_question,
            &options,
            &mut |_| true,
            None,
        )?;
        let queries = [
            p.followup.clone(),
            conversation.standalone(&p.followup),
            p.original_question.clone(),
        ];
        for (w, query) in queries.iter().enumerate() {
            ranks[w].push(passages.rank(engine, query, Method::Hybrid, &p.gold)?);
            if answers {
                let a = engine.ask(query, &options, &mut |_| true, None)?;
                let holds = p
                    .answers
                    .iter()
                    .any(|g| normalize(&a.text).contains(&normalize(g)));
                contained[w] += f64::from(u8::from(holds));
                let abstains = grounding::abstains(a.grounding, grounding::ABSTAIN_BELOW);
                abstained[w] += f64::from(u8::from(abstains));
            }
        }
        progress(n + 1, pairs.len());
    }
    let n = pairs.len().max(1) as f64;
    let per_way = |xs: [f64; WAYS.len()]| -> BTreeMap<&'static str, f64> {
        if answers {
            WAYS.iter().zip(xs).map(|(&w, x)| (w, x / n)).collect()
        } else {
            BTreeMap::new()
        }
    };
    Ok(FollowupReport {
        pairs: pairs.len(),
        retrieval: WAYS
            .iter()
            .zip(&ranks)
            .map(|(&w, r)| (w, RetrievalMetrics::of(r)))
            .collect(),
        containment: per_way(contained),
        abstain_rate: per_way(abstained),
    })
}
