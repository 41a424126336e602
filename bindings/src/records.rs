//! The plain values that cross into Kotlin, Swift and Python.

use pith_core::model::generate::StopReason;

/// Where pith runs its models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Device {
    /// The GPU through wgpu, on any adapter (a software one too); falls back to the
    /// CPU when there is none. Unset (the default): a graphics card when there is one,
    /// else the CPU.
    Gpu,
    Cpu,
}

/// How the generator's weights are kept on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Precision {
    /// Half the memory; decodes faster where memory bandwidth bounds it.
    F16,
    F32,
    /// As stored in the GGUF file (4.5 to 8.5 bits a weight), on the CPU or a GPU.
    Q,
}

/// How to open an engine.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EngineConfig {
    /// Directory holding minilm/ and smollm2/ as scripts/fetch-models lays them out.
    pub models_dir: String,
    /// The SQLite database file; created when missing.
    pub db_path: String,
    /// The embedder's directory, when not models_dir/minilm.
    #[uniffi(default = None)]
    pub embedder_dir: Option<String>,
    /// The generator's GGUF file, when not the SmolLM2 file in models_dir.
    #[uniffi(default = None)]
    pub generator_path: Option<String>,
    /// None: a graphics card when there is one, else the CPU (also when wgpu's only
    /// adapter is a software rasterizer).
    #[uniffi(default = None)]
    pub device: Option<Device>,
    /// CPU threads, process-wide; 0 uses every core.
    #[uniffi(default = 0)]
    pub threads: u32,
    /// None is the weights as stored in the GGUF (q), on either device.
    #[uniffi(default = None)]
    pub precision: Option<Precision>,
}

/// What ingesting one document did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct IngestResult {
    pub document_id: i64,
    pub passages: u64,
    /// True when the same content was already stored; nothing was written.
    pub duplicate: bool,
}

/// Where an `ingest_files` call stands.
#[derive(Debug, Clone, uniffi::Record)]
pub struct IngestProgress {
    /// Files stored, found already stored, or failed.
    pub documents_done: u64,
    pub documents_total: u64,
    /// Passages embedded.
    pub passages_done: u64,
    /// Passages of the files chunked so far; grows as reading goes ahead.
    pub passages_known: u64,
    /// Bytes of the files done; a file being embedded counts by its share of passages.
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub elapsed_s: f64,
    pub passages_per_s: f64,
    /// Seconds left at the rate so far; None before any byte is done.
    pub eta_s: Option<f64>,
}

/// One file's outcome in `ingest_files`: its result, or why it was skipped.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DocumentOutcome {
    pub path: String,
    pub result: Option<IngestResult>,
    pub error: Option<String>,
}

/// The totals of an `ingest_files` call.
#[derive(Debug, Clone, uniffi::Record)]
pub struct IngestSummary {
    pub added: u64,
    pub duplicates: u64,
    pub failed: u64,
    /// Passages stored.
    pub passages: u64,
}

/// What a `sync` changed.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncReport {
    /// Files ingested for the first time.
    pub added: Vec<String>,
    /// Files whose content changed, re-ingested.
    pub updated: Vec<String>,
    /// Files gone from disk whose documents were deleted.
    pub removed: Vec<String>,
    /// Files whose content another file already holds; not stored twice.
    pub duplicates: Vec<String>,
    /// Files (and folders) that could not be read; their documents are kept.
    pub failed: Vec<SyncFailure>,
    /// Files skipped as unchanged.
    pub unchanged: u64,
    /// Passages stored.
    pub passages: u64,
}

/// A file or folder a `sync` could not read, and why.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncFailure {
    pub path: String,
    pub error: String,
}

/// A stored document.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Document {
    pub id: i64,
    pub source: String,
    pub metadata_json: String,
    /// Length in characters (Unicode scalar values).
    pub chars: u64,
    pub passages: u64,
    /// Unix time of ingest, in seconds.
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SearchMethod {
    /// Vector and full-text search fused by reciprocal rank.
    Hybrid,
    Vector,
    Bm25,
}

/// A passage found by search.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SearchHit {
    pub document_id: i64,
    pub passage_id: i64,
    pub source: String,
    pub text: String,
    /// Character offsets of the passage in its document.
    pub start_char: u64,
    pub end_char: u64,
    /// Higher is better; comparable only within one search.
    pub score: f64,
    /// The 1-based page the passage starts on, for PDF documents.
    pub page: Option<u32>,
    /// The heading of the passage's section.
    pub heading: Option<String>,
}

