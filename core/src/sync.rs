//! Sync: keeps the documents read from folders (and files) the same as what is on disk
//! now. New files are ingested, changed ones re-ingested with the old document replaced
//! in the same transaction, deleted ones removed, and unchanged ones skipped by their
//! size and modification time, without being read.
//!
//! Files are known by the path they were ingested by, as `pith ingest` names them: a
//! folder synced as `notes` and as `/home/me/notes` is two folders to pith.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::extract;
use crate::ingest::{self, IngestControl, IngestReport, Job, Source};
use crate::rag::Engine;
use crate::store::{FileStamp, StoredFile};

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SyncReport {
    /// Files ingested for the first time.
    pub added: Vec<String>,
    /// Files whose content changed, re-ingested.
    pub updated: Vec<String>,
    /// Files gone from disk whose documents were deleted.
    pub removed: Vec<String>,
    /// Files whose content another file already holds; not stored a second time.
    pub duplicates: Vec<String>,
    /// Files (and folders) that could not be read, with why; their documents are kept.
    pub failed: Vec<SyncFailure>,
    /// Files skipped as unchanged.
    pub unchanged: usize,
    /// Passages stored.
    pub passages: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyncFailure {
    pub path: String,
    pub error: String,
}

impl SyncReport {
    /// Whether the sync changed the index.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty())
    }

    /// Files the ingest part of a sync finished: `source` had the documents `replaced`.
    fn record(&mut self, source: &str, replaced: &[i64], outcome: &Result<IngestReport>) {
        let source = source.to_string();
        match outcome {
            Ok(r) if r.duplicate && replaced.contains(&r.document_id) => self.unchanged += 1,
            Ok(r) if r.duplicate => self.duplicates.push(source),
            Ok(r) => {
                self.passages += r.passages;
                match replaced {
                    [] => self.added.push(source),
                    _ => self.updated.push(source),
                }
            }
            Err(e) => self.fail(source, e),
        }
    }

    fn fail(&mut self, path: String, error: &Error) {
        self.failed.push(SyncFailure {
            path,
            error: error.to_string(),
        });
    }
}

/// Syncs the files of the formats pith reads under `roots` (folders, recursively, or
/// single files); see the module's documentation. A root that does not exist is an
/// error before anything changes, so an unmounted folder does not empty the index.
pub(crate) fn run(
    engine: &Engine,
    roots: &[PathBuf],
    metadata: &str,
    control: IngestControl,
) -> Result<SyncReport> {
    let IngestControl {
        mut progress,
        mut document,
        cancel,
    } = control;
    crate::store::check_metadata(metadata)?;
    let mut report = SyncReport::default();
    let mut on_disk = Vec::new();
    for root in roots {
        std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        walk(root, &mut on_disk, &mut report);
    }
    // Roots can overlap (a folder and a file in it).
    on_disk.sort_by(|a, b| a.0.cmp(&b.0));
    on_disk.dedup_by(|a, b| a.0 == b.0);
    let stored = stored_files(engine, roots)?;
    let plan = Plan::new(on_disk, stored, &report.failed);
    report.unchanged = plan.unchanged;
    for (path, ids) in &plan.removed {
        engine.store().delete_documents(ids)?;
        report.removed.push(path.clone());
    }
    let jobs: Vec<Job> = plan
        .jobs
        .iter()
        .map(|(path, replaces)| Job {
            source: Source::File(path),
            replaces: replaces.clone(),
        })
        .collect();
    let replaced: HashMap<String, &[i64]> = plan
        .jobs
        .iter()
        .map(|(path, replaces)| (name(path), replaces.as_slice()))
        .collect();
    let mut on_document = |source: &str, outcome: Result<IngestReport>| {
        let replaced = replaced.get(source).copied().unwrap_or_default();
        report.record(source, replaced, &outcome);
        if let Some(f) = document.as_mut() {
            f(source, outcome);
        }
    };
    ingest::run(
        engine,
        &jobs,
        metadata,
        IngestControl {
            progress: progress.as_mut().map(|f| &mut **f as _),
            document: Some(&mut on_document),
            cancel,
        },
    )?;
    Ok(report)
}

/// The name a file's documents are stored under.
fn name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The files of the formats pith reads under `root`, in a stable order, with their
/// stamps; what cannot be read goes to `report.failed`. Links to folders are not
/// followed (they can loop); links to files are.
fn walk(root: &Path, out: &mut Vec<(PathBuf, FileStamp)>, report: &mut SyncReport) {
    let meta = match std::fs::metadata(root) {
        Ok(meta) => meta,
        Err(e) => return report.fail(name(root), &Error::io(root, e)),
    };
    if meta.is_file() {
        if extract::has_document_extension(root) {
            out.push((root.to_path_buf(), FileStamp::of(&meta)));
        }
        return;
    }
    let entries = std::fs::read_dir(root).and_then(|d| d.collect::<std::io::Result<Vec<_>>>());
    let mut entries = match entries {
        Ok(entries) => entries,
        Err(e) => return report.fail(name(root), &Error::io(root, e)),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let is_dir_link = entry.file_type().is_ok_and(|t| t.is_symlink()) && entry.path().is_dir();
        if !is_dir_link {
            walk(&entry.path(), out, report);
        }
    }
}

/// The documents stored from files under `roots`, by source.
fn stored_files(engine: &Engine, roots: &[PathBuf]) -> Result<HashMap<String, Vec<StoredFile>>> {
    let mut by_source: HashMap<String, Vec<StoredFile>> = HashMap::new();
    let mut seen = HashSet::new();
    for root in roots {
        for file in engine.store().files_under(&name(root))? {
            if seen.insert(file.id) {
                by_source.entry(file.source.clone()).or_default().push(file);
            }
        }
    }
    Ok(by_source)
}

/// What a sync does, decided from stamps alone.
struct Plan {
    /// Files to ingest, with the documents of their earlier versions.
    jobs: Vec<(PathBuf, Vec<i64>)>,
    /// Sources gone from disk, with their documents.
    removed: Vec<(String, Vec<i64>)>,
    unchanged: usize,
}

impl Plan {
    fn new(
        on_disk: Vec<(PathBuf, FileStamp)>,
        mut stored: HashMap<String, Vec<StoredFile>>,
        failed: &[SyncFailure],
    ) -> Plan {
        let mut plan = Plan {
            jobs: Vec::new(),
            removed: Vec::new(),
            unchanged: 0,
        };
        for (path, stamp) in on_disk {
            match stored.remove(&name(&path)).unwrap_or_default().as_slice() {
                [one] if one.stamp == Some(stamp) => plan.unchanged += 1,
                docs => plan.jobs.push((path, docs.iter().map(|d| d.id).collect())),
            }
        }
        // A file under a folder that could not be listed may still be there. By path
        // components, so that a folder named with a trailing slash still covers its files.
        let unreadable = |source: &str| {
            failed
                .iter()
                .any(|f| Path::new(source).starts_with(&f.path))
        };
        let mut removed: Vec<(String, Vec<i64>)> = stored
            .into_iter()
            .filter(|(source, _)| !unreadable(source))
            .map(|(source, docs)| (source, docs.iter().map(|d| d.id).collect()))
            .collect();
        removed.sort();
        plan.removed = removed;
        plan
    }
}
