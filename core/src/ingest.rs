//! Ingest: documents through the embedder as a pipeline. A reader thread reads, checks,
//! chunks and tokenises documents ahead of the embedder; the calling thread embeds
//! passages pooled across documents, so small files still fill a batch; a writer thread
//! stores each finished document in its own transaction. A kill or a cancel leaves every
//! document stored whole or absent, and a re-run skips what is stored (by content hash).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::chunk::{self, Chunk};
use crate::error::{Error, Result};
use crate::extract::{self, Layout};
use crate::rag::Engine;
use crate::store::{self, FileStamp, NewDocument, NewPassage, Store};

/// The largest document pith ingests. A document is one transaction whose passages and
/// vectors are held in memory until it commits; 32 MiB is about 50,000 passages, an hour
/// of embedding on two CPU cores.
pub const MAX_DOCUMENT_BYTES: usize = 32 << 20;

/// Passages per call to the embedder, pooled across documents.
const EMBED_BATCH: usize = 64;

/// Passages between reading and storing (chunked, embedded or waiting to be written):
/// what bounds ingest's memory whatever the corpus. A larger document still goes
/// through, alone.
const IN_FLIGHT: usize = 512;

/// The reader parses documents; a hostile one (deeply nested PDF objects or HTML)
/// must fail with an error, not overflow the stack.
const READER_STACK_BYTES: usize = 64 << 20;

/// One document to ingest.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A file of any format [`extract`] reads (text, Markdown, HTML, DOCX, PDF), named
    /// by its path.
    File(&'a Path),
    Text {
        name: &'a str,
        text: &'a str,
    },
}

impl<'a> Source<'a> {
    fn name(&self) -> String {
        match self {
            Source::File(path) => path.to_string_lossy().into_owned(),
            Source::Text { name, .. } => name.to_string(),
        }
    }

    /// The size counted for progress; 0 for a file that cannot be read (it fails later).
    fn len(&self) -> u64 {
        match self {
            Source::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Source::Text { text, .. } => text.len() as u64,
        }
    }

    /// The text, its layout, and for a file its stamp, taken before reading: a file
    /// changed while it is read is seen as changed by the next sync.
    fn read(&self) -> Result<(Cow<'a, str>, Layout, Option<FileStamp>)> {
        match *self {
            Source::File(path) => {
                let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
                let extracted = extract::extract_file(path)?;
                let stamp = FileStamp::of(&meta);
                Ok((Cow::Owned(extracted.text), extracted.layout, Some(stamp)))
            }
            Source::Text { text, .. } => Ok((Cow::Borrowed(text), Layout::default(), None)),
        }
    }
}

/// A source with the stored documents it replaces: the earlier versions of a file that
/// a sync found changed.
pub(crate) struct Job<'a> {
    pub source: Source<'a>,
    pub replaces: Vec<i64>,
}

impl<'a> From<Source<'a>> for Job<'a> {
    fn from(source: Source<'a>) -> Self {
        Job {
            source,
            replaces: Vec::new(),
        }
    }
}

/// What ingesting one document did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IngestReport {
    pub document_id: i64,
    pub source: String,
    pub passages: usize,
    /// True when the same content was already stored; nothing was written.
    pub duplicate: bool,
}

/// Where an ingest stands, handed to the progress callback.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestProgress {
    /// Documents stored, found already stored, or failed.
    pub documents_done: usize,
    pub documents_total: usize,
    /// Passages embedded.
    pub passages_done: usize,
    /// Passages of the documents chunked so far; grows as the reader goes ahead.
    pub passages_known: usize,
    /// Source bytes done; a document being embedded counts by its share of passages.
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub elapsed: Duration,
}

impl IngestProgress {
    pub fn passages_per_s(&self) -> f64 {
        self.passages_done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The time left at the rate so far, by bytes; `None` before any byte is done.
    pub fn eta(&self) -> Option<Duration> {
        if self.bytes_done == 0 {
            return None;
        }
        let left = self.bytes_total.saturating_sub(self.bytes_done) as f64;
        Some(self.elapsed.mul_f64(left / self.bytes_done as f64))
    }
}

/// The totals of one ingest call.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IngestSummary {
    pub added: usize,
    pub duplicates: usize,
    pub failed: usize,
    /// Passages stored.
    pub passages: usize,
}

/// Receives a document's name and outcome.
pub type OnDocument<'a> = &'a mut dyn FnMut(&str, Result<IngestReport>);