/// How to answer one question.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AskConfig {
    /// Passages retrieved by hybrid search.
    #[uniffi(default = 5)]
    pub k: u32,
    /// Retrieve 2k passages and keep the k the model's attention ranks best.
    #[uniffi(default = false)]
    pub rerank: bool,
    /// Keep 1/prune_ratio of the context by attention; 0 or 1 keeps it all.
    #[uniffi(default = 2.0)]
    pub prune_ratio: f64,
    /// When non-zero, keep at most this many context tokens instead of using the ratio.
    #[uniffi(default = 0)]
    pub prune_budget: u32,
    #[uniffi(default = 256)]
    pub max_tokens: u32,
    /// 0 is greedy.
    #[uniffi(default = 0.0)]
    pub temperature: f32,
    #[uniffi(default = 42)]
    pub seed: u64,
    /// Say the documents do not hold the answer when no retrieved sentence's similarity
    /// to the question reaches this (-1 to 1); -1 always answers.
    #[uniffi(default = 0.548)]
    pub abstain_below: f64,
}

/// A span of a document the answer was given from.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Citation {
    pub document_id: i64,
    pub passage_id: i64,
    pub source: String,
    pub start_char: u64,
    pub end_char: u64,
    pub snippet: String,
    /// The 1-based page of the cited passage, for PDF documents.
    pub page: Option<u32>,
    /// The heading of the cited passage's section.
    pub heading: Option<String>,
}

/// Figures of one answer.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AnswerStats {
    pub context_tokens_before: u64,
    pub context_tokens_after: u64,
    /// Context tokens a conversation's previous turn had already run (chat).
    pub context_tokens_reused: u64,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// True when generation stopped at max_tokens.
    pub truncated: bool,
    pub retrieve_ms: f64,
    pub prune_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    pub first_token_ms: f64,
}

/// A document sentence a clause of the answer was generated from.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Support {
    /// The index of the citation that holds the sentence.
    pub citation_index: u64,
    /// Character offsets of the sentence in its document.
    pub start_char: u64,
    pub end_char: u64,
    pub text: String,
    /// The share of the clause's attention on the context that went here, 0-1.
    pub score: f64,
}

/// One clause of the answer (a sentence, or the part of one between commas,
/// semicolons, colons or brackets) and its sources.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Attribution {
    /// Character offsets of the clause in the answer's text.
    pub start_char: u64,
    pub end_char: u64,
    /// False when no context sentence stands out as its source.
    pub supported: bool,
    /// Up to three supporting sentences, best first.
    pub supports: Vec<Support>,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct Answer {
    pub text: String,
    pub citations: Vec<Citation>,
    /// The answer clause by clause with its sources.
    pub attributions: Vec<Attribution>,
    /// How well the retrieved documents match the question (best cosine similarity of
    /// a retrieved sentence to it).
    pub grounding: f64,
    /// True when the documents did not match the question well enough: the text says
    /// so and nothing was generated.
    pub abstained: bool,
    pub stats: AnswerStats,
}

/// One question of a conversation and its answer.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ChatTurn {
    pub question: String,
    /// The question as it was asked of the documents, with the words it leaned on.
    pub standalone: String,
    pub answer: String,
}

impl From<&pith_core::Turn> for ChatTurn {
    fn from(t: &pith_core::Turn) -> Self {
        Self {
            question: t.question.clone(),
            standalone: t.standalone.clone(),
            answer: t.answer.clone(),
        }
    }
}

impl From<pith_core::IngestReport> for IngestResult {
    fn from(r: pith_core::IngestReport) -> Self {
        Self {
            document_id: r.document_id,
            passages: r.passages as u64,
            duplicate: r.duplicate,
        }
    }
}

impl From<&pith_core::IngestProgress> for IngestProgress {
    fn from(p: &pith_core::IngestProgress) -> Self {
        Self {
            documents_done: p.documents_done as u64,
            documents_total: p.documents_total as u64,
            passages_done: p.passages_done as u64,
            passages_known: p.passages_known as u64,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            elapsed_s: p.elapsed.as_secs_f64(),
            passages_per_s: p.passages_per_s(),
            eta_s: p.eta().map(|t| t.as_secs_f64()),
        }
    }
}

