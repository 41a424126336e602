//! Ingesting documents: one text or file at a time, or many files as a pipeline with
//! progress and cancellation.

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};

use pith_core::{IngestControl, IngestProgress, IngestReport, IngestSummary};

use crate::cancel::pith_cancel;
use crate::convert::{c_string, opt_str_arg, str_arg};
use crate::engine::{engine, pith_engine};
use crate::status::{guard, pith_status};

/// Called as ingest proceeds with the passages embedded so far and the document's total.
pub type pith_progress_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, done: usize, total: usize)>;

/// What one ingest did.
#[repr(C)]
#[derive(Debug, Default)]
pub struct pith_ingest_result {
    pub document_id: i64,
    /// Passages stored; 0 for a duplicate.
    pub passages: usize,
    /// True when the same content was already stored; nothing was written.
    pub duplicate: bool,
}

fn ingest_result(report: IngestReport) -> pith_ingest_result {
    pith_ingest_result {
        document_id: report.document_id,
        passages: report.passages,
        duplicate: report.duplicate,
    }
}

unsafe fn ingest(
    result_out: *mut pith_ingest_result,
    metadata_json: *const c_char,
    progress: pith_progress_fn,
    user_data: *mut c_void,
    run: impl FnOnce(&str, &mut dyn FnMut(usize, usize)) -> pith_core::Result<IngestReport>,
) -> pith_core::Result<()> {
    let metadata = unsafe { opt_str_arg(metadata_json, "metadata_json") }?.unwrap_or("{}");
    let mut report = |done, total| {
        if let Some(f) = progress {
            // SAFETY: the caller's callback, with the caller's user_data.
            unsafe { f(user_data, done, total) }
        }
    };
    let result = run(metadata, &mut report)?;
    if let Some(out) = unsafe { result_out.as_mut() } {
        *out = ingest_result(result);
    }
    Ok(())
}

/// Chunks, embeds and stores one document in one transaction. `source` names it in
/// citations; `metadata_json` is a JSON object or NULL; `progress` and `result_out`
/// may be NULL. Identical content already stored is not stored twice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_ingest_text(
    engine: *const pith_engine,
    source: *const c_char,
    text: *const c_char,
    metadata_json: *const c_char,
    progress: pith_progress_fn,
    user_data: *mut c_void,
    result_out: *mut pith_ingest_result,
) -> pith_status {
    guard(|| {
        let engine = unsafe { self::engine(engine) }?;
        let source = unsafe { str_arg(source, "source") }?;
        let text = unsafe { str_arg(text, "text") }?;
        unsafe {
            ingest(result_out, metadata_json, progress, user_data, |meta, p| {
                engine.ingest_text(source, text, meta, p)
            })
        }
    })
}

/// Reads a UTF-8 text file and ingests it as pith_ingest_text does; binary files and
/// invalid UTF-8 are refused with PITH_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_ingest_file(
    engine: *const pith_engine,
    path: *const c_char,
    metadata_json: *const c_char,
    progress: pith_progress_fn,
    user_data: *mut c_void,
    result_out: *mut pith_ingest_result,
) -> pith_status {
    guard(|| {
        let engine = unsafe { self::engine(engine) }?;
        let path = Path::new(unsafe { str_arg(path, "path") }?);
        unsafe {
            ingest(result_out, metadata_json, progress, user_data, |meta, p| {
                engine.ingest_file(path, meta, p)
            })
        }
    })
}

/// Where a pith_ingest_files call stands.
#[repr(C)]
#[derive(Debug, Default)]
pub struct pith_ingest_progress {
    /// Files stored, found already stored, or failed.
    pub documents_done: usize,
    pub documents_total: usize,
    /// Passages embedded.
    pub passages_done: usize,
    /// Passages of the files chunked so far; grows as reading goes ahead.
    pub passages_known: usize,
    /// Bytes of the files done; a file being embedded counts by its share of passages.
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub elapsed_s: f64,
    pub passages_per_s: f64,
    /// Seconds left at the rate so far; negative before any byte is done.
    pub eta_s: f64,
}

impl From<&IngestProgress> for pith_ingest_progress {
    fn from(p: &IngestProgress) -> Self {
        Self {
            documents_done: p.documents_done,
            documents_total: p.documents_total,
            passages_done: p.passages_done,
            passages_known: p.passages_known,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            elapsed_s: p.elapsed.as_secs_f64(),
            passages_per_s: p.passages_per_s(),
            eta_s: p.eta().map_or(-1.0, |t| t.as_secs_f64()),
        }
    }
}

/// Called after each batch of passages embedded and each finished file. Returning
/// non-zero cancels the ingest.
pub type pith_ingest_progress_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, progress: *const pith_ingest_progress) -> i32,
>;

