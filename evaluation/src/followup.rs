//! Follow-up questions (`eval/followups`): does a question that leans on the one before
//! it find its gold passage, and is it answered, when searched as asked, as
//! `Engine::chat` makes it standalone, and as its self-contained original (the ceiling)?
//! Both evaluation sets share one database, so a question that lost its subject can
//! land in the wrong article.

use std::collections::BTreeMap;
use std::path::Path;

use super::qa::holds;
use super::{EvalSet, Passages, RetrievalMetrics, median, parse_jsonl, store};
use pith_core::model::sampling::SamplingOptions;
use pith_core::{Answer, AskOptions, Conversation, Engine, Error, Method, Result, grounding};

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
    /// The follow-up asked in its conversation (reusing the first turn's context) and
    /// the same standalone question asked afresh, side by side (with answers only).
    pub memory: Option<MemoryReport>,
}

/// What reusing the conversation's context cache does to a follow-up.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MemoryReport {
    /// Share of follow-ups whose context shares a prefix with the first turn's.
    pub resumed: f64,
    /// Context tokens reused over context tokens retrieved, all follow-ups.
    pub reused_share: f64,
    /// Share of follow-ups answered word for word as when asked afresh (the reused
    /// cache and the part run on it differ from a whole pass in rounding, which can
    /// turn greedy decoding another way).
    pub same_answer: f64,
    /// Share of answers holding a gold answer, in conversation and afresh.
    pub containment: [f64; 2],
    /// Medians over the follow-ups, in conversation and afresh: from the call to the
    /// answer's prefill (the scoring pass), and to its first token.
    pub prune_ms: [f64; 2],
    pub first_token_ms: [f64; 2],
}

/// The follow-ups' answers in conversation and afresh.
#[derive(Default)]
struct Sides {
    resumed: usize,
    reused: usize,
    context: usize,
    same: usize,
    contained: [usize; 2],
    prune_ms: [Vec<f64>; 2],
    first_token_ms: [Vec<f64>; 2],
}

impl Sides {
    fn add(&mut self, chat: &Answer, afresh: &Answer, holds: impl Fn(&Answer) -> bool) {
        self.resumed += usize::from(chat.context_tokens_reused > 0);
        self.reused += chat.context_tokens_reused;
        self.context += chat.context_tokens_before;
        self.same += usize::from(chat.text == afresh.text);
        for (side, a) in [chat, afresh].into_iter().enumerate() {
            self.contained[side] += usize::from(holds(a));
            self.prune_ms[side].push(a.timings.prune_ms);
            self.first_token_ms[side].push(a.timings.first_token_ms);
        }
    }

    fn report(self, pairs: usize) -> MemoryReport {
        let n = pairs.max(1) as f64;
        let [a, b] = &self.prune_ms;
        let [c, d] = &self.first_token_ms;
        MemoryReport {
            resumed: self.resumed as f64 / n,
            reused_share: self.reused as f64 / self.context.max(1) as f64,
            same_answer: self.same as f64 / n,
            containment: self.contained.map(|c| c as f64 / n),
            prune_ms: [median(a), median(b)],
            first_token_ms: [median(c), median(d)],
        }
    }
}

fn holds_gold(a: &Answer, p: &Pair) -> bool {
    p.answers.iter().any(|g| holds(&a.text, g))
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
    for set in sets.values() {
        store(engine, set, None)?;
    }
    let passages = Passages::stored(engine)?;
    let options = AskOptions {
        sampling: SamplingOptions::greedy(if answers { ANSWER_TOKENS } else { 1 }),
        abstain_below: grounding::NEVER,
        ..AskOptions::default()
    };
    let mut ranks = vec![vec![]; WAYS.len()];
    let mut contained = [0.0; WAYS.len()];
    let mut abstained = [0.0; WAYS.len()];
    let mut sides = Sides::default();
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
                let afresh = || engine.ask(query, &options, &mut |_| true, None);
                let a = if WAYS[w] == "standalone" {
                    let mut chat = || {
                        let c = &mut conversation;
                        engine.chat(c, &p.followup, &options, &mut |_| true, None)
                    };
                    // Each side goes first for half the pairs.
                    let (chat, afresh) = if n % 2 == 0 {
                        (chat()?, afresh()?)
                    } else {
                        let a = afresh()?;
                        (chat()?, a)
                    };
                    sides.add(&chat, &afresh, |a| holds_gold(a, p));
                    chat
                } else {
                    afresh()?
                };
                contained[w] += f64::from(u8::from(holds_gold(&a, p)));
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
        memory: answers.then(|| sides.report(pairs.len())),
    })
}
