//! pith-eval: evaluation, benchmark inputs and soak runs on a SQuAD-style set
//! (`corpus.jsonl`, `questions.jsonl`), as `eval/README.md` (a copy of
//! `../shared/eval/README.md`) describes. A tool for the CLI and the tests, not part of
//! the shipped library.

use std::collections::BTreeMap;
use std::path::Path;

use pith_core::{Engine, SearchOptions};
use pith_core::{Error, Result};
use pith_core::{Filter, Method};

#[derive(Debug, Clone, serde::Deserialize)]
pub struct CorpusPassage {
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub answers: Vec<String>,
    pub gold: String,
    pub answer_spans: Vec<(usize, usize)>,
    pub context: Vec<String>,
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_jsonl(&text, path)
}

/// One value a non-blank line; `path` names the file in errors.
fn parse_jsonl<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<Vec<T>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                Error::InvalidArgument(format!("{} line {}: {e}", path.display(), i + 1))
            })
        })
        .collect()
}

/// An evaluation set read from a directory.
pub struct EvalSet {
    pub corpus: Vec<CorpusPassage>,
    pub questions: Vec<Question>,
}

impl EvalSet {
    pub fn load(dir: &Path) -> Result<Self> {
        Ok(Self {
            corpus: read_jsonl(&dir.join("corpus.jsonl"))?,
            questions: read_jsonl(&dir.join("questions.jsonl"))?,
        })
    }

    /// The first `limit` questions, or all.
    pub fn first(&self, limit: Option<usize>) -> &[Question] {
        &self.questions[..limit.unwrap_or(usize::MAX).min(self.questions.len())]
    }

    /// The texts of a question's context passages, and the index of the gold one.
    pub fn context(&self, q: &Question) -> Result<(Vec<&str>, usize)> {
        let texts = q
            .context
            .iter()
            .map(|id| {
                self.corpus
                    .iter()
                    .find(|p| p.id == *id)
                    .map(|p| p.text.as_str())
                    .ok_or_else(|| Error::InvalidArgument(format!("passage {id} not in corpus")))
            })
            .collect::<Result<Vec<_>>>()?;
        let gold = q.context.iter().position(|c| *c == q.gold).ok_or_else(|| {
            Error::InvalidArgument(format!("question {}: gold not in context", q.id))
        })?;
        Ok((texts, gold))
    }
}

/// Recall@1, recall@5 and mean reciprocal rank (over the top 10) of the gold passage.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RetrievalMetrics {
    #[serde(rename = "recall@1")]
    pub recall_at_1: f64,
    #[serde(rename = "recall@5")]
    pub recall_at_5: f64,
    pub mrr: f64,
}

const MRR_DEPTH: usize = 10;

/// The one file in `dir` named `<id>.<anything>`.
fn rendering(dir: &Path, id: &str) -> Result<std::path::PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_stem().is_some_and(|s| s == id))
        .ok_or_else(|| Error::NotFound(format!("no rendering of {id} in {}", dir.display())))
}

/// Ingests the corpus (each passage a document with metadata `{"id": ...}`) and scores
/// every question with vector, BM25 and hybrid search. With `documents`, each passage is
/// ingested from its rendering `documents/<id>.<ext>` (PDF, DOCX, HTML) instead, which
/// measures what extraction loses.
pub fn retrieval(
    engine: &Engine,
    set: &EvalSet,
    documents: Option<&Path>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BTreeMap<&'static str, RetrievalMetrics>> {
    let passages = ingest(engine, set, documents)?;
    let methods = [
        ("vector", Method::Vector),
        ("bm25", Method::Bm25),
        ("hybrid", Method::Hybrid),
    ];
    let mut ranks = vec![vec![]; methods.len()];
    for (n, q) in set.questions.iter().enumerate() {
        for (m, &(_, method)) in methods.iter().enumerate() {
            ranks[m].push(passages.rank(engine, &q.question, method, &q.gold)?);
        }
        progress(n + 1, set.questions.len());
    }
    Ok(methods
        .iter()
        .zip(ranks)
        .map(|(&(name, _), r)| (name, RetrievalMetrics::of(&r)))
        .collect())
}

