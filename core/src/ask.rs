//! `Engine::ask`: retrieve, prune by attention, generate with citations.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::bert::Embedder;
use crate::model::generate::{Generation, Generator, StopReason};
use crate::model::sampling::SamplingOptions;
use crate::prune::{self, Budget, ContextSentence, PruneOptions};
use crate::rag::{Engine, SearchOptions};
use crate::store::{Filter, Method};

/// Options of one question.
#[derive(Debug, Clone)]
pub struct AskOptions {
    /// Passages retrieved (hybrid search).
    pub k: usize,
    pub filter: Filter,
    pub prune: Budget,
    pub prune_options: PruneOptions,
    /// Retrieve twice `k` passages and keep the `k` that the generator's attention
    /// ranks best (ICR).
    pub rerank: bool,
    pub sampling: SamplingOptions,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            k: 5,
            filter: Filter::default(),
            prune: Budget::Ratio(2.0),
            prune_options: PruneOptions::default(),
            rerank: false,
            sampling: SamplingOptions::default(),
        }
    }
}

impl AskOptions {
    /// The options the C and uniffi APIs expose; the rest keep their defaults.
    pub fn from_knobs(
        k: usize,
        rerank: bool,
        prune: Budget,
        max_tokens: usize,
        temperature: f32,
        seed: u64,
    ) -> Self {
        let mut options = Self {
            k,
            rerank,
            prune,
            ..Self::default()
        };
        options.sampling.max_tokens = max_tokens;
        options.sampling.temperature = temperature;
        options.sampling.seed = seed;
        options
    }
}

