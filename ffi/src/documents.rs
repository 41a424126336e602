//! The list of stored documents.

use std::ffi::c_char;

use crate::convert::{CStrings, count, free_handle, into_handle, item, out_arg};
use crate::engine::{engine, pith_engine};
use crate::status::{guard, guard_value, pith_status};

/// One stored document. Its strings belong to the pith_documents it came from.
#[repr(C)]
pub struct pith_document {
    pub id: i64,
    /// The name given at ingest (a file path for files).
    pub source: *const c_char,
    /// The metadata as a JSON object.
    pub metadata_json: *const c_char,
    /// Length in characters (Unicode scalar values).
    pub chars: usize,
    pub passages: usize,
    /// Unix time of ingest, in seconds.
    pub created_at: i64,
}

/// A list of documents; freed with pith_documents_free.
pub struct pith_documents {
    items: Vec<pith_document>,
    _strings: CStrings,
}

/// Lists the stored documents, oldest first, into *documents_out.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_documents_list(
    engine: *const pith_engine,
    documents_out: *mut *mut pith_documents,
) -> pith_status {
    guard(|| {
        let out = unsafe { out_arg(documents_out, "documents_out") }?;
        *out = std::ptr::null_mut();
        let docs = unsafe { self::engine(engine) }?.documents()?;
        let mut strings = CStrings::default();
        let items = docs
            .iter()
            .map(|d| pith_document {
                id: d.id,
                source: strings.add(&d.source),
                metadata_json: strings.add(&d.metadata.to_string()),
                chars: d.chars,
                passages: d.passages,
                created_at: d.created_at,
            })
            .collect();
        *out = into_handle(pith_documents {
            items,
            _strings: strings,
        });
        Ok(())
    })
}

/// The number of documents; 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_documents_len(documents: *const pith_documents) -> usize {
    guard_value(0, || unsafe { count(documents, |d| &d.items) })
}

/// The document at `index`, or NULL when out of range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_documents_get(
    documents: *const pith_documents,
    index: usize,
) -> *const pith_document {
    guard_value(std::ptr::null(), || unsafe {
        item(documents, index, |d| &d.items)
    })
}

/// Frees a list of documents; NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_documents_free(documents: *mut pith_documents) {
    guard_value((), || unsafe { free_handle(documents) })
}
