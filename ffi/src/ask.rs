//! Asking a question: options, streaming, cancellation and the answer.

use std::ffi::{c_char, c_void};

use pith_core::model::generate::StopReason;
use pith_core::{Answer, AskOptions, Budget};

use crate::cancel::pith_cancel;
use crate::convert::{
    CStrings, c_string, count, free_handle, into_handle, item, obj_arg, out_arg, str_arg,
};
use crate::engine::{engine, pith_engine};
use crate::status::{guard, guard_value, pith_status};

/// How to answer one question. Start from pith_ask_options_default().
#[repr(C)]
pub struct pith_ask_options {
    /// Passages retrieved by hybrid search (default 5).
    pub k: usize,
    /// Retrieve 2k passages and keep the k the model's attention ranks best.
    pub rerank: bool,
    /// Keep 1/prune_ratio of the context by attention (default 2); 0 or 1 keeps it all.
    pub prune_ratio: f64,
    /// When non-zero, keep at most this many context tokens instead of using the ratio.
    pub prune_budget: usize,
    /// The most tokens to generate (default 256).
    pub max_tokens: usize,
    /// 0 is greedy (the default); higher is more varied.
    pub temperature: f32,
    /// Seed of the sampler, so that a sampled answer can be reproduced.
    pub seed: u64,
    /// Answer that the documents do not hold the answer, generating nothing, when no
    /// retrieved sentence's similarity to the question (-1 to 1) reaches this
    /// (default 0.548); -1 always answers.
    pub abstain_below: f64,
}

/// The default options of pith_ask.
#[unsafe(no_mangle)]
pub extern "C" fn pith_ask_options_default() -> pith_ask_options {
    let d = AskOptions::default();
    pith_ask_options {
        k: d.k,
        rerank: d.rerank,
        prune_ratio: match d.prune {
            Budget::Ratio(r) => r,
            _ => 0.0,
        },
        prune_budget: 0,
        max_tokens: d.sampling.max_tokens,
        temperature: d.sampling.temperature,
        seed: d.sampling.seed,
        abstain_below: d.abstain_below,
    }
}

fn ask_options(o: &pith_ask_options) -> AskOptions {
    AskOptions::from_knobs(
        o.k,
        o.rerank,
        Budget::from_knobs(o.prune_ratio, o.prune_budget),
        o.abstain_below,
        o.max_tokens,
        o.temperature,
        o.seed,
    )
}

/// Receives each new piece of the answer (UTF-8, never a broken character) as it is
/// generated. Returning non-zero cancels the ask.
pub type pith_text_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, text: *const c_char) -> i32>;

/// A span of a document the answer was given from. Strings belong to the pith_answer.
#[repr(C)]
pub struct pith_citation {
    pub document_id: i64,
    pub passage_id: i64,
    pub source: *const c_char,
    /// Character offsets of the cited text in its document.
    pub start_char: usize,
    pub end_char: usize,
    /// The cited text.
    pub snippet: *const c_char,
    /// The 1-based page of the cited passage in a PDF; 0 for documents without pages.
    pub page: u32,
    /// The heading of the cited passage's section; NULL when the document has none.
    pub heading: *const c_char,
}

/// A document sentence a clause of the answer was generated from. Strings belong to
/// the pith_answer.
#[repr(C)]
pub struct pith_support {
    /// The citation holding the sentence (an index for pith_answer_citation).
    pub citation_index: usize,
    /// Character offsets of the sentence in its document.
    pub start_char: usize,
    pub end_char: usize,
    pub text: *const c_char,
    /// The share of the clause's attention on the context that went here, 0-1.
    pub score: f64,
}

/// One clause of the answer (a sentence, or the part of one between commas,
/// semicolons, colons or brackets) and its sources. Pointers belong to the pith_answer.
#[repr(C)]
pub struct pith_attribution {
    /// Character offsets of the clause in the answer's text.
    pub start_char: usize,
    pub end_char: usize,
    /// False when no context sentence stands out as its source: the model may have
    /// added it.
    pub supported: bool,
    /// Up to three supporting sentences, best first.
    pub supports: *const pith_support,
    pub supports_len: usize,
}