/// How an ingest call reports, and how it is cancelled. Callbacks run on the calling
/// thread.
#[derive(Default)]
pub struct IngestControl<'a> {
    /// Called after each embedder batch and each finished document; returning false
    /// cancels.
    pub progress: Option<&'a mut dyn FnMut(&IngestProgress) -> bool>,
    /// Called once per document (by name) when it is stored, found stored, or fails.
    pub document: Option<OnDocument<'a>>,
    /// Set from any thread to cancel: documents already embedded are stored, the rest
    /// are not started, and the call returns [`Error::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
}

/// Ingests `jobs` in order; per-document failures go to `control.document` and the
/// rest go on. Errs on a cancel, bad metadata, or a failing embedder.
pub(crate) fn run(
    engine: &Engine,
    jobs: &[Job],
    metadata: &str,
    control: IngestControl,
) -> Result<IngestSummary> {
    store::check_metadata(metadata)?;
    let budget = Budget::default();
    let mut run = Run {
        control,
        progress: IngestProgress {
            documents_total: jobs.len(),
            bytes_total: jobs.iter().map(|j| j.source.len()).sum(),
            ..IngestProgress::default()
        },
        started: Instant::now(),
        finished_bytes: 0,
        writer_bytes: 0,
        summary: IngestSummary::default(),
    };
    std::thread::scope(|scope| {
        let (read_tx, read_rx) = mpsc::channel();
        let (store_tx, store_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let budget = &budget;
        std::thread::Builder::new()
            .name("pith-ingest-reader".into())
            .stack_size(READER_STACK_BYTES)
            .spawn_scoped(scope, move || read_all(engine, jobs, budget, read_tx))
            .map_err(|e| Error::io("the ingest reader thread", e))?;
        scope.spawn(move || store_all(engine, metadata, budget, store_rx, done_tx));
        let embedded = {
            // Also on a panic, so the reader never waits for passages nobody will free.
            let _stop = StopOnDrop(budget);
            run.embed_all(engine, read_rx, store_tx, &done_rx)
        };
        // The writer finishes what it was handed, also after a cancel.
        for finished in done_rx {
            run.finish(finished);
        }
        embedded?;
        run.report(&VecDeque::new());
        Ok(run.summary)
    })
}

/// A document on its way from the reader through the embedder to the writer.
struct Doc<'a> {
    source: String,
    bytes: u64,
    text: Cow<'a, str>,
    layout: Layout,
    stamp: Option<FileStamp>,
    replaces: Vec<i64>,
    hash: String,
    chunks: Vec<Chunk>,
    tokens: Vec<Vec<u32>>,
    vectors: Vec<Vec<f32>>,
}

impl Doc<'_> {
    fn embedded(&self) -> bool {
        self.vectors.len() == self.tokens.len()
    }
}

/// What the reader hands on: a document to embed, or one that is done already.
enum Read<'a> {
    Embed(Doc<'a>),
    Done(Finished),
}

/// A document's outcome.
struct Finished {
    source: String,
    bytes: u64,
    /// Whether it went through the embedder (and so was counted at the writer).
    embedded: bool,
    outcome: Result<IngestReport>,
}

fn read_all<'a>(engine: &Engine, jobs: &[Job<'a>], budget: &Budget, out: Sender<Read<'a>>) {
    for job in jobs {
        let source = &job.source;
        if budget.stopped() {
            return;
        }
        let item = match prepare(engine, job) {
            Ok(Prepared::New(doc)) => {
                if !budget.take(doc.tokens.len()) {
                    return;
                }
                Read::Embed(doc)
            }
            Ok(Prepared::Stored(report)) => Read::Done(Finished {
                source: report.source.clone(),
                bytes: source.len(),
                embedded: false,
                outcome: Ok(report),
            }),
            Err(e) => Read::Done(Finished {
                source: source.name(),
                bytes: source.len(),
                embedded: false,
                outcome: Err(e),
            }),
        };
        if out.send(item).is_err() {
            return;
        }
    }
}

enum Prepared<'a> {
    New(Doc<'a>),
    /// The same content is stored already.
    Stored(IngestReport),
}

