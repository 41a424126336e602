//! The cancel flag shared by asking and ingesting.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::convert::{free_handle, into_handle};
use crate::status::guard_value;

/// A flag that cancels a running pith_ask or pith_ingest_files from any thread.
pub struct pith_cancel(pub(crate) AtomicBool);

/// A new, unset cancel flag; freed with pith_cancel_free.
#[unsafe(no_mangle)]
pub extern "C" fn pith_cancel_new() -> *mut pith_cancel {
    guard_value(std::ptr::null_mut(), || {
        into_handle(pith_cancel(AtomicBool::new(false)))
    })
}

/// Sets the flag: a pith_ask or pith_ingest_files using it stops soon and returns
/// PITH_CANCELLED.
/// Safe to call from any thread while the ask runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_cancel_trigger(cancel: *const pith_cancel) {
    guard_value((), || {
        if let Some(c) = unsafe { cancel.as_ref() } {
            c.0.store(true, Ordering::SeqCst)
        }
    })
}

/// Clears the flag so it can serve another call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_cancel_reset(cancel: *const pith_cancel) {
    guard_value((), || {
        if let Some(c) = unsafe { cancel.as_ref() } {
            c.0.store(false, Ordering::SeqCst)
        }
    })
}

/// Frees a cancel flag; NULL is allowed. No call may still be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_cancel_free(cancel: *mut pith_cancel) {
    guard_value((), || unsafe { free_handle(cancel) })
}