/// A span of a document the answer was given from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Citation {
    pub document_id: i64,
    pub source: String,
    pub passage_id: i64,
    /// Character offsets into the document.
    pub start_char: usize,
    pub end_char: usize,
    pub snippet: String,
    /// The 1-based page of the passage, for PDF documents.
    pub page: Option<u32>,
    /// The heading of the passage's section.
    pub heading: Option<String>,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    pub retrieve_ms: f64,
    pub rerank_ms: f64,
    pub prune_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// From the question to the first answer token.
    pub first_token_ms: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Answer {
    pub text: String,
    pub citations: Vec<Citation>,
    /// Generator tokens of the retrieved context before and after pruning.
    pub context_tokens_before: usize,
    pub context_tokens_after: usize,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub stop: crate::model::generate::StopReason,
    pub timings: Timings,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What answering from a given context produced.
#[derive(Debug, Clone)]
pub struct Reply {
    pub generation: Generation,
    /// The context's sentences, and the indices of those kept by pruning.
    pub sentences: Vec<ContextSentence>,
    pub kept: Vec<usize>,
    /// Generator tokens of the context before and after pruning.
    pub tokens_before: usize,
    pub tokens_after: usize,
    /// From the call to the start of the answer's prefill: scoring and selection when
    /// pruned.
    pub prune: Duration,
}

/// Answers `question` from `passages` (best first): prunes their sentences to the
/// budget by attention, then generates from what was kept.
///
/// A pruned answer does not prefill again: the scoring pass's cache keeps the lower
/// layers of the kept tokens, and only the layers above the deepest retrieval head
/// run over them (see [`crate::model::llama::Llama::keep_and_finish`]).
pub fn answer_from(
    generator: &Generator,
    embedder: &Embedder,
    passages: &[&str],
    question: &str,
    options: &AskOptions,
    on_text: &mut dyn FnMut(&str) -> bool,
    cancel: Option<&AtomicBool>,
) -> Result<Reply> {
    let start = Instant::now();
    let sentences = prune::split_passages(passages);
    let all: Vec<&ContextSentence> = sentences.iter().collect();
    let full = prune::prompt::build(generator, &all, question, None)?;
    let tokens: Vec<usize> = full.sentences.iter().map(|r| r.len()).collect();
    let before: usize = tokens.iter().sum();
    let budget = options.prune.tokens(before)?;
    let (kept, generation) = if budget >= before {
        let generation = generator.generate(&full.ids, &options.sampling, on_text, cancel)?;
        ((0..all.len()).collect(), generation)
    } else {
        let (scores, pass) =
            prune::score(generator, embedder, &all, question, &options.prune_options)?;
        let kept = prune::select(&scores, &pass.attention.tokens, budget);
        let positions = pass.prompt.kept_positions(&kept);
        let prefill_start = Instant::now();
        let mut cache = pass.cache;
        let logits =
            generator
                .llama()
                .keep_and_finish(&mut cache, pass.hidden, &positions, pass.depth)?;
        let history = positions.iter().map(|&p| pass.prompt.ids[p]).collect();
        let generation = generator.continue_from(
            cache,
            history,
            logits,
            prefill_start,
            &options.sampling,
            on_text,
            cancel,
        )?;
        (kept, generation)
    };
    if generation.stop == StopReason::Cancelled {
        return Err(Error::Cancelled);
    }
    let prune = start
        .elapsed()
        .saturating_sub(generation.prefill + generation.decode);
    Ok(Reply {
        tokens_before: before,
        tokens_after: kept.iter().map(|&i| tokens[i]).sum(),
        generation,
        sentences,
        kept,
        prune,
    })
}

/// The most generator tokens of candidates that one rerank prompt takes, leaving room
/// in the 2048-token context for the instruction and the question.
const RERANK_TOKENS: usize = 1600;

impl Engine {
    /// Answers `question` from the database, streaming the answer through `on_text`;
    /// `on_text` returning false, or `cancel` set from another thread, stops it with
    /// [`Error::Cancelled`].
    pub fn ask(
        &self,
        question: &str,
        options: &AskOptions,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Answer> {
        let start = Instant::now();
        let search = SearchOptions {
            k: if options.rerank {
                options.k * 2
            } else {
                options.k
            },
            method: Method::Hybrid,
            filter: options.filter.clone(),
        };
        let mut hits = self.search(question, &search)?;
        let retrieve = start.elapsed();
        let generator = self.generator()?;
        let rerank_start = Instant::now();
        if options.rerank && hits.len() > 1 {
            hits = self.rerank(&generator, hits, question, options.k)?;
        }
        let rerank = rerank_start.elapsed();
        let texts: Vec<&str> = hits.iter().map(|h| h.passage.text.as_str()).collect();
        let answer_start = start.elapsed();
        let reply = answer_from(
            &generator,
            self.embedder(),
            &texts,
            question,
            options,
            on_text,
            cancel,
        )?;
        let g = &reply.generation;
        Ok(Answer {
            text: g.text.trim().to_string(),
            citations: cite(&hits, &reply.sentences, &reply.kept),
            context_tokens_before: reply.tokens_before,
            context_tokens_after: reply.tokens_after,
            prompt_tokens: g.prompt_tokens,
            generated_tokens: g.tokens.len(),
            stop: g.stop,
            timings: Timings {
                retrieve_ms: ms(retrieve),
                rerank_ms: ms(rerank),
                prune_ms: ms(reply.prune),
                prefill_ms: ms(g.prefill),
                decode_ms: ms(g.decode),
                first_token_ms: ms(answer_start + reply.prune + g.first_token),
            },
        })
    }

    /// The `k` candidates the generator's attention ranks best, best first. Candidates
    /// are taken in retrieval order while they fit in one rerank prompt.
    fn rerank(
        &self,
        generator: &Generator,
        hits: Vec<crate::store::Hit>,
        question: &str,
        k: usize,
    ) -> Result<Vec<crate::store::Hit>> {
        let mut used = 0;
        let mut candidates = Vec::with_capacity(hits.len());
        for h in hits {
            used += generator.encode(&h.passage.text)?.len();
            if used > RERANK_TOKENS && !candidates.is_empty() {
                break;
            }
            candidates.push(h);
        }
        let texts: Vec<&str> = candidates.iter().map(|h| h.passage.text.as_str()).collect();
        let scores = prune::rerank::rerank(
            generator,
            self.embedder(),
            &texts,
            question,
            prune::RERANK_HEADS,
        )?;
        let mut slots: Vec<Option<crate::store::Hit>> = candidates.into_iter().map(Some).collect();
        Ok(prune::ranking(&scores)
            .into_iter()
            .take(k)
            .filter_map(|i| slots[i].take())
            .collect())
    }
}

/// One citation per run of adjacent kept sentences of a passage.
fn cite(
    hits: &[crate::store::Hit],
    sentences: &[ContextSentence],
    kept: &[usize],
) -> Vec<Citation> {
    let mut out: Vec<(usize, Citation)> = vec![];
    for &i in kept {
        let s = &sentences[i];
        let p = &hits[s.passage].passage;
        if let Some((last, c)) = out.last_mut()
            && *last + 1 == i
            && sentences[*last].passage == s.passage
        {
            c.end_char = p.start_char + s.chars.end;
            c.snippet.push(' ');
            c.snippet.push_str(&s.text);
            *last = i;
            continue;
        }
        out.push((
            i,
            Citation {
                document_id: p.document_id,
                source: p.source.clone(),
                passage_id: p.id,
                start_char: p.start_char + s.chars.start,
                end_char: p.start_char + s.chars.end,
                snippet: s.text.clone(),
                page: p.page,
                heading: p.heading.clone(),
            },
        ));
    }
    out.into_iter().map(|(_, c)| c).collect()
}
