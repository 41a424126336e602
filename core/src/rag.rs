//! The engine: ingest, search and (with the generator) ask.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::chunk::ChunkSize;
use crate::device::{self, DeviceChoice, OpenDevice};
use crate::error::{Error, Result};
use crate::ingest::{
    self, IngestControl, IngestProgress, IngestReport, IngestSummary, Job, Source,
};
use crate::model::bert::Embedder;
use crate::model::generate::{DEFAULT_CONTEXT, Generator};
use crate::model::llama::Precision;
use crate::store::{DocumentInfo, EmbedderId, Filter, Hit, Method, Store};
use crate::sync::{self, SyncReport};

/// How to open an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Directory with `minilm/` and `smollm2/` as `scripts/fetch-models` lays them out.
    pub models_dir: PathBuf,
    /// The SQLite database; created when missing.
    pub db_path: PathBuf,
    pub device: DeviceChoice,
    pub chunk: ChunkSize,
    /// The embedder's directory, when not `models_dir/minilm`.
    pub embedder: Option<PathBuf>,
    /// The generator's GGUF file, when not the bundled SmolLM2 in `models_dir`.
    pub generator: Option<PathBuf>,
    /// CPU threads for the flex device; 0 uses every core. Process-wide: the thread pool
    /// is set by the first engine that asks, and a later engine cannot change it.
    pub threads: usize,
    /// The generator's weight precision; `None` is [`Precision::default`] (as stored).
    pub precision: Option<Precision>,
}

impl EngineOptions {
    pub fn new(models_dir: impl Into<PathBuf>, db_path: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            db_path: db_path.into(),
            device: DeviceChoice::default(),
            chunk: ChunkSize::default(),
            embedder: None,
            generator: None,
            threads: 0,
            precision: None,
        }
    }

    pub fn embedder_dir(&self) -> PathBuf {
        self.embedder
            .clone()
            .unwrap_or_else(|| self.models_dir.join("minilm"))
    }

    pub fn generator_path(&self) -> PathBuf {
        self.generator.clone().unwrap_or_else(|| {
            self.models_dir
                .join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        })
    }
}

/// Search options.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub k: usize,
    pub method: Method,
    pub filter: Filter,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            k: 5,
            method: Method::Hybrid,
            filter: Filter::default(),
        }
    }
}

/// Reports a document's progress as (passages embedded, passages in the document).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// The pith engine. Safe to share between threads.
pub struct Engine {
    options: EngineOptions,
    device: OpenDevice,
    embedder: Embedder,
    store: Mutex<Store>,
    /// Loaded on the first question, so ingest-only apps never pay for it.
    generator: Mutex<Option<Arc<Generator>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads the embedder on the chosen device and opens the database.
    pub fn open(options: EngineOptions) -> Result<Self> {
        if options.threads > 0 {
            set_threads(options.threads)?;
        }
        let device = device::open(options.device);
        let embedder = Embedder::load(&options.embedder_dir(), &device.device)?;
        let id = EmbedderId {
            name: embedder.name().to_string(),
            dim: embedder.dim(),
        };
        let store = Store::open(&options.db_path, &id)?;
        Ok(Self {
            options,
            device,
            embedder,
            store: Mutex::new(store),
            generator: Mutex::new(None),
        })
    }

