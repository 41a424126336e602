//! The engine: ingest, search and (with the generator) ask.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::chunk::{self, ChunkSize};
use crate::device::{self, DeviceChoice, OpenDevice};
use crate::error::{Error, Result};
use crate::model::bert::Embedder;
use crate::model::generate::{DEFAULT_CONTEXT, Generator};
use crate::model::llama::Precision;
use crate::store::{DocumentInfo, EmbedderId, Filter, Hit, Method, NewDocument, NewPassage, Store};

/// The largest document `ingest_text` takes. A document is one transaction whose
/// passages and vectors are held in memory until it commits; 32 MiB is about 50,000
/// passages, an hour of embedding on two CPU cores.
pub const MAX_DOCUMENT_BYTES: usize = 32 << 20;

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

/// What ingesting one document did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IngestReport {
    pub document_id: i64,
    pub source: String,
    pub passages: usize,
    /// True when the same content was already stored; nothing was written.
    pub duplicate: bool,
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

/// Reports progress as (passages embedded, passages in the document).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Passages are embedded in groups this large, so progress moves and memory stays flat.
const EMBED_GROUP: usize = 64;

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

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while the lock was held cannot leave SQLite half-written (transactions
        // roll back), so a poisoned lock is safe to keep using.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Chunks, embeds and stores one document. `metadata` is a JSON object ("{}" for none).
    pub fn ingest_text(
        &self,
        source: &str,
        text: &str,
        metadata: &str,
        progress: Progress,
    ) -> Result<IngestReport> {
        if text.trim().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "document {source:?} is empty"
            )));
        }
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::InvalidArgument(format!(
                "document {source:?} is {} MiB; pith ingests documents of up to {} MiB: split it",
                text.len() >> 20,
                MAX_DOCUMENT_BYTES >> 20
            )));
        }
        let hash = hex(&Sha256::digest(text.as_bytes()));
        if let Some(id) = self.store().find_by_hash(&hash)? {
            return Ok(IngestReport {
                document_id: id,
                source: source.to_string(),
                passages: 0,
                duplicate: true,
            });
        }
        let chunks = chunk::chunk(text, self.options.chunk, |s| self.embedder.token_ends(s));
        let mut passages = Vec::with_capacity(chunks.len());
        for group in chunks.chunks(EMBED_GROUP) {
            let texts: Vec<&str> = group.iter().map(|c| &text[c.bytes.clone()]).collect();
            let vectors = self.embedder.embed(&texts)?;
            passages.extend(group.iter().zip(vectors).map(|(c, embedding)| NewPassage {
                start_char: c.chars.start,
                end_char: c.chars.end,
                text: text[c.bytes.clone()].to_string(),
                embedding,
            }));
            progress(passages.len(), chunks.len());
        }
        let doc = NewDocument {
            source,
            content_hash: &hash,
            metadata,
            chars: text.chars().count(),
            passages: &passages,
        };
        let document_id = self.store().insert_document(&doc)?;
        Ok(IngestReport {
            document_id,
            source: source.to_string(),
            passages: passages.len(),
            duplicate: false,
        })
    }

    /// Reads a UTF-8 text file (txt, md...) and ingests it; binary files are refused.
    pub fn ingest_file(
        &self,
        path: &Path,
        metadata: &str,
        progress: Progress,
    ) -> Result<IngestReport> {
        let text = read_text_file(path)?;
        self.ingest_text(&path.to_string_lossy(), &text, metadata, progress)
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

/// Reads a text file, refusing binaries (NUL bytes) and invalid UTF-8 with a clear error.
pub fn read_text_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err(Error::InvalidArgument(format!(
            "{} is a binary file",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::InvalidArgument(format!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