impl DocumentOutcome {
    pub(crate) fn new(path: &str, outcome: pith_core::Result<pith_core::IngestReport>) -> Self {
        let (result, error) = match outcome {
            Ok(r) => (Some(r.into()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Self {
            path: path.to_string(),
            result,
            error,
        }
    }
}

impl From<pith_core::IngestSummary> for IngestSummary {
    fn from(s: pith_core::IngestSummary) -> Self {
        Self {
            added: s.added as u64,
            duplicates: s.duplicates as u64,
            failed: s.failed as u64,
            passages: s.passages as u64,
        }
    }
}

impl From<pith_core::SyncReport> for SyncReport {
    fn from(r: pith_core::SyncReport) -> Self {
        Self {
            added: r.added,
            updated: r.updated,
            removed: r.removed,
            duplicates: r.duplicates,
            failed: r
                .failed
                .into_iter()
                .map(|f| SyncFailure {
                    path: f.path,
                    error: f.error,
                })
                .collect(),
            unchanged: r.unchanged as u64,
            passages: r.passages as u64,
        }
    }
}

impl From<pith_core::DocumentInfo> for Document {
    fn from(d: pith_core::DocumentInfo) -> Self {
        Self {
            id: d.id,
            source: d.source,
            metadata_json: d.metadata.to_string(),
            chars: d.chars as u64,
            passages: d.passages as u64,
            created_at: d.created_at,
        }
    }
}

impl From<pith_core::Hit> for SearchHit {
    fn from(h: pith_core::Hit) -> Self {
        let p = h.passage;
        Self {
            document_id: p.document_id,
            passage_id: p.id,
            source: p.source,
            text: p.text,
            start_char: p.start_char as u64,
            end_char: p.end_char as u64,
            score: h.score,
            page: p.page,
            heading: p.heading,
        }
    }
}

impl From<SearchMethod> for pith_core::Method {
    fn from(m: SearchMethod) -> Self {
        match m {
            SearchMethod::Hybrid => Self::Hybrid,
            SearchMethod::Vector => Self::Vector,
            SearchMethod::Bm25 => Self::Bm25,
        }
    }
}

impl From<&AskConfig> for pith_core::AskOptions {
    fn from(c: &AskConfig) -> Self {
        Self::from_knobs(
            c.k as usize,
            c.rerank,
            pith_core::Budget::from_knobs(c.prune_ratio, c.prune_budget as usize),
            c.abstain_below,
            c.max_tokens as usize,
            c.temperature,
            c.seed,
        )
    }
}

impl From<pith_core::Answer> for Answer {
    fn from(a: pith_core::Answer) -> Self {
        let t = a.timings;
        Self {
            text: a.text,
            citations: a
                .citations
                .into_iter()
                .map(|c| Citation {
                    document_id: c.document_id,
                    passage_id: c.passage_id,
                    source: c.source,
                    start_char: c.start_char as u64,
                    end_char: c.end_char as u64,
                    snippet: c.snippet,
                    page: c.page,
                    heading: c.heading,
                })
                .collect(),
            attributions: a.attributions.into_iter().map(Attribution::from).collect(),
            grounding: a.grounding,
            abstained: a.abstained,
            stats: AnswerStats {
                context_tokens_before: a.context_tokens_before as u64,
                context_tokens_after: a.context_tokens_after as u64,
                context_tokens_reused: a.context_tokens_reused as u64,
                prompt_tokens: a.prompt_tokens as u64,
                generated_tokens: a.generated_tokens as u64,
                truncated: a.stop == StopReason::MaxTokens,
                retrieve_ms: t.retrieve_ms,
                prune_ms: t.prune_ms,
                prefill_ms: t.prefill_ms,
                decode_ms: t.decode_ms,
                first_token_ms: t.first_token_ms,
            },
        }
    }
}

impl From<pith_core::Attribution> for Attribution {
    fn from(a: pith_core::Attribution) -> Self {
        Self {
            start_char: a.start_char as u64,
            end_char: a.end_char as u64,
            supported: a.supported,
            supports: a
                .supports
                .into_iter()
                .map(|s| Support {
                    citation_index: s.citation as u64,
                    start_char: s.start_char as u64,
                    end_char: s.end_char as u64,
                    text: s.text,
                    score: s.score,
                })
                .collect(),
        }
    }
}
