//! pith for Kotlin, Swift and Python: uniffi proc-macros over pith-core. This crate only
//! converts types and errors; everything it does is a call into pith-core.

mod engine;
mod error;
mod records;

pub use engine::{AnswerListener, CancelHandle, Engine, ProgressListener};
pub use error::PithError;
pub use records::*;

uniffi::setup_scaffolding!("pith");

/// pith's version.
#[uniffi::export]
pub fn version() -> String {
    pith_core::version().to_string()
}
