//! The C ABI of pith: opaque handles, status codes, and a panic boundary on every entry.
//! Each function converts its arguments, calls pith-core, and converts the result back.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod ask;
mod cancel;
mod conversation;
mod convert;
mod documents;
mod engine;
mod ingest;
mod search;
mod status;
mod sync;

pub use ask::*;
pub use cancel::*;
pub use conversation::*;
pub use documents::*;
pub use engine::*;
pub use ingest::*;
pub use search::*;
pub use status::*;
pub use sync::*;

use std::ffi::c_char;

/// The version of pith this header belongs to (semantic versioning). A program can
/// compare them with pith_version() at run time to catch a mismatched library.
pub const PITH_VERSION_MAJOR: u32 = 0;
pub const PITH_VERSION_MINOR: u32 = 2;
pub const PITH_VERSION_PATCH: u32 = 0;

/// pith's version, e.g. "0.2.0" (a static string): the library's, which may differ from
/// the header's PITH_VERSION_* when a program runs with another build of libpith.
#[unsafe(no_mangle)]
pub extern "C" fn pith_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
