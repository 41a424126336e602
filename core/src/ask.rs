//! `Engine::ask`: retrieve, prune by attention, generate with citations.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::error::Result;
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
    pub sampling: SamplingOptions,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            k: 5,
            filter: Filter::default(),
            prune: Budget::Ratio(2.0),
            prune_options: PruneOptions::default(),
            sampling: SamplingOptions::default(),
        }
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
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    pub retrieve_ms: f64,
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

impl Engine {
    /// Answers `question` from the database, streaming the answer through `on_text`
    /// (return false to stop); `cancel` stops it from another thread.
    pub fn ask(
        &self,
        question: &str,
        options: &AskOptions,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Answer> {
        let start = Instant::now();
        let search = SearchOptions {
            k: options.k,
            method: Method::Hybrid,
            filter: options.filter.clone(),
        };
        let hits = self.search(question, &search)?;
        let retrieve = start.elapsed();
        let generator = self.generator()?;
        let texts: Vec<&str> = hits.iter().map(|h| h.passage.text.as_str()).collect();
        let sentences = prune::split_passages(&texts);
        let all: Vec<&ContextSentence> = sentences.iter().collect();

        let prune_start = Instant::now();
        let full = prune::prompt::build(&generator, &all, question, None)?;
        let tokens: Vec<usize> = full.sentences.iter().map(|r| r.len()).collect();
        let before: usize = tokens.iter().sum();
        let budget = options.prune.tokens(before)?;
        let kept: Vec<usize> = if budget >= before {
            (0..all.len()).collect()
        } else {
            let (scores, _) = prune::score(
                &generator,
                self.embedder(),
                &all,
                question,
                &options.prune_options,
            )?;
            prune::select(&scores, &tokens, budget)
        };
        let prune_time = prune_start.elapsed();
        let after: usize = kept.iter().map(|&i| tokens[i]).sum();

        let kept_sentences: Vec<&ContextSentence> = kept.iter().map(|&i| all[i]).collect();
        let prompt = prune::prompt::build(&generator, &kept_sentences, question, None)?;
        let before_generation = start.elapsed();
        let generation = generator.generate(&prompt.ids, &options.sampling, on_text, cancel)?;
        let citations = cite(&hits, &sentences, &kept);
        Ok(Answer {
            text: generation.text.trim().to_string(),
            citations,
            context_tokens_before: before,
            context_tokens_after: after,
            prompt_tokens: generation.prompt_tokens,
            generated_tokens: generation.tokens.len(),
            stop: generation.stop,
            timings: Timings {
                retrieve_ms: ms(retrieve),
                prune_ms: ms(prune_time),
                prefill_ms: ms(generation.prefill),
                decode_ms: ms(generation.decode),
                first_token_ms: ms(before_generation + generation.first_token),
            },
        })
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
            },
        ));
    }
    out.into_iter().map(|(_, c)| c).collect()
}
