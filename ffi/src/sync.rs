//! Keeping folders in sync: new files ingested, changed ones replaced, deleted ones
//! removed, unchanged ones skipped unread.

use std::ffi::{c_char, c_void};

use pith_core::SyncReport;

use crate::cancel::pith_cancel;
use crate::convert::{c_string, opt_str_arg};
use crate::engine::{engine, pith_engine};
use crate::ingest::{path_args, pith_ingest_progress_fn, with_callbacks};
use crate::status::{guard, pith_status};

/// What a sync did to one file.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pith_change {
    /// Ingested for the first time.
    PITH_CHANGE_ADDED = 0,
    /// Its content changed: re-ingested, the old document replaced.
    PITH_CHANGE_UPDATED = 1,
    /// Gone from disk: its documents deleted.
    PITH_CHANGE_REMOVED = 2,
    /// Its content is stored already for another file: not stored twice.
    PITH_CHANGE_DUPLICATE = 3,
    /// It (or a folder) could not be read: its documents are kept.
    PITH_CHANGE_FAILED = 4,
}

/// Called once per file a sync changed or failed on, after the sync: `error` is the
/// reason for PITH_CHANGE_FAILED and NULL otherwise. The strings live for the call.
pub type pith_change_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        path: *const c_char,
        change: pith_change,
        error: *const c_char,
    ),
>;

/// The totals of a pith_sync call.
#[repr(C)]
#[derive(Debug, Default)]
pub struct pith_sync_summary {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub duplicates: usize,
    pub failed: usize,
    /// Files skipped as unchanged.
    pub unchanged: usize,
    /// Passages stored.
    pub passages: usize,
}

impl From<&SyncReport> for pith_sync_summary {
    fn from(r: &SyncReport) -> Self {
        Self {
            added: r.added.len(),
            updated: r.updated.len(),
            removed: r.removed.len(),
            duplicates: r.duplicates.len(),
            failed: r.failed.len(),
            unchanged: r.unchanged,
            passages: r.passages,
        }
    }
}

/// Brings the documents read from files under `roots` (`count` folders, searched
/// recursively, or files) in line with the disk: new files of the formats pith reads are
/// ingested, changed ones re-ingested with the old document replaced in the same
/// transaction, files gone from disk removed, and unchanged ones (same size and
/// modification time) skipped without being read. Files are known by their path as
/// given, so sync a folder by the same path each time. A root that does not exist fails
/// the call before anything changes. `metadata_json` (a JSON object or NULL) goes to
/// every file ingested; `progress`, `on_change`, `user_data`, `cancel` and `summary_out`
/// may be NULL. A kill or a cancel (PITH_CANCELLED) leaves each file's documents as
/// they were or as they are now, never half-written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_sync(
    engine: *const pith_engine,
    roots: *const *const c_char,
    count: usize,
    metadata_json: *const c_char,
    progress: pith_ingest_progress_fn,
    on_change: pith_change_fn,
    user_data: *mut c_void,
    cancel: *const pith_cancel,
    summary_out: *mut pith_sync_summary,
) -> pith_status {
    guard(|| {
        let engine = unsafe { self::engine(engine) }?;
        let roots = unsafe { path_args(roots, count) }?;
        let metadata = unsafe { opt_str_arg(metadata_json, "metadata_json") }?.unwrap_or("{}");
        let report = unsafe {
            with_callbacks(progress, None, user_data, cancel, |control| {
                engine.sync(&roots, metadata, control)
            })
        }?;
        if let Some(f) = on_change {
            for (path, change, error) in changes(&report) {
                let path = c_string(path);
                let error = error.map(c_string);
                let error = error.as_ref().map_or(std::ptr::null(), |e| e.as_ptr());
                // SAFETY: the caller's callback, with the caller's user_data; the
                // strings outlive the call.
                unsafe { f(user_data, path.as_ptr(), change, error) };
            }
        }
        if let Some(out) = unsafe { summary_out.as_mut() } {
            *out = pith_sync_summary::from(&report);
        }
        Ok(())
    })
}

/// Each file of `report` with its change and, for a failure, the reason.
fn changes(report: &SyncReport) -> impl Iterator<Item = (&str, pith_change, Option<&str>)> {
    let listed = [
        (&report.added, pith_change::PITH_CHANGE_ADDED),
        (&report.updated, pith_change::PITH_CHANGE_UPDATED),
        (&report.removed, pith_change::PITH_CHANGE_REMOVED),
        (&report.duplicates, pith_change::PITH_CHANGE_DUPLICATE),
    ];
    let listed = listed
        .into_iter()
        .flat_map(|(paths, change)| paths.iter().map(move |p| (p.as_str(), change, None)));
    let failed = report.failed.iter().map(|f| {
        (
            f.path.as_str(),
            pith_change::PITH_CHANGE_FAILED,
            Some(f.error.as_str()),
        )
    });
    listed.chain(failed)
}