/// Figures of one answer.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct pith_answer_stats {
    /// Context tokens retrieved, and kept after pruning.
    pub context_tokens_before: usize,
    pub context_tokens_after: usize,
    /// Context tokens a conversation's previous turn had already run (pith_chat).
    pub context_tokens_reused: usize,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// True when generation stopped at max_tokens rather than at the end of the answer.
    pub truncated: bool,
    pub retrieve_ms: f64,
    pub prune_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// From the call to the first token of the answer.
    pub first_token_ms: f64,
}

/// An answer with its citations; freed with pith_answer_free.
pub struct pith_answer {
    text: *const c_char,
    grounding: f64,
    abstained: bool,
    citations: Vec<pith_citation>,
    attributions: Vec<pith_attribution>,
    stats: pith_answer_stats,
    /// What the attributions point into (an inner Vec's buffer stays put).
    _supports: Vec<Vec<pith_support>>,
    _strings: CStrings,
}

fn answer(a: Answer) -> pith_answer {
    let mut strings = CStrings::default();
    let citations = a
        .citations
        .iter()
        .map(|c| pith_citation {
            document_id: c.document_id,
            passage_id: c.passage_id,
            source: strings.add(&c.source),
            start_char: c.start_char,
            end_char: c.end_char,
            snippet: strings.add(&c.snippet),
            page: c.page.unwrap_or(0),
            heading: strings.add_opt(c.heading.as_deref()),
        })
        .collect();
    let supports: Vec<Vec<pith_support>> = a
        .attributions
        .iter()
        .map(|at| {
            at.supports
                .iter()
                .map(|s| pith_support {
                    citation_index: s.citation,
                    start_char: s.start_char,
                    end_char: s.end_char,
                    text: strings.add(&s.text),
                    score: s.score,
                })
                .collect()
        })
        .collect();
    let attributions = a
        .attributions
        .iter()
        .zip(&supports)
        .map(|(at, s)| pith_attribution {
            start_char: at.start_char,
            end_char: at.end_char,
            supported: at.supported,
            supports: s.as_ptr(),
            supports_len: s.len(),
        })
        .collect();
    let t = &a.timings;
    let stats = pith_answer_stats {
        context_tokens_before: a.context_tokens_before,
        context_tokens_after: a.context_tokens_after,
        context_tokens_reused: a.context_tokens_reused,
        prompt_tokens: a.prompt_tokens,
        generated_tokens: a.generated_tokens,
        truncated: a.stop == StopReason::MaxTokens,
        retrieve_ms: t.retrieve_ms,
        prune_ms: t.prune_ms,
        prefill_ms: t.prefill_ms,
        decode_ms: t.decode_ms,
        first_token_ms: t.first_token_ms,
    };
    pith_answer {
        text: strings.add(&a.text),
        grounding: a.grounding,
        abstained: a.abstained,
        citations,
        attributions,
        stats,
        _supports: supports,
        _strings: strings,
    }
}

/// Answers `question` from the stored documents: retrieve, prune by attention, generate.
/// `options`, `on_text`, `user_data` and `cancel` may be NULL. The answer streams through
/// `on_text`; the whole answer with citations goes to *answer_out. Cancelled (by the
/// callback or `cancel`), it returns PITH_CANCELLED and no answer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_ask(
    engine: *const pith_engine,
    question: *const c_char,
    options: *const pith_ask_options,
    on_text: pith_text_fn,
    user_data: *mut c_void,
    cancel: *const pith_cancel,
    answer_out: *mut *mut pith_answer,
) -> pith_status {
    let request = Request {
        engine,
        question,
        options,
        on_text,
        user_data,
        cancel,
        answer_out,
    };
    guard(|| unsafe {
        request.run(|engine, question, options, on_text, cancel| {
            engine.ask(question, options, on_text, cancel)
        })
    })
}

