//! `Engine::ask`: retrieve, prune by attention, generate with citations.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::attribution::{ATTRIBUTION_HEADS, DecodeAttention, DecodeReader};
use crate::error::{Error, Result};
use crate::grounding;
use crate::model::bert::Embedder;
use crate::model::generate::{DecodeTap, Generation, Generator, StopReason};
use crate::model::sampling::SamplingOptions;
use crate::prune::{self, Budget, ContextMemory, ContextSentence, PruneOptions};
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
    /// The heads whose attention while decoding attributes the answer's clauses to
    /// the context's sentences; none turns attribution off.
    pub attribution_heads: Vec<(usize, usize)>,
    /// Below this grounding score (see [`crate::grounding`]) the answer is
    /// [`crate::grounding::NOTICE`] and nothing is generated; -1 never abstains.
    pub abstain_below: f64,
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
            attribution_heads: ATTRIBUTION_HEADS.to_vec(),
            abstain_below: grounding::ABSTAIN_BELOW,
        }
    }
}

impl AskOptions {
    /// The options the C and uniffi APIs expose; the rest keep their defaults.
    pub fn from_knobs(
        k: usize,
        rerank: bool,
        prune: Budget,
        abstain_below: f64,
        max_tokens: usize,
        temperature: f32,
        seed: u64,
    ) -> Self {
        let mut options = Self {
            k,
            rerank,
            prune,
            abstain_below,
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

/// A context sentence a clause of the answer was generated from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Support {
    /// The citation (index into [`Answer::citations`]) that holds the sentence.
    pub citation: usize,
    /// Character offsets of the sentence in its document.
    pub start_char: usize,
    pub end_char: usize,
    pub text: String,
    /// The share of the clause's attention on the context that went to this sentence,
    /// 0 to 1.
    pub score: f64,
}

/// One clause of the answer (a sentence, or the part of one between commas,
/// semicolons, colons or brackets; [`crate::attribution::answer_spans`]) and where in
/// the documents it comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attribution {
    /// Character offsets into [`Answer::text`].
    pub start_char: usize,
    pub end_char: usize,
    /// Whether some context sentence stands out as its source; an unsupported clause
    /// may be the model's own addition.
    pub supported: bool,
    /// Up to three supporting sentences, best first (by attention and meaning:
    /// [`crate::attribution::attribute_with_meaning`]); after the first, only those
    /// with a tenth of the clause's attention.
    pub supports: Vec<Support>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Answer {
    pub text: String,
    pub citations: Vec<Citation>,
    /// The answer clause by clause with its sources (empty when attribution is off).
    pub attributions: Vec<Attribution>,
    /// How well the retrieved documents match the question (see [`crate::grounding`]).
    pub grounding: f64,
    /// True when the documents did not match the question well enough to answer it:
    /// the text is [`crate::grounding::NOTICE`] and nothing was generated.
    pub abstained: bool,
    /// Generator tokens of the retrieved context before and after pruning.
    pub context_tokens_before: usize,
    pub context_tokens_after: usize,
    /// Context tokens not run again because a conversation's previous turn ran them
    /// (see [`crate::prune::ContextMemory`]); 0 outside [`Engine::chat`].
    pub context_tokens_reused: usize,
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
    /// None when the ask abstained.
    pub generation: Option<Generation>,
    /// The question's grounding score over the whole context.
    pub grounding: f64,
    /// The context's sentences, their MiniLM vectors, and the indices of those kept by
    /// pruning.
    pub sentences: Vec<ContextSentence>,
    pub vectors: Vec<Vec<f32>>,
    pub kept: Vec<usize>,
    /// Generator tokens of the context before and after pruning.
    pub tokens_before: usize,
    pub tokens_after: usize,
    /// Context tokens taken from the memory (see [`answer_from`]).
    pub reused: usize,
    /// From the call to the start of the answer's prefill: scoring and selection when
    /// pruned.
    pub prune: Duration,
    /// The decode attention on each kept sentence (in `kept` order), when attribution
    /// heads were given.
    pub attention: Option<DecodeAttention>,
}

/// Answers `question` from `passages` (best first): prunes their sentences to the
/// budget by attention, then generates from what was kept; or, when the passages do
/// not match the question well enough (`options.abstain_below`), generates nothing.
///
/// A pruned answer does not prefill again: the scoring pass's cache keeps the lower
/// layers of the kept tokens, and only the layers above the deepest retrieval head
/// run over them (see [`crate::model::llama::Llama::keep_and_finish`]). With
/// `memory`, the context's prefill (the scoring pass's, or unpruned the answer's)
/// resumes from what it shares with the last one (a conversation's previous turn).
#[allow(clippy::too_many_arguments)]
pub fn answer_from(
    generator: &Generator,
    embedder: &Embedder,
    passages: &[&str],
    question: &str,
    options: &AskOptions,
    mut memory: Option<&mut ContextMemory>,
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
    let mut scored = (budget < before)
        .then(|| {
            let prune = &options.prune_options;
            let memory = memory.as_deref_mut();
            prune::score(generator, embedder, &all, question, prune, memory)
        })
        .transpose()?;
    // Pruning computes the similarity beside its scoring pass (so an abstaining ask
    // has paid for that pass); unpruned, it is computed here before generating.
    let (similarity, vectors) = match scored.as_mut() {
        Some(s) => (s.similarity.clone(), std::mem::take(&mut s.vectors)),
        None => {
            let e = prune::Embedded::new(embedder, &all, question)?;
            (e.similarity, e.vectors)
        }
    };
    let grounding = grounding::score(&similarity);
    // An abstaining ask ran (and so reused) the scoring pass only.
    let scoring_reused = scored.as_ref().map_or(0, |s| s.pass.reused);
    let answered = if grounding::abstains(grounding, options.abstain_below) {
        None
    } else {
        Some(match scored {
            None => answer_whole(generator, full, options, memory, on_text, cancel)?,
            Some(scored) => answer_pruned(generator, scored, budget, options, on_text, cancel)?,
        })
    };
    let (kept, generation, attention, reused) = match answered {
        Some(a) => (a.kept, Some(a.generation), a.attention, a.reused),
        None => (vec![], None, None, scoring_reused),
    };
    if generation
        .as_ref()
        .is_some_and(|g| g.stop == StopReason::Cancelled)
    {
        return Err(Error::Cancelled);
    }
    let prune = start.elapsed().saturating_sub(
        generation
            .as_ref()
            .map_or(Duration::ZERO, |g| g.prefill + g.decode),
    );
    Ok(Reply {
        tokens_before: before,
        tokens_after: kept.iter().map(|&i| tokens[i]).sum(),
        reused,
        generation,
        grounding,
        sentences,
        vectors,
        kept,
        prune,
        attention,
    })
}

/// What answering produced.
struct Answered {
    kept: Vec<usize>,
    generation: Generation,
    attention: Option<DecodeAttention>,
    /// Context tokens whose cache came from the memory.
    reused: usize,
}

/// Generates from the whole context (resuming from `memory` as far as it goes).
fn answer_whole(
    generator: &Generator,
    full: prune::prompt::Prompt,
    options: &AskOptions,
    memory: Option<&mut ContextMemory>,
    on_text: &mut dyn FnMut(&str) -> bool,
    cancel: Option<&AtomicBool>,
) -> Result<Answered> {
    let kept: Vec<usize> = (0..full.sentences.len()).collect();
    let start = Instant::now();
    let (cache, logits, reused) =
        prune::memory::prefill(generator, &full.ids, full.context.clone(), memory)?;
    let mut tap = Tap::new(generator, &options.attribution_heads, full.sentences);
    let generation = generator.continue_from(
        cache,
        full.ids,
        logits,
        start,
        &options.sampling,
        tap.decode_tap().as_mut(),
        on_text,
        cancel,
    )?;
    Ok(Answered {
        kept,
        generation,
        attention: tap.finish()?,
        reused,
    })
}

/// Generates from the sentences that fit `budget` by their scores, on the scoring
/// pass's cache.
fn answer_pruned(
    generator: &Generator,
    scored: prune::Scored,
    budget: usize,
    options: &AskOptions,
    on_text: &mut dyn FnMut(&str) -> bool,
    cancel: Option<&AtomicBool>,
) -> Result<Answered> {
    let pass = scored.pass;
    let kept = prune::select(&scored.scores, &pass.attention.tokens, budget);
    let positions = pass.prompt.kept_positions(&kept);
    let prefill_start = Instant::now();
    let mut cache = pass.cache;
    let logits =
        generator
            .llama()
            .keep_and_finish(&mut cache, pass.hidden, &positions, pass.depth)?;
    let history = positions.iter().map(|&p| pass.prompt.ids[p]).collect();
    let slots = compacted_slots(pass.prompt.context.start, &kept, &pass.attention.tokens);
    let reused = pass.reused;
    let mut tap = Tap::new(generator, &options.attribution_heads, slots);
    let generation = generator.continue_from(
        cache,
        history,
        logits,
        prefill_start,
        &options.sampling,
        tap.decode_tap().as_mut(),
        on_text,
        cancel,
    )?;
    Ok(Answered {
        kept,
        generation,
        attention: tap.finish()?,
        reused,
    })
}

/// The cache slots of the kept sentences once pruning has compacted the cache: the
/// context starts at `start` and the kept sentences follow each other.
fn compacted_slots(start: usize, kept: &[usize], tokens: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut at = start;
    kept.iter()
        .map(|&s| {
            at += tokens[s];
            at - tokens[s]..at
        })
        .collect()
}

/// Collects the decode attention of an answer, when there are heads to read.
struct Tap {
    reader: Option<DecodeReader>,
    layers: Vec<usize>,
}

impl Tap {
    fn new(
        generator: &Generator,
        heads: &[(usize, usize)],
        slots: Vec<std::ops::Range<usize>>,
    ) -> Self {
        let device = generator.llama().device();
        let reader = (!heads.is_empty()).then(|| DecodeReader::new(heads, slots, device));
        let layers = reader.as_ref().map_or(vec![], DecodeReader::layers);
        Self { reader, layers }
    }

    fn decode_tap(&mut self) -> Option<DecodeTap<'_>> {
        let reader = self.reader.as_mut()?;
        Some(DecodeTap {
            layers: self.layers.clone(),
            on_row: Box::new(move |read| reader.push(read)),
        })
    }

    /// The attention read, once the answer is generated.
    fn finish(self) -> Result<Option<DecodeAttention>> {
        self.reader.map(DecodeReader::finish).transpose()
    }
}

/// The most generator tokens of candidates that one rerank prompt takes, leaving room
/// in the 2048-token context for the instruction and the question.
const RERANK_TOKENS: usize = 1600;

impl Engine {
    /// Answers `question` from the database, streaming the answer through `on_text`;
    /// `on_text` returning false, or `cancel` set from another thread, stops it with
    /// [`Error::Cancelled`]. When the retrieved passages do not match the question
    /// (grounding below `options.abstain_below`), nothing is generated and the answer,
    /// streamed as well, is [`crate::grounding::NOTICE`] with `abstained` set.
    pub fn ask(
        &self,
        question: &str,
        options: &AskOptions,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Answer> {
        self.ask_with_memory(question, options, None, on_text, cancel)
    }

    /// [`Engine::ask`] as the next question after the one `memory` was left by: the
    /// passages retrieved then go first, in the order they had, so that the scoring
    /// pass resumes from as much of that context as this one shares (see
    /// [`answer_from`]).
    pub(crate) fn ask_with_memory(
        &self,
        question: &str,
        options: &AskOptions,
        mut memory: Option<&mut Carried>,
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
        if let Some(m) = &mut memory {
            hits = as_before(hits, &m.passages);
            m.passages = hits.iter().map(|h| h.passage.id).collect();
        }
        let texts: Vec<&str> = hits.iter().map(|h| h.passage.text.as_str()).collect();
        let answer_start = start.elapsed();
        let reply = answer_from(
            &generator,
            self.embedder(),
            &texts,
            question,
            options,
            memory.map(|m| &mut m.context),
            on_text,
            cancel,
        )?;
        let timings = |prefill, decode, first_token| Timings {
            retrieve_ms: ms(retrieve),
            rerank_ms: ms(rerank),
            prune_ms: ms(reply.prune),
            prefill_ms: ms(prefill),
            decode_ms: ms(decode),
            first_token_ms: ms(answer_start + reply.prune + first_token),
        };
        let Some(g) = &reply.generation else {
            let cancelled = || cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
            if cancelled() || !on_text(grounding::NOTICE) || cancelled() {
                return Err(Error::Cancelled);
            }
            return Ok(Answer {
                text: grounding::NOTICE.to_string(),
                citations: vec![],
                attributions: vec![],
                grounding: reply.grounding,
                abstained: true,
                context_tokens_before: reply.tokens_before,
                context_tokens_after: 0,
                context_tokens_reused: reply.reused,
                prompt_tokens: 0,
                generated_tokens: 0,
                stop: StopReason::Abstained,
                timings: timings(Duration::ZERO, Duration::ZERO, Duration::ZERO),
            });
        };
        let (citations, cited) = cite(&hits, &reply.sentences, &reply.kept);
        Ok(Answer {
            text: g.text.trim().to_string(),
            attributions: attributions(&hits, &reply, g, &cited, self.embedder())?,
            citations,
            grounding: reply.grounding,
            abstained: false,
            context_tokens_before: reply.tokens_before,
            context_tokens_after: reply.tokens_after,
            context_tokens_reused: reply.reused,
            prompt_tokens: g.prompt_tokens,
            generated_tokens: g.tokens.len(),
            stop: g.stop,
            timings: timings(g.prefill, g.decode, g.first_token),
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

/// What a conversation carries from one ask to the next.
#[derive(Debug, Clone, Default)]
pub(crate) struct Carried {
    pub context: ContextMemory,
    /// The passages of the last ask, in prompt order.
    pub passages: Vec<i64>,
}

/// `hits` with those among `before` first, in its order, then the rest as ranked.
fn as_before(mut hits: Vec<crate::store::Hit>, before: &[i64]) -> Vec<crate::store::Hit> {
    hits.sort_by_key(|h| {
        before
            .iter()
            .position(|&id| id == h.passage.id)
            .unwrap_or(before.len())
    });
    hits
}

/// One citation per run of adjacent kept sentences of a passage, and the citation of
/// each kept sentence.
fn cite(
    hits: &[crate::store::Hit],
    sentences: &[ContextSentence],
    kept: &[usize],
) -> (Vec<Citation>, Vec<usize>) {
    let mut out: Vec<(usize, Citation)> = vec![];
    let mut cited = Vec::with_capacity(kept.len());
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
            cited.push(out.len() - 1);
            continue;
        }
        cited.push(out.len());
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
    (out.into_iter().map(|(_, c)| c).collect(), cited)
}

/// Supports below this share are not shown, but for the best.
const SUPPORT_FLOOR: f64 = 0.1;
/// Support above a sentence's share of the context tokens that marks it a source.
const SUPPORTED_LIFT: f64 = 0.1;

/// The answer's clauses with their sources, from the decode attention and the
/// embedder; `cited` is the citation of each kept sentence.
fn attributions(
    hits: &[crate::store::Hit],
    reply: &Reply,
    generation: &Generation,
    cited: &[usize],
    embedder: &Embedder,
) -> Result<Vec<Attribution>> {
    let Some(attention) = &reply.attention else {
        return Ok(vec![]);
    };
    let text = &generation.text;
    let heads: Vec<usize> = (0..attention.heads.len()).collect();
    let prior = crate::attribution::length_prior(&attention.slots);
    let kept: Vec<&[f32]> = reply
        .kept
        .iter()
        .map(|&i| reply.vectors[i].as_slice())
        .collect();
    let spans = crate::attribution::attribute_with_meaning(
        attention,
        &heads,
        text,
        &generation.token_ends,
        &prior,
        embedder,
        &kept,
    )?;
    let lead = text.len() - text.trim_start().len();
    let shown = text.trim();
    Ok(spans
        .into_iter()
        .filter(|a| a.bytes.start >= lead && a.bytes.end <= lead + shown.len())
        .map(|a| {
            let char_at = |b: usize| crate::chunk::char_offset(shown, b - lead);
            let supports = a
                .supports
                .iter()
                .enumerate()
                .filter(|&(rank, &(_, score))| rank == 0 || score >= SUPPORT_FLOOR)
                .take(3)
                .map(|(_, support)| support)
                .map(|&(j, score)| {
                    let s = &reply.sentences[reply.kept[j]];
                    let p = &hits[s.passage].passage;
                    Support {
                        citation: cited[j],
                        start_char: p.start_char + s.chars.start,
                        end_char: p.start_char + s.chars.end,
                        text: s.text.clone(),
                        score,
                    }
                })
                .collect();
            Attribution {
                start_char: char_at(a.bytes.start),
                end_char: char_at(a.bytes.end),
                supported: a.lift >= SUPPORTED_LIFT,
                supports,
            }
        })
        .collect())
}
