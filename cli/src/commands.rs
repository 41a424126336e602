//! The subcommands. Each opens the engine it needs and prints; the work is in pith-core.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use pith_core::eval::{self, EvalSet};
use pith_core::{
    DeviceChoice, Engine, EngineOptions, Error, Filter, Method, Result, SearchOptions,
};

pub struct Context {
    pub db: Option<PathBuf>,
    pub models: Option<PathBuf>,
    pub device: DeviceChoice,
}

impl Context {
    pub fn models_dir(&self) -> PathBuf {
        if let Some(m) = &self.models {
            return m.clone();
        }
        let local = PathBuf::from("models");
        if local.join("minilm").is_dir() {
            return local;
        }
        data_dir().join("models")
    }

    pub fn generator_path(&self) -> PathBuf {
        EngineOptions::new(self.models_dir(), "").generator_path()
    }

    /// Opens the device, warning when the GPU was asked for but is missing.
    pub fn device(&self) -> pith_core::device::OpenDevice {
        let dev = pith_core::device::open(self.device);
        if let Some(w) = &dev.warning {
            eprintln!("pith: warning: {w}");
        }
        dev
    }

    fn open_at(&self, db: PathBuf) -> Result<Engine> {
        let mut options = EngineOptions::new(self.models_dir(), db);
        options.device = self.device;
        let engine = Engine::open(options)?;
        if let Some(w) = &engine.device().warning {
            eprintln!("pith: warning: {w}");
        }
        Ok(engine)
    }

    pub fn open(&self) -> Result<Engine> {
        self.open_at(
            self.db
                .clone()
                .unwrap_or_else(|| data_dir().join("pith.db")),
        )
    }
}

fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("pith")
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} {{msg}} [{{elapsed}}]"
        ))
        .expect("valid template"),
    );
    bar
}

/// Text and markdown files under `paths`, in a stable order.
fn collect_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            entries.sort();
            out.extend(collect_files(&entries));
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn is_text_name(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_lowercase)
            .as_deref(),
        Some("txt" | "md" | "markdown" | "text" | "rst")
    )
}

pub fn ingest(ctx: &Context, paths: &[PathBuf], metadata: &str) -> Result<()> {
    let engine = ctx.open()?;
    let files = collect_files(paths);
    let bar = bar(files.len() as u64, "ingest");
    let (mut added, mut duplicates, mut skipped, mut passages) = (0, 0, 0, 0);
    for file in &files {
        bar.set_message(file.display().to_string());
        let outcome = if is_text_name(file) {
            engine.ingest_file(file, metadata, &mut |_, _| {})
        } else {
            Err(Error::InvalidArgument(format!(
                "{}: not a .txt or .md file",
                file.display()
            )))
        };
        match outcome {
            Ok(r) if r.duplicate => duplicates += 1,
            Ok(r) => {
                added += 1;
                passages += r.passages;
            }
            Err(e) => {
                bar.suspend(|| eprintln!("pith: warning: skipped {}: {e}", file.display()));
                skipped += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "ingested {added} document(s) ({passages} passages); {duplicates} already present; {skipped} skipped; database {}",
        engine.options().db_path.display()
    );
    Ok(())
}

fn parse_filter(documents: Vec<i64>, wheres: &[String]) -> Result<Filter> {
    let metadata = wheres
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| Error::InvalidArgument(format!("--where {w:?} is not KEY=VALUE")))?;
            // A value that parses as JSON (number, true) is matched as such; anything else as a string.
            let value =
                serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
            Ok((k.to_string(), value))
        })
        .collect::<Result<_>>()?;
    Ok(Filter {
        documents,
        metadata,
    })
}

