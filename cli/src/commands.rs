//! The subcommands. Each opens the engine it needs and prints; the work is in pith-core.

use std::path::{Path, PathBuf};

use indicatif::{HumanDuration, ProgressBar, ProgressStyle};
use pith_core::device::OpenDevice;
use pith_core::extract::{EXTENSIONS, has_document_extension};
use pith_core::model::generate::{DEFAULT_CONTEXT, Generator};
use pith_core::model::llama::Precision;
use pith_core::{
    DeviceChoice, Engine, EngineOptions, Error, Filter, IngestControl, IngestProgress,
    IngestReport, Method, Result, SearchOptions,
};

pub struct Context {
    pub db: Option<PathBuf>,
    pub models: Option<PathBuf>,
    pub device: DeviceChoice,
    pub precision: Option<Precision>,
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
    pub fn device(&self) -> OpenDevice {
        let dev = pith_core::device::open(self.device);
        if let Some(w) = &dev.warning {
            eprintln!("pith: warning: {w}");
        }
        dev
    }

    /// Loads the generator on `device` with the precision asked for.
    pub fn generator(&self, dev: &OpenDevice) -> Result<Generator> {
        let precision = self.precision.unwrap_or_default();
        Generator::load(
            &self.generator_path(),
            &dev.device,
            DEFAULT_CONTEXT,
            precision,
        )
    }

    pub fn open_at(&self, db: PathBuf) -> Result<Engine> {
        let mut options = EngineOptions::new(self.models_dir(), db);
        options.device = self.device;
        options.precision = self.precision;
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

pub fn bar(len: u64, what: &str) -> ProgressBar {
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

/// Runs `work` with a progress bar for ingesting (by bytes) that also warns of each
/// document skipped; the bar is gone when it returns.
pub fn with_ingest_bar<T>(what: &str, work: impl FnOnce(IngestControl) -> Result<T>) -> Result<T> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{bytes}}/{{total_bytes}} {{msg}} [{{elapsed}}]"
        ))
        .expect("valid template"),
    );
    let mut on_progress = |p: &IngestProgress| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        let eta = p
            .eta()
            .map(|t| format!(", {} left", HumanDuration(t)))
            .unwrap_or_default();
        bar.set_message(format!(
            "{}/{} documents, {} passages, {:.1} passages/s{eta}",
            p.documents_done,
            p.documents_total,
            p.passages_done,
            p.passages_per_s()
        ));
        true
    };
    let mut on_document = |source: &str, outcome: Result<IngestReport>| {
        if let Err(e) = outcome {
            bar.suspend(|| eprintln!("pith: warning: skipped {source}: {e}"));
        }
    };
    let result = work(IngestControl {
        progress: Some(&mut on_progress),
        document: Some(&mut on_document),
        cancel: None,
    });
    bar.finish_and_clear();
    result
}

pub fn ingest(ctx: &Context, paths: &[PathBuf], metadata: &str) -> Result<()> {
    let engine = ctx.open()?;
    let (files, others): (Vec<PathBuf>, Vec<PathBuf>) = collect_files(paths)
        .into_iter()
        .partition(|f| has_document_extension(f));
    for f in &others {
        eprintln!(
            "pith: warning: skipped {}: not one of the formats pith reads ({})",
            f.display(),
            EXTENSIONS.join(", ")
        );
    }
    let started = std::time::Instant::now();
    let summary = with_ingest_bar("ingest", |control| {
        engine.ingest_files(&files, metadata, control)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "ingested {} document(s) ({} passages) in {seconds:.1} s, {:.1} passages/s; {} already present; {} skipped; database {}",
        summary.added,
        summary.passages,
        summary.passages as f64 / seconds.max(1e-9),
        summary.duplicates,
        summary.failed + others.len(),
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
                    "page": h.passage.page,
                    "heading": h.passage.heading,
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
            place(
                &h.passage.source,
                h.passage.page,
                h.passage.heading.as_deref()
            ),
            h.passage.document_id,
            h.passage.start_char,
            h.passage.end_char
        );
        println!("   {}\n", snippet(&h.passage.text, 240));
    }
    Ok(())
}

/// Where a passage is, as a reader looks it up: "manual.pdf, p. 12, § Safety".
pub fn place(source: &str, page: Option<u32>, heading: Option<&str>) -> String {
    let mut out = source.to_string();
    if let Some(page) = page {
        out.push_str(&format!(", p. {page}"));
    }
    if let Some(heading) = heading {
        out.push_str(&format!(", § {}", snippet(heading, 60)));
    }
    out
}

pub fn snippet(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

pub fn extract(path: &Path, json: bool) -> Result<()> {
    let doc = pith_core::extract::extract_file(path)?;
    if !json {
        println!("{}", doc.text);
        return Ok(());
    }
    let headings: Vec<_> = doc
        .layout
        .headings
        .iter()
        .map(|(start, heading)| serde_json::json!({ "start": start, "heading": heading }))
        .collect();
    let value = serde_json::json!({
        "text": doc.text,
        "pages": doc.layout.pages,
        "headings": headings,
    });
    println!("{value}");
    Ok(())
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
