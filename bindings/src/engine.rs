//! The engine object, its listeners and the cancel handle.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pith_core::model::llama;
use pith_core::{AskOptions, DeviceChoice, EngineOptions, IngestControl, SearchOptions};

use crate::error::PithError;
use crate::records::{
    Answer, AskConfig, ChatTurn, Device, Document, DocumentOutcome, EngineConfig, IngestProgress,
    IngestResult, IngestSummary, Precision, SearchHit, SearchMethod, SyncReport,
};

/// Receives ingest progress: passages embedded so far, and the document's total.
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    fn on_progress(&self, done: u64, total: u64);
}

/// Receives the progress of `ingest_files` and each file's outcome.
#[uniffi::export(with_foreign)]
pub trait IngestListener: Send + Sync {
    /// After each batch of passages embedded and each finished file; returning false
    /// cancels the ingest.
    fn on_progress(&self, progress: IngestProgress) -> bool;
    /// Once per file: stored, found already stored, or failed (and skipped).
    fn on_document(&self, outcome: DocumentOutcome);
}

/// Receives each new piece of an answer as it is generated (never a broken character).
#[uniffi::export(with_foreign)]
pub trait AnswerListener: Send + Sync {
    fn on_text(&self, text: String);
}

/// Cancels a running `ask`, `ingest_files` or `sync` from any thread.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelHandle(AtomicBool);

#[uniffi::export]
impl CancelHandle {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The call using this handle stops soon with `PithError.Cancelled`.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears the handle so it can serve another call.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst)
    }
}

/// An open pith engine; safe to use from several threads at once.
#[derive(uniffi::Object)]
pub struct Engine(pith_core::Engine);

#[uniffi::export]
impl Engine {
    /// Loads the embedder and opens (or creates) the database.
    #[uniffi::constructor]
    pub fn open(config: EngineConfig) -> Result<Arc<Self>, PithError> {
        let mut options = EngineOptions::new(config.models_dir, config.db_path);
        options.embedder = config.embedder_dir.map(Into::into);
        options.generator = config.generator_path.map(Into::into);
        options.device = match config.device {
            Some(Device::Cpu) => DeviceChoice::Cpu,
            Some(Device::Gpu) => DeviceChoice::Gpu,
            None => DeviceChoice::Auto,
        };
        options.threads = config.threads as usize;
        options.precision = config.precision.map(|p| match p {
            Precision::F16 => llama::Precision::F16,
            Precision::F32 => llama::Precision::F32,
            Precision::Q => llama::Precision::Q,
        });
        Ok(Arc::new(Self(pith_core::Engine::open(options)?)))
    }

    /// The device in use: Gpu, or Cpu when asked for or when no GPU was found.
    pub fn device(&self) -> Device {
        match self.0.device().kind {
            DeviceChoice::Gpu => Device::Gpu,
            DeviceChoice::Cpu | DeviceChoice::Auto => Device::Cpu,
        }
    }

    /// Why the engine runs on the CPU although the GPU was asked for, if it does.
    pub fn device_warning(&self) -> Option<String> {
        self.0.device().warning.clone()
    }

