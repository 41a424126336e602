//! The C ABI of pith: opaque handles, status codes, and a panic boundary on every entry.
//! Each function converts its arguments, calls pith-core, and converts the result back.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod ask;
mod cancel;
mod convert;
mod documents;
mod engine;
mod ingest;
mod search;
mod status;
mod sync;

pub use ask::*;
pub use cancel::*;
pub use documents::*;
pub use engine::*;
pub use ingest::*;
pub use search::*;
pub use status::*;
pub use sync::*;

use std::ffi::c_char;

/// pith's version, e.g. "0.1.0" (a static string).
#[unsafe(no_mangle)]
pub extern "C" fn pith_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
