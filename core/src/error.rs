//! The one error type of pith. Every fallible call in core returns [`Result`].

use std::path::PathBuf;

/// Everything that can go wrong in pith, grouped by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller passed something unusable (empty question, bad option, invalid UTF-8...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A model file is missing, truncated, corrupt or of an unsupported kind.
    #[error("model file {path}: {reason}")]
    Model { path: PathBuf, reason: String },

    /// The model is fine but pith cannot run it (architecture, quantisation...).
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// The database was built by another embedder, or with a newer schema.
    #[error("incompatible database: {0}")]
    IncompatibleDatabase(String),

    /// SQLite reported an error (disk full, read-only, locked, corrupt...).
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Tokenizer construction or encoding failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The prompt does not fit in the model's context window.
    #[error("context overflow: {needed} tokens needed, the model's context holds {limit}")]
    ContextOverflow { needed: usize, limit: usize },

    /// The GPU device could not be used.
    #[error("device: {0}")]
    Device(String),

    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,

    /// A document or passage that was asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

impl Error {
    pub(crate) fn model(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
