//! The one error of the bindings: pith-core's error, by kind, with its message.

use pith_core::Error;

/// Becomes `PithException` in Kotlin, `PithError` in Swift and Python.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PithError {
    #[error("{message}")]
    InvalidArgument { message: String },
    #[error("{message}")]
    Model { message: String },
    #[error("{message}")]
    Unsupported { message: String },
    #[error("{message}")]
    IncompatibleDatabase { message: String },
    #[error("{message}")]
    Database { message: String },
    #[error("{message}")]
    Io { message: String },
    #[error("{message}")]
    Tokenizer { message: String },
    #[error("{message}")]
    ContextOverflow { message: String },
    #[error("{message}")]
    Device { message: String },
    #[error("{message}")]
    Cancelled { message: String },
    #[error("{message}")]
    NotFound { message: String },
}

impl From<Error> for PithError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidArgument(_) => Self::InvalidArgument { message },
            Error::Model { .. } => Self::Model { message },
            Error::Unsupported(_) => Self::Unsupported { message },
            Error::IncompatibleDatabase(_) => Self::IncompatibleDatabase { message },
            Error::Database(_) => Self::Database { message },
            Error::Io { .. } => Self::Io { message },
            Error::Tokenizer(_) => Self::Tokenizer { message },
            Error::ContextOverflow { .. } => Self::ContextOverflow { message },
            Error::Device(_) => Self::Device { message },
            Error::Cancelled => Self::Cancelled { message },
            Error::NotFound(_) => Self::NotFound { message },
        }
    }
}