    /// Chunks, embeds and stores one document in one transaction. `metadata_json` is a
    /// JSON object; identical content already stored is not stored twice.
    pub fn ingest_text(
        &self,
        source: String,
        text: String,
        metadata_json: Option<String>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<IngestResult, PithError> {
        let metadata = metadata_json.as_deref().unwrap_or("{}");
        let mut report = progress_fn(progress);
        Ok(self
            .0
            .ingest_text(&source, &text, metadata, &mut report)?
            .into())
    }

    /// Reads a UTF-8 text file and ingests it; binary files are refused.
    pub fn ingest_file(
        &self,
        path: String,
        metadata_json: Option<String>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<IngestResult, PithError> {
        let metadata = metadata_json.as_deref().unwrap_or("{}");
        let mut report = progress_fn(progress);
        Ok(self
            .0
            .ingest_file(Path::new(&path), metadata, &mut report)?
            .into())
    }

    /// Ingests UTF-8 text files as a pipeline: files are read and chunked while the
    /// embedder runs, and each is stored in its own transaction. Files already stored
    /// (same content) are skipped, so a re-run after a crash finishes the rest; a failing
    /// file goes to `listener` and the others go on. Cancelled (by `listener` or
    /// `cancel`) it throws `PithError.Cancelled`: files already embedded are stored, none
    /// in part. Blocks: call it off the UI thread.
    pub fn ingest_files(
        &self,
        paths: Vec<String>,
        metadata_json: Option<String>,
        listener: Option<Arc<dyn IngestListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<IngestSummary, PithError> {
        let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
        let metadata = metadata_json.as_deref().unwrap_or("{}");
        let summary = with_control(listener, cancel, |control| {
            self.0.ingest_files(&paths, metadata, control)
        })?;
        Ok(summary.into())
    }

    /// Brings the documents read from files under `roots` (folders, searched
    /// recursively, or files) in line with the disk: new files ingested, changed ones
    /// re-ingested with the old document replaced in one transaction, deleted ones
    /// removed, unchanged ones (same size and modification time) skipped unread. Files
    /// are known by their path as given. A root that does not exist throws before
    /// anything changes. `listener` and `cancel` work as for `ingest_files`. Blocks: call
    /// it off the UI thread.
    pub fn sync(
        &self,
        roots: Vec<String>,
        metadata_json: Option<String>,
        listener: Option<Arc<dyn IngestListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<SyncReport, PithError> {
        let roots: Vec<PathBuf> = roots.into_iter().map(PathBuf::from).collect();
        let metadata = metadata_json.as_deref().unwrap_or("{}");
        let report = with_control(listener, cancel, |control| {
            self.0.sync(&roots, metadata, control)
        })?;
        Ok(report.into())
    }

    /// The stored documents, oldest first.
    pub fn documents(&self) -> Result<Vec<Document>, PithError> {
        Ok(self.0.documents()?.into_iter().map(Into::into).collect())
    }

    /// Deletes a document with all its passages; `NotFound` when there is none.
    pub fn delete_document(&self, document_id: i64) -> Result<(), PithError> {
        Ok(self.0.delete_document(document_id)?)
    }

    /// At most `k` passages, best first.
    pub fn search(
        &self,
        query: String,
        k: u32,
        method: SearchMethod,
    ) -> Result<Vec<SearchHit>, PithError> {
        let options = SearchOptions {
            k: k as usize,
            method: method.into(),
            ..SearchOptions::default()
        };
        Ok(self
            .0
            .search(&query, &options)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Answers from the stored documents, streaming the text to `listener`; `cancel`
    /// stops it from another thread with `PithError.Cancelled`. Blocks: call it off the
    /// UI thread, or use `ask_async`.
    pub fn ask(
        &self,
        question: String,
        config: AskConfig,
        listener: Option<Arc<dyn AnswerListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Answer, PithError> {
        streamed(listener, cancel, |on_text, cancel| {
            self.0
                .ask(&question, &AskOptions::from(&config), on_text, cancel)
        })
    }

    /// `ask` on a thread of its own: a Kotlin `suspend` function, a Swift `async` one.
    /// Cancelling the coroutine or task stops the generation too.
    pub async fn ask_async(
        self: Arc<Self>,
        question: String,
        config: AskConfig,
        listener: Option<Arc<dyn AnswerListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Answer, PithError> {
        off_thread(cancel, move |cancel| {
            self.ask(question, config, listener, Some(cancel))
        })
        .await
    }

    /// Answers `question` as the next question of `conversation`, as `ask` does; a
    /// question that leans on the one before it ("and when was it built?") is asked
    /// with the words it leaves out carried over from that question.
    pub fn chat(
        &self,
        conversation: Arc<Conversation>,
        question: String,
        config: AskConfig,
        listener: Option<Arc<dyn AnswerListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Answer, PithError> {
        streamed(listener, cancel, |on_text, cancel| {
            let mut turns = conversation.lock();
            self.0.chat(
                &mut turns,
                &question,
                &AskOptions::from(&config),
                on_text,
                cancel,
            )
        })
    }

    /// `chat` on a thread of its own, as `ask_async`.
    pub async fn chat_async(
        self: Arc<Self>,
        conversation: Arc<Conversation>,
        question: String,
        config: AskConfig,
        listener: Option<Arc<dyn AnswerListener>>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Answer, PithError> {
        off_thread(cancel, move |cancel| {
            self.chat(conversation, question, config, listener, Some(cancel))
        })
        .await
    }
}

/// The questions asked so far in one conversation with `Engine.chat`.
#[derive(Debug, Default, uniffi::Object)]
pub struct Conversation(Mutex<pith_core::Conversation>);

#[uniffi::export]
impl Conversation {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Forgets every question asked: the next one starts afresh.
    pub fn reset(&self) {
        self.lock().reset()
    }

    /// The questions so far, each as asked and as it was searched, with its answer.
    pub fn turns(&self) -> Vec<ChatTurn> {
        self.lock().turns().iter().map(Into::into).collect()
    }
}

impl Conversation {
    /// The turns, even after a panic in another chat (a turn is added only once
    /// answered, so they stay consistent).
    fn lock(&self) -> std::sync::MutexGuard<'_, pith_core::Conversation> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Answers with `answering`, streaming the text to `listener`.
fn streamed(
    listener: Option<Arc<dyn AnswerListener>>,
    cancel: Option<Arc<CancelHandle>>,
    answering: impl FnOnce(
        &mut dyn FnMut(&str) -> bool,
        Option<&AtomicBool>,
    ) -> pith_core::Result<pith_core::Answer>,
) -> Result<Answer, PithError> {
    let mut stream = |text: &str| {
        if let Some(l) = &listener {
            l.on_text(text.to_string());
        }
        true
    };
    let cancel = cancel.as_ref().map(|c| &c.0);
    Ok(answering(&mut stream, cancel)?.into())
}

/// Runs `work` on a thread of its own and awaits its answer; dropping the future
/// cancels the work through `cancel`.
async fn off_thread(
    cancel: Option<Arc<CancelHandle>>,
    work: impl FnOnce(Arc<CancelHandle>) -> Result<Answer, PithError> + Send + 'static,
) -> Result<Answer, PithError> {
    let cancel = cancel.unwrap_or_default();
    let mut stop_if_dropped = CancelOnDrop(Some(cancel.clone()));
    let (send, receive) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("pith-ask".into())
        .spawn(move || {
            let _ = send.send(work(cancel));
        })
        .map_err(|e| PithError::Device(format!("cannot start a thread: {e}")))?;
    let answer = receive.await;
    stop_if_dropped.0 = None;
    answer.map_err(|_| PithError::Cancelled("the ask thread ended without an answer".into()))?
}

/// Dropped with the future of `ask_async` before the answer came: a caller that stopped
/// waiting wants no answer, so its ask thread stops too.
/// Runs `work` with ingest callbacks that go to `listener`, cancelled by `cancel`.
fn with_control<T>(
    listener: Option<Arc<dyn IngestListener>>,
    cancel: Option<Arc<CancelHandle>>,
    work: impl FnOnce(IngestControl) -> pith_core::Result<T>,
) -> pith_core::Result<T> {
    let mut on_progress =
        |p: &pith_core::IngestProgress| listener.as_ref().is_none_or(|l| l.on_progress(p.into()));
    let mut on_document = |path: &str, outcome: pith_core::Result<pith_core::IngestReport>| {
        if let Some(l) = &listener {
            l.on_document(DocumentOutcome::new(path, outcome));
        }
    };
    work(IngestControl {
        progress: Some(&mut on_progress),
        document: Some(&mut on_document),
        cancel: cancel.as_ref().map(|c| &c.0),
    })
}

struct CancelOnDrop(Option<Arc<CancelHandle>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.cancel();
        }
    }
}

fn progress_fn(listener: Option<Arc<dyn ProgressListener>>) -> impl FnMut(usize, usize) {
    move |done, total| {
        if let Some(l) = &listener {
            l.on_progress(done as u64, total as u64);
        }
    }
}