/// The arguments of an ask, as the caller gave them.
pub(crate) struct Request {
    pub engine: *const pith_engine,
    pub question: *const c_char,
    pub options: *const pith_ask_options,
    pub on_text: pith_text_fn,
    pub user_data: *mut c_void,
    pub cancel: *const pith_cancel,
    pub answer_out: *mut *mut pith_answer,
}

impl Request {
    /// Checks the arguments, answers with `answering` (`Engine::ask`, or `Engine::chat`
    /// with its conversation), and hands out the answer.
    pub(crate) unsafe fn run(
        self,
        answering: impl FnOnce(
            &pith_core::Engine,
            &str,
            &AskOptions,
            &mut dyn FnMut(&str) -> bool,
            Option<&std::sync::atomic::AtomicBool>,
        ) -> pith_core::Result<Answer>,
    ) -> pith_core::Result<()> {
        let out = unsafe { out_arg(self.answer_out, "answer_out") }?;
        *out = std::ptr::null_mut();
        let engine = unsafe { self::engine(self.engine) }?;
        let question = unsafe { str_arg(self.question, "question") }?;
        let options = match unsafe { self.options.as_ref() } {
            Some(o) => ask_options(o),
            None => AskOptions::default(),
        };
        let cancel = unsafe { self.cancel.as_ref() }.map(|c| &c.0);
        let (on_text, user_data) = (self.on_text, self.user_data);
        let mut stream = |text: &str| {
            let Some(f) = on_text else { return true };
            let text = c_string(text);
            // SAFETY: the caller's callback, with the caller's user_data.
            unsafe { f(user_data, text.as_ptr()) == 0 }
        };
        let a = answering(engine, question, &options, &mut stream, cancel)?;
        *out = into_handle(answer(a));
        Ok(())
    }
}

/// The answer's text; NULL for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_text(answer: *const pith_answer) -> *const c_char {
    guard_value(std::ptr::null(), || {
        unsafe { answer.as_ref() }.map_or(std::ptr::null(), |a| a.text)
    })
}

/// How well the retrieved documents match the question: the best cosine similarity of
/// a retrieved sentence to it (-1 to 1); NaN for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_grounding(answer: *const pith_answer) -> f64 {
    guard_value(f64::NAN, || {
        unsafe { answer.as_ref() }.map_or(f64::NAN, |a| a.grounding)
    })
}

/// True when the documents did not match the question well enough to answer it
/// (pith_ask_options.abstain_below): the text says so and nothing was generated; false
/// for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_abstained(answer: *const pith_answer) -> bool {
    guard_value(false, || {
        unsafe { answer.as_ref() }.is_some_and(|a| a.abstained)
    })
}

/// The number of citations; 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_citations_len(answer: *const pith_answer) -> usize {
    guard_value(0, || unsafe { count(answer, |a| &a.citations) })
}

/// The citation at `index`, in the order of the context, or NULL when out of range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_citation(
    answer: *const pith_answer,
    index: usize,
) -> *const pith_citation {
    guard_value(std::ptr::null(), || unsafe {
        item(answer, index, |a| &a.citations)
    })
}

/// The number of answer clauses with their sources; 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_attributions_len(answer: *const pith_answer) -> usize {
    guard_value(0, || unsafe { count(answer, |a| &a.attributions) })
}

/// The answer's clause at `index` with its sources, in the order of the text, or NULL
/// when out of range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_attribution(
    answer: *const pith_answer,
    index: usize,
) -> *const pith_attribution {
    guard_value(std::ptr::null(), || unsafe {
        item(answer, index, |a| &a.attributions)
    })
}

/// Copies the answer's figures to *stats_out.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_stats_get(
    answer: *const pith_answer,
    stats_out: *mut pith_answer_stats,
) -> pith_status {
    guard(|| {
        let a = unsafe { obj_arg(answer, "answer") }?;
        *unsafe { out_arg(stats_out, "stats_out") }? = a.stats;
        Ok(())
    })
}

/// Frees an answer; NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_answer_free(answer: *mut pith_answer) {
    guard_value((), || unsafe { free_handle(answer) })
}
