//! Search and its results.

use std::ffi::c_char;

use pith_core::{Method, SearchOptions};

use crate::convert::{
    CStrings, count, free_handle, into_handle, item, opt_str_arg, out_arg, str_arg,
};
use crate::engine::{engine, pith_engine};
use crate::status::{guard, guard_value, pith_status};

/// One passage found. Its strings belong to the pith_hits it came from.
#[repr(C)]
pub struct pith_hit {
    pub document_id: i64,
    pub passage_id: i64,
    /// The document's source name.
    pub source: *const c_char,
    /// The passage's text.
    pub text: *const c_char,
    /// Character offsets of the passage in its document.
    pub start_char: usize,
    pub end_char: usize,
    /// Higher is better; comparable only within one search.
    pub score: f64,
    /// The 1-based page the passage starts on in a PDF; 0 for documents without pages.
    pub page: u32,
    /// The heading of the passage's section; NULL when the document has none.
    pub heading: *const c_char,
}

/// Search results, best first; freed with pith_hits_free.
pub struct pith_hits {
    items: Vec<pith_hit>,
    _strings: CStrings,
}

/// Searches the stored passages. `method` is "hybrid" (vector and full text fused; the
/// default when NULL), "vector" or "bm25". At most `k` hits go to *hits_out.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_search(
    engine: *const pith_engine,
    query: *const c_char,
    k: usize,
    method: *const c_char,
    hits_out: *mut *mut pith_hits,
) -> pith_status {
    guard(|| {
        let out = unsafe { out_arg(hits_out, "hits_out") }?;
        *out = std::ptr::null_mut();
        let engine = unsafe { self::engine(engine) }?;
        let query = unsafe { str_arg(query, "query") }?;
        let method = match unsafe { opt_str_arg(method, "method") }? {
            Some(m) => m.parse::<Method>()?,
            None => Method::Hybrid,
        };
        let options = SearchOptions {
            k,
            method,
            ..SearchOptions::default()
        };
        let hits = engine.search(query, &options)?;
        let mut strings = CStrings::default();
        let items = hits
            .iter()
            .map(|h| pith_hit {
                document_id: h.passage.document_id,
                passage_id: h.passage.id,
                source: strings.add(&h.passage.source),
                text: strings.add(&h.passage.text),
                start_char: h.passage.start_char,
                end_char: h.passage.end_char,
                score: h.score,
                page: h.passage.page.unwrap_or(0),
                heading: strings.add_opt(h.passage.heading.as_deref()),
            })
            .collect();
        *out = into_handle(pith_hits {
            items,
            _strings: strings,
        });
        Ok(())
    })
}

/// The number of hits; 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_hits_len(hits: *const pith_hits) -> usize {
    guard_value(0, || unsafe { count(hits, |h| &h.items) })
}

/// The hit at `index` (0 is the best), or NULL when out of range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_hits_get(hits: *const pith_hits, index: usize) -> *const pith_hit {
    guard_value(std::ptr::null(), || unsafe {
        item(hits, index, |h| &h.items)
    })
}

/// Frees search results; NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_hits_free(hits: *mut pith_hits) {
    guard_value((), || unsafe { free_handle(hits) })
}
