//! pith-core: the on-device RAG engine. Ingest documents into SQLite, search them,
//! and answer questions with a small local model that cites its sources.

pub mod ask;
pub mod attribution;
pub mod chunk;
pub mod conversation;
pub mod device;
pub mod error;
pub mod extract;
pub mod grounding;
pub mod ingest;
pub mod model;
pub mod prune;
pub mod rag;
pub mod store;
pub mod sync;

pub use ask::{Answer, AskOptions, Attribution, Citation, Support, Timings};
pub use conversation::{Conversation, Turn};
pub use device::DeviceChoice;
pub use error::{Error, Result};
pub use ingest::{IngestControl, IngestProgress, IngestReport, IngestSummary, Source};
pub use prune::Budget;
pub use rag::{Engine, EngineOptions, SearchOptions};
pub use store::{DocumentInfo, Filter, Hit, Method, Passage};
pub use sync::{SyncFailure, SyncReport};

/// The version of pith.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