/// Reads, checks, hashes, chunks and tokenises one document.
fn prepare<'a>(engine: &Engine, job: &Job<'a>) -> Result<Prepared<'a>> {
    let name = job.source.name();
    let (text, layout, stamp) = job.source.read()?;
    if text.trim().is_empty() {
        return Err(Error::InvalidArgument(format!(
            "document {name:?} is empty"
        )));
    }
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(&name, text.len()));
    }
    let hash = hex(&Sha256::digest(text.as_bytes()));
    if let Some(report) =
        already_stored(&engine.store(), &hash, name.clone(), stamp, &job.replaces)?
    {
        return Ok(Prepared::Stored(report));
    }
    let embedder = engine.embedder();
    let chunks = chunk::chunk(&text, engine.options().chunk, |s| embedder.token_ends(s));
    let tokens = chunks
        .iter()
        .map(|c| embedder.encode(&text[c.bytes.clone()]))
        .collect::<Result<_>>()?;
    Ok(Prepared::New(Doc {
        source: name,
        bytes: text.len() as u64,
        hash,
        chunks,
        tokens,
        vectors: Vec::new(),
        text,
        layout,
        stamp,
        replaces: job.replaces.clone(),
    }))
}

/// The report for content stored already, or `None`. A file re-read with its content
/// unchanged keeps its document, with the new stamp; a file changed into content stored
/// for another loses its earlier versions.
fn already_stored(
    store: &Store,
    hash: &str,
    source: String,
    stamp: Option<FileStamp>,
    replaces: &[i64],
) -> Result<Option<IngestReport>> {
    let Some(id) = store.find_by_hash(hash)? else {
        return Ok(None);
    };
    let kept = replaces.contains(&id);
    let earlier: Vec<i64> = replaces.iter().copied().filter(|&r| r != id).collect();
    if kept || !earlier.is_empty() {
        store.keep_file(id, stamp.filter(|_| kept), &earlier)?;
    }
    Ok(Some(duplicate(id, source)))
}

fn duplicate(document_id: i64, source: String) -> IngestReport {
    IngestReport {
        document_id,
        source,
        passages: 0,
        duplicate: true,
    }
}

fn too_large(name: &str, bytes: usize) -> Error {
    Error::InvalidArgument(format!(
        "document {name:?} is {} MiB; pith ingests documents of up to {} MiB: split it",
        bytes >> 20,
        MAX_DOCUMENT_BYTES >> 20
    ))
}

fn store_all(
    engine: &Engine,
    metadata: &str,
    budget: &Budget,
    docs: Receiver<Doc>,
    out: Sender<Finished>,
) {
    for doc in docs {
        let passages = doc.tokens.len();
        let (source, bytes) = (doc.source.clone(), doc.bytes);
        let outcome = store(engine, metadata, doc);
        budget.give(passages);
        let finished = Finished {
            source,
            bytes,
            embedded: true,
            outcome,
        };
        if out.send(finished).is_err() {
            return;
        }
    }
}

/// Stores one embedded document in one transaction.
fn store(engine: &Engine, metadata: &str, doc: Doc) -> Result<IngestReport> {
    let passages: Vec<NewPassage> = doc
        .chunks
        .iter()
        .zip(doc.vectors)
        .map(|(c, embedding)| NewPassage {
            start_char: c.chars.start,
            end_char: c.chars.end,
            text: doc.text[c.bytes.clone()].to_string(),
            page: doc.layout.page_at(c.bytes.start),
            heading: doc.layout.heading_at(c.bytes.start).map(str::to_string),
            embedding,
        })
        .collect();
    let store = engine.store();
    // Two sources of this call can hold the same content; the first one stored wins.
    if let Some(report) = already_stored(
        &store,
        &doc.hash,
        doc.source.clone(),
        doc.stamp,
        &doc.replaces,
    )? {
        return Ok(report);
    }
    let document_id = store.insert_document(&NewDocument {
        source: &doc.source,
        content_hash: &doc.hash,
        metadata,
        chars: doc.text.chars().count(),
        passages: &passages,
        stamp: doc.stamp,
        replaces: &doc.replaces,
    })?;
    Ok(IngestReport {
        document_id,
        source: doc.source,
        passages: passages.len(),
        duplicate: false,
    })
}

/// The embedder's side of an ingest call: its counters and the caller's callbacks.
struct Run<'c> {
    control: IngestControl<'c>,
    progress: IngestProgress,
    started: Instant,
    /// Bytes of documents finished, and of those embedded but not yet stored.
    finished_bytes: u64,
    writer_bytes: u64,
    summary: IngestSummary,
}

