//! The one error of the bindings: pith-core's error, by kind, with its message.

use pith_core::Error;

/// Becomes `PithException` in Kotlin, `PithError` in Swift and Python; each variant
/// carries pith's message (flat, because Kotlin's exceptions already own `message`).
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum PithError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Model(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    IncompatibleDatabase(String),
    #[error("{0}")]
    Database(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Tokenizer(String),
    #[error("{0}")]
    ContextOverflow(String),
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    NotFound(String),
}

impl From<Error> for PithError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidArgument(_) => Self::InvalidArgument(message),
            Error::Model { .. } => Self::Model(message),
            Error::Unsupported(_) => Self::Unsupported(message),
            Error::IncompatibleDatabase(_) => Self::IncompatibleDatabase(message),
            Error::Database(_) => Self::Database(message),
            Error::Io { .. } => Self::Io(message),
            Error::Tokenizer(_) => Self::Tokenizer(message),
            Error::ContextOverflow { .. } => Self::ContextOverflow(message),
            Error::Device(_) => Self::Device(message),
            Error::Cancelled => Self::Cancelled(message),
            Error::NotFound(_) => Self::NotFound(message),
        }
    }
}