pub fn search(
    ctx: &Context,
    query: &str,
    k: usize,
    method: Method,
    documents: Vec<i64>,
    wheres: &[String],
    json: bool,
) -> Result<()> {
    let engine = ctx.open()?;
    let options = SearchOptions {
        k,
        method,
        filter: parse_filter(documents, wheres)?,
    };
    let hits = engine.search(query, &options)?;
    if json {
        let items: Vec<_> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "score": h.score,
                    "document_id": h.passage.document_id,
                    "source": h.passage.source,
                    "passage_id": h.passage.id,
                    "start_char": h.passage.start_char,
                    "end_char": h.passage.end_char,
                    "vector_rank": h.vector_rank,
                    "bm25_rank": h.bm25_rank,
                    "text": h.passage.text,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    if hits.is_empty() {
        println!("no results");
    }
    for (i, h) in hits.iter().enumerate() {
        println!(
            "{}. [{:.4}] {} (doc {}, chars {}..{})",
            i + 1,
            h.score,
            h.passage.source,
            h.passage.document_id,
            h.passage.start_char,
            h.passage.end_char
        );
        println!("   {}\n", snippet(&h.passage.text, 240));
    }
    Ok(())
}

pub fn snippet(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

pub fn docs(ctx: &Context, json: bool) -> Result<()> {
    let docs = ctx.open()?.documents()?;
    if json {
        println!("{}", serde_json::to_string(&docs).expect("serialisable"));
        return Ok(());
    }
    for d in &docs {
        println!(
            "{:>5}  {:>6} chars  {:>4} passages  {}  {}",
            d.id, d.chars, d.passages, d.source, d.metadata
        );
    }
    println!("{} document(s)", docs.len());
    Ok(())
}

pub fn delete(ctx: &Context, ids: &[i64]) -> Result<()> {
    let engine = ctx.open()?;
    for &id in ids {
        engine.delete_document(id)?;
        println!("deleted document {id}");
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Recall@1, recall@5 and MRR of vector, BM25 and hybrid search.
    Retrieval {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Evidence recall of attention pruning and the baselines at 2x, 4x and 8x.
    Prune {
        dir: PathBuf,
        /// Evaluate only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

fn eval_prune(ctx: &Context, dir: &Path, limit: Option<usize>, json: bool) -> Result<()> {
    let set = EvalSet::load(dir)?;
    let dev = ctx.device();
    let generator = pith_core::model::generate::Generator::load(
        &ctx.generator_path(),
        &dev.device,
        pith_core::model::generate::DEFAULT_CONTEXT,
    )?;
    let embedder = pith_core::model::bert::Embedder::load(
        &EngineOptions::new(ctx.models_dir(), "").embedder_dir(),
        &dev.device,
    )?;
    let n = limit
        .unwrap_or(set.questions.len())
        .min(set.questions.len());
    let bar = bar(n as u64, "eval prune");
    let report = eval::prune::evaluate(&generator, &embedder, &set, limit, &mut |i, _| {
        bar.set_position(i as u64)
    })?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::to_string(&report.recall).expect("serialisable")
        );
        return Ok(());
    }
    let print = |title: &str, recall: &eval::prune::Recall| {
        println!(
            "{title}\n{:<26} {:>6} {:>6} {:>6}",
            "method", "2x", "4x", "8x"
        );
        for (m, r) in recall {
            println!("{m:<26} {:>6.3} {:>6.3} {:>6.3}", r["2x"], r["4x"], r["8x"]);
        }
    };
    print(
        &format!("evidence recall, {} questions", report.questions),
        &report.recall,
    );
    print(
        "\non the odd-numbered questions only (held out from head selection)",
        &report.check_recall,
    );
    println!("\nbest single heads at 4x (selected on even questions, checked on odd):");
    for h in &report.heads {
        println!(
            "  layer {:>2} head {}  {:.3}  {:.3}",
            h.layer, h.head, h.selection, h.check
        );
    }
    Ok(())
}

pub fn eval(ctx: &Context, what: EvalCommand) -> Result<()> {
    match what {
        EvalCommand::Prune { dir, limit, json } => eval_prune(ctx, &dir, limit, json),
        EvalCommand::Retrieval { dir, json } => {
            let set = EvalSet::load(&dir)?;
            // A fresh database, so the figures are about this set alone.
            let tmp = std::env::temp_dir().join(format!("pith-eval-{}.db", std::process::id()));
            let engine = ctx.open_at(ctx.db.clone().unwrap_or_else(|| tmp.clone()))?;
            let bar = bar(set.questions.len() as u64, "eval");
            let report = eval::retrieval(&engine, &set, &mut |n, _| bar.set_position(n as u64));
            bar.finish_and_clear();
            drop(engine);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
            }
            let report = report?;
            if json {
                println!("{}", serde_json::to_string(&report).expect("serialisable"));
            } else {
                println!(
                    "{:<8} {:>9} {:>9} {:>7}",
                    "method", "recall@1", "recall@5", "MRR"
                );
                for (name, m) in &report {
                    println!(
                        "{name:<8} {:>9.3} {:>9.3} {:>7.3}",
                        m.recall_at_1, m.recall_at_5, m.mrr
                    );
                }
                println!(
                    "({} questions, {} passages)",
                    set.questions.len(),
                    set.corpus.len()
                );
            }
            Ok(())
        }
    }
}