/// Called once per file as it finishes: `status` PITH_OK with its `result`, or an error
/// status with its message in `error` (and `result` NULL). The strings live for the call.
pub type pith_document_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        path: *const c_char,
        status: pith_status,
        result: *const pith_ingest_result,
        error: *const c_char,
    ),
>;

/// The totals of a pith_ingest_files call.
#[repr(C)]
#[derive(Debug, Default)]
pub struct pith_ingest_summary {
    pub added: usize,
    pub duplicates: usize,
    pub failed: usize,
    /// Passages stored.
    pub passages: usize,
}

impl From<IngestSummary> for pith_ingest_summary {
    fn from(s: IngestSummary) -> Self {
        Self {
            added: s.added,
            duplicates: s.duplicates,
            failed: s.failed,
            passages: s.passages,
        }
    }
}

/// Ingests `count` UTF-8 text files as a pipeline: files are read and chunked while the
/// embedder runs, small files share its batches, and each file is stored in its own
/// transaction. Files already stored (same content) are skipped, so re-running after a
/// crash finishes the rest. A failing file is reported to `on_document` and the others go
/// on. `metadata_json` (a JSON object or NULL) is given to every file; `progress`,
/// `on_document`, `user_data`, `cancel` and `summary_out` may be NULL. Cancelled (by
/// `progress` or `cancel`), it returns PITH_CANCELLED: files already embedded are stored,
/// no file is stored in part, and `summary_out` is left as it was.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_ingest_files(
    engine: *const pith_engine,
    paths: *const *const c_char,
    count: usize,
    metadata_json: *const c_char,
    progress: pith_ingest_progress_fn,
    on_document: pith_document_fn,
    user_data: *mut c_void,
    cancel: *const pith_cancel,
    summary_out: *mut pith_ingest_summary,
) -> pith_status {
    guard(|| {
        let engine = unsafe { self::engine(engine) }?;
        let paths = unsafe { path_args(paths, count) }?;
        let metadata = unsafe { opt_str_arg(metadata_json, "metadata_json") }?.unwrap_or("{}");
        let summary = unsafe {
            with_callbacks(progress, on_document, user_data, cancel, |control| {
                engine.ingest_files(&paths, metadata, control)
            })
        }?;
        if let Some(out) = unsafe { summary_out.as_mut() } {
            *out = summary.into();
        }
        Ok(())
    })
}

/// `count` paths from a C array; NULL is allowed when `count` is 0.
pub(crate) unsafe fn path_args(
    paths: *const *const c_char,
    count: usize,
) -> pith_core::Result<Vec<PathBuf>> {
    if count == 0 {
        return Ok(vec![]);
    }
    if paths.is_null() {
        return Err(pith_core::Error::InvalidArgument("paths is NULL".into()));
    }
    // SAFETY: the caller passes `count` valid pointers.
    let ptrs = unsafe { std::slice::from_raw_parts(paths, count) };
    ptrs.iter()
        .enumerate()
        .map(|(i, &p)| unsafe { str_arg(p, &format!("paths[{i}]")) }.map(PathBuf::from))
        .collect()
}

/// Runs `work` with the ingest callbacks of a C caller: `progress` (non-zero cancels),
/// `on_document` per file, and the `cancel` flag; any may be NULL.
pub(crate) unsafe fn with_callbacks<T>(
    progress: pith_ingest_progress_fn,
    on_document: pith_document_fn,
    user_data: *mut c_void,
    cancel: *const pith_cancel,
    work: impl FnOnce(IngestControl) -> pith_core::Result<T>,
) -> pith_core::Result<T> {
    let mut on_progress = |p: &IngestProgress| match progress {
        // SAFETY: the caller's callback, with the caller's user_data.
        Some(f) => unsafe { f(user_data, &pith_ingest_progress::from(p)) == 0 },
        None => true,
    };
    let mut on_finished = |path: &str, outcome: pith_core::Result<IngestReport>| {
        if let Some(f) = on_document {
            let path = c_string(path);
            // SAFETY: the caller's callback, with the caller's user_data; the strings
            // and the result outlive the call.
            match outcome {
                Ok(r) => unsafe {
                    f(
                        user_data,
                        path.as_ptr(),
                        pith_status::PITH_OK,
                        &ingest_result(r),
                        std::ptr::null(),
                    )
                },
                Err(e) => unsafe {
                    f(
                        user_data,
                        path.as_ptr(),
                        pith_status::from(&e),
                        std::ptr::null(),
                        c_string(&e.to_string()).as_ptr(),
                    )
                },
            }
        }
    };
    let control = IngestControl {
        progress: Some(&mut on_progress),
        document: Some(&mut on_finished),
        cancel: unsafe { cancel.as_ref() }.map(|c| &c.0),
    };
    work(control)
}