impl RetrievalMetrics {
    /// The metrics of the gold passage's ranks (None: not in the top 10).
    pub fn of(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len().max(1) as f64;
        let share =
            |f: &dyn Fn(usize) -> f64| ranks.iter().flatten().map(|&r| f(r)).sum::<f64>() / n;
        Self {
            recall_at_1: share(&|r| f64::from(u8::from(r == 0))),
            recall_at_5: share(&|r| f64::from(u8::from(r < 5))),
            mrr: share(&|r| 1.0 / (r as f64 + 1.0)),
        }
    }
}

/// Which corpus passage each stored document is.
pub struct Passages(BTreeMap<i64, String>);

/// Ingests `set`'s corpus (see [`store`]) and maps the stored documents.
pub fn ingest(engine: &Engine, set: &EvalSet, documents: Option<&Path>) -> Result<Passages> {
    store(engine, set, documents)?;
    Passages::stored(engine)
}

/// Ingests `set`'s corpus, each passage a document with metadata `{"id": ...}` (from
/// its rendering in `documents` when given).
pub fn store(engine: &Engine, set: &EvalSet, documents: Option<&Path>) -> Result<()> {
    for p in &set.corpus {
        let metadata = serde_json::json!({ "id": p.id, "title": p.title }).to_string();
        match documents {
            Some(dir) => engine.ingest_file(&rendering(dir, &p.id)?, &metadata, &mut |_, _| {})?,
            None => engine.ingest_text(&p.id, &p.text, &metadata, &mut |_, _| {})?,
        };
    }
    Ok(())
}

impl Passages {
    /// Every stored document's corpus passage id.
    pub fn stored(engine: &Engine) -> Result<Self> {
        Ok(Self(
            engine
                .documents()?
                .into_iter()
                .filter_map(|d| Some((d.id, d.metadata.get("id")?.as_str()?.to_string())))
                .collect(),
        ))
    }

    /// The 0-based rank of passage `gold` when searching `query`, if in the top 10.
    pub fn rank(
        &self,
        engine: &Engine,
        query: &str,
        method: Method,
        gold: &str,
    ) -> Result<Option<usize>> {
        let options = SearchOptions {
            k: MRR_DEPTH * 3,
            method,
            filter: Filter::default(),
        };
        let hits = engine.search(query, &options)?;
        // Several passages of one document count once, at their best rank.
        let mut ranked: Vec<&str> = vec![];
        for h in &hits {
            if let Some(id) = self.0.get(&h.passage.document_id)
                && !ranked.contains(&id.as_str())
            {
                ranked.push(id);
            }
        }
        Ok(ranked.iter().take(MRR_DEPTH).position(|&id| id == gold))
    }
}

/// One head's figure, averaged over the selection (even-numbered) and the check
/// (odd-numbered) questions: heads are chosen on one half and checked on the other.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeadScore {
    pub layer: usize,
    pub head: usize,
    pub selection: f64,
    pub check: f64,
}

/// The twelve heads with the best selection-half mean of `totals` (per head, per half).
pub fn best_heads(
    heads: &[(usize, usize)],
    totals: &[[f64; 2]],
    counts: [usize; 2],
) -> Vec<HeadScore> {
    let mean = |x: f64, n: usize| if n == 0 { 0.0 } else { x / n as f64 };
    let mut best: Vec<HeadScore> = heads
        .iter()
        .zip(totals)
        .map(|(&(layer, head), t)| HeadScore {
            layer,
            head,
            selection: mean(t[0], counts[0]),
            check: mean(t[1], counts[1]),
        })
        .collect();
    best.sort_by(|a, b| b.selection.total_cmp(&a.selection));
    best.truncate(12);
    best
}

pub mod followup;
pub mod grounding;
pub mod prune;
pub mod qa;
pub mod rerank;
pub mod soak;

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