    /// The generator, loading it on first use.
    pub fn generator(&self) -> Result<Arc<Generator>> {
        let mut slot = self.generator.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = slot.as_ref() {
            return Ok(g.clone());
        }
        let g = Arc::new(Generator::load(
            &self.options.generator_path(),
            &self.device.device,
            DEFAULT_CONTEXT,
            self.options.precision.unwrap_or_default(),
        )?);
        *slot = Some(g.clone());
        Ok(g)
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The device in use, and a warning when the GPU was asked for but is missing.
    pub fn device(&self) -> &OpenDevice {
        &self.device
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while the lock was held cannot leave SQLite half-written (transactions
        // roll back), so a poisoned lock is safe to keep using.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ingests documents as a pipeline (see [`crate::ingest`]): each is stored in its
    /// own transaction, content already stored is skipped, and a failing document is
    /// reported to `control.document` while the rest go on. `metadata` is a JSON object
    /// ("{}" for none) given to every document.
    pub fn ingest(
        &self,
        sources: &[Source],
        metadata: &str,
        control: IngestControl,
    ) -> Result<IngestSummary> {
        let jobs: Vec<Job> = sources.iter().copied().map(Job::from).collect();
        ingest::run(self, &jobs, metadata, control)
    }

    /// Ingests UTF-8 text files (txt, md...) as [`Engine::ingest`] does.
    pub fn ingest_files(
        &self,
        paths: &[PathBuf],
        metadata: &str,
        control: IngestControl,
    ) -> Result<IngestSummary> {
        let sources: Vec<Source> = paths.iter().map(|p| Source::File(p)).collect();
        self.ingest(&sources, metadata, control)
    }

    /// Chunks, embeds and stores one document. `metadata` is a JSON object ("{}" for none).
    pub fn ingest_text(
        &self,
        source: &str,
        text: &str,
        metadata: &str,
        progress: Progress,
    ) -> Result<IngestReport> {
        self.ingest_one(Source::Text { name: source, text }, metadata, progress)
    }

    /// Reads a UTF-8 text file (txt, md...) and ingests it; binary files are refused.
    pub fn ingest_file(
        &self,
        path: &Path,
        metadata: &str,
        progress: Progress,
    ) -> Result<IngestReport> {
        self.ingest_one(Source::File(path), metadata, progress)
    }

    fn ingest_one(
        &self,
        source: Source,
        metadata: &str,
        progress: Progress,
    ) -> Result<IngestReport> {
        let mut outcome = None;
        self.ingest(
            &[source],
            metadata,
            IngestControl {
                progress: Some(&mut |p: &IngestProgress| {
                    progress(p.passages_done, p.passages_known);
                    true
                }),
                document: Some(&mut |_: &str, result| outcome = Some(result)),
                cancel: None,
            },
        )?;
        outcome.expect("one source, one outcome")
    }

    /// Brings the documents read from files under `roots` (folders or files) in line
    /// with the disk: new files ingested, changed ones replaced, deleted ones removed,
    /// unchanged ones skipped unread. See [`crate::sync`]. `control` reports and cancels
    /// the ingest part as for [`Engine::ingest`].
    pub fn sync(
        &self,
        roots: &[PathBuf],
        metadata: &str,
        control: IngestControl,
    ) -> Result<SyncReport> {
        sync::run(self, roots, metadata, control)
    }

    pub fn documents(&self) -> Result<Vec<DocumentInfo>> {
        self.store().documents()
    }

    /// Deletes a document with all its passages; `NotFound` when there is no such id.
    pub fn delete_document(&self, id: i64) -> Result<()> {
        if self.store().delete_document(id)? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("document {id}")))
        }
    }

    pub fn search(&self, query: &str, options: &SearchOptions) -> Result<Vec<Hit>> {
        if query.trim().is_empty() {
            return Err(Error::InvalidArgument("the query is empty".into()));
        }
        let embedding = self.embedder.embed(&[query])?.remove(0);
        self.store().search(
            query,
            &embedding,
            options.k,
            options.method,
            &options.filter,
        )
    }

    /// Runs `f` on the store, for checks and tools.
    pub fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store())
    }
}

/// Sizes the CPU thread pool of the flex device; it can be set once per process.
fn set_threads(n: usize) -> Result<()> {
    if rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .is_ok()
        || rayon::current_num_threads() == n
    {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "threads = {n}: this process already runs {} CPU threads, set by an earlier engine",
        rayon::current_num_threads()
    )))
}