impl Run<'_> {
    fn embed_all<'a>(
        &mut self,
        engine: &Engine,
        read: Receiver<Read<'a>>,
        store: Sender<Doc<'a>>,
        done: &Receiver<Finished>,
    ) -> Result<()> {
        let mut queue: VecDeque<Doc> = VecDeque::new();
        let mut reading = true;
        loop {
            // Pool what the reader has ready; wait for it only when nothing is left to embed.
            while reading && waiting(&queue) < EMBED_BATCH {
                let item = if queue.is_empty() {
                    read.recv().ok()
                } else {
                    match read.try_recv() {
                        Ok(item) => Some(item),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => None,
                    }
                };
                match item {
                    Some(Read::Embed(doc)) => {
                        self.progress.passages_known += doc.tokens.len();
                        queue.push_back(doc);
                    }
                    Some(Read::Done(finished)) => {
                        self.finish(finished);
                        if !self.report(&queue) {
                            return Err(Error::Cancelled);
                        }
                    }
                    None => reading = false,
                }
            }
            if !queue.is_empty() {
                self.embed_batch(engine, &mut queue)?;
            } else if !reading {
                return Ok(());
            }
            while queue.front().is_some_and(Doc::embedded) {
                let doc = queue.pop_front().expect("checked");
                self.writer_bytes += doc.bytes;
                if store.send(doc).is_err() {
                    // The writer stops early only by panicking, which the scope passes on.
                    return Ok(());
                }
            }
            while let Ok(finished) = done.try_recv() {
                self.finish(finished);
            }
            if !self.report(&queue) {
                return Err(Error::Cancelled);
            }
        }
    }

    /// Embeds the next `EMBED_BATCH` passages waiting, across as many documents as it takes.
    fn embed_batch(&mut self, engine: &Engine, queue: &mut VecDeque<Doc>) -> Result<()> {
        let mut rows: Vec<&[u32]> = Vec::with_capacity(EMBED_BATCH);
        let mut takes = Vec::new();
        for (d, doc) in queue.iter().enumerate() {
            let from = doc.vectors.len();
            let n = (doc.tokens.len() - from).min(EMBED_BATCH - rows.len());
            rows.extend(doc.tokens[from..from + n].iter().map(Vec::as_slice));
            takes.push((d, n));
            if rows.len() == EMBED_BATCH {
                break;
            }
        }
        let embedded = rows.len();
        let mut vectors = engine.embedder().embed_tokens(&rows)?.into_iter();
        for (d, n) in takes {
            queue[d].vectors.extend(vectors.by_ref().take(n));
        }
        self.progress.passages_done += embedded;
        Ok(())
    }

    fn finish(&mut self, finished: Finished) {
        self.progress.documents_done += 1;
        self.finished_bytes += finished.bytes;
        if finished.embedded {
            self.writer_bytes -= finished.bytes;
        }
        match &finished.outcome {
            Ok(r) if r.duplicate => self.summary.duplicates += 1,
            Ok(r) => {
                self.summary.added += 1;
                self.summary.passages += r.passages;
            }
            Err(_) => self.summary.failed += 1,
        }
        if let Some(f) = self.control.document.as_mut() {
            f(&finished.source, finished.outcome);
        }
    }

    /// Calls the progress callback; false when the caller cancels. `queue` holds the
    /// documents being embedded.
    fn report(&mut self, queue: &VecDeque<Doc>) -> bool {
        let partial: u64 = queue
            .iter()
            .map(|d| d.bytes * d.vectors.len() as u64 / d.tokens.len().max(1) as u64)
            .sum();
        self.progress.bytes_done = self.finished_bytes + self.writer_bytes + partial;
        self.progress.elapsed = self.started.elapsed();
        let go_on = self
            .control
            .progress
            .as_mut()
            .is_none_or(|f| f(&self.progress));
        go_on
            && !self
                .control
                .cancel
                .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// Passages read but not yet embedded.
fn waiting(queue: &VecDeque<Doc>) -> usize {
    queue.iter().map(|d| d.tokens.len() - d.vectors.len()).sum()
}

/// The passages in flight; the reader waits while they are spent.
#[derive(Default)]
struct Budget {
    used: Mutex<usize>,
    freed: Condvar,
    stop: AtomicBool,
}

impl Budget {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `n` more passages fit (anything fits when nothing is in flight);
    /// false once the ingest is stopping.
    fn take(&self, n: usize) -> bool {
        let used = self.lock();
        let mut used = self
            .freed
            .wait_while(used, |u| {
                *u > 0 && *u + n > IN_FLIGHT && !self.stop.load(Ordering::Relaxed)
            })
            .unwrap_or_else(|e| e.into_inner());
        if self.stopped() {
            return false;
        }
        *used += n;
        true
    }

    fn give(&self, n: usize) {
        *self.lock() -= n;
        self.freed.notify_all();
    }

    fn stop(&self) {
        let _used = self.lock();
        self.stop.store(true, Ordering::Relaxed);
        self.freed.notify_all();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

struct StopOnDrop<'a>(&'a Budget);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
