//! Status codes, the thread's last error message, and the panic boundary.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pith_core::Error;

/// What a call did. `PITH_OK` is zero; everything else is an error, with a message
/// from `pith_last_error`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pith_status {
    PITH_OK = 0,
    /// A NULL, invalid UTF-8, empty or out-of-range argument.
    PITH_INVALID_ARGUMENT = 1,
    /// A model file is missing, truncated or corrupt.
    PITH_MODEL = 2,
    /// A model pith cannot run (architecture, quantisation).
    PITH_UNSUPPORTED = 3,
    /// The database was built by another embedder or a newer pith.
    PITH_INCOMPATIBLE_DATABASE = 4,
    /// SQLite failed (disk full, read-only, locked, corrupt).
    PITH_DATABASE = 5,
    /// A file could not be read or written.
    PITH_IO = 6,
    PITH_TOKENIZER = 7,
    /// The prompt does not fit in the model's context.
    PITH_CONTEXT_OVERFLOW = 8,
    PITH_DEVICE = 9,
    /// Cancelled through a pith_cancel or by a callback.
    PITH_CANCELLED = 10,
    /// No document with that id.
    PITH_NOT_FOUND = 11,
    /// A bug inside pith; the call had no effect on the database.
    PITH_PANIC = 12,
}

impl From<&Error> for pith_status {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(_) => Self::PITH_INVALID_ARGUMENT,
            Error::Model { .. } => Self::PITH_MODEL,
            Error::Unsupported(_) => Self::PITH_UNSUPPORTED,
            Error::IncompatibleDatabase(_) => Self::PITH_INCOMPATIBLE_DATABASE,
            Error::Database(_) => Self::PITH_DATABASE,
            Error::Io { .. } => Self::PITH_IO,
            Error::Tokenizer(_) => Self::PITH_TOKENIZER,
            Error::ContextOverflow { .. } => Self::PITH_CONTEXT_OVERFLOW,
            Error::Device(_) => Self::PITH_DEVICE,
            Error::Cancelled => Self::PITH_CANCELLED,
            Error::NotFound(_) => Self::PITH_NOT_FOUND,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: String) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(message));
}

/// The message of the last failed call on this thread, or NULL when none failed.
/// The string lives until the next failing call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn pith_last_error() -> *const c_char {
    LAST_ERROR.with(|slot| {
        slot.borrow()
            .as_ref()
            .map_or(std::ptr::null(), |m| m.as_ptr())
    })
}

/// A short English name of a status ("ok", "invalid argument"...), static.
#[unsafe(no_mangle)]
pub extern "C" fn pith_status_name(status: pith_status) -> *const c_char {
    let name: &'static [u8] = match status {
        pith_status::PITH_OK => b"ok\0",
        pith_status::PITH_INVALID_ARGUMENT => b"invalid argument\0",
        pith_status::PITH_MODEL => b"model file\0",
        pith_status::PITH_UNSUPPORTED => b"unsupported\0",
        pith_status::PITH_INCOMPATIBLE_DATABASE => b"incompatible database\0",
        pith_status::PITH_DATABASE => b"database\0",
        pith_status::PITH_IO => b"i/o\0",
        pith_status::PITH_TOKENIZER => b"tokenizer\0",
        pith_status::PITH_CONTEXT_OVERFLOW => b"context overflow\0",
        pith_status::PITH_DEVICE => b"device\0",
        pith_status::PITH_CANCELLED => b"cancelled\0",
        pith_status::PITH_NOT_FOUND => b"not found\0",
        pith_status::PITH_PANIC => b"internal error\0",
    };
    name.as_ptr().cast()
}

/// The boundary every entry point goes through: runs `body`, turns its error or panic
/// into a status and the thread's last error.
pub(crate) fn guard(body: impl FnOnce() -> pith_core::Result<()>) -> pith_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => pith_status::PITH_OK,
        Ok(Err(e)) => {
            set_last_error(e.to_string());
            pith_status::from(&e)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            set_last_error(format!("internal error (please report): {what}"));
            pith_status::PITH_PANIC
        }
    }
}

/// Runs a function that cannot fail (accessors, frees) behind the panic boundary,
/// answering `fallback` if it panics.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}
