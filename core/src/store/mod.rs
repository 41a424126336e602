//! SQLite storage: documents, passages, their vectors (sqlite-vec) and full text (FTS5).
//!
//! This module is the one place a database is opened. Every document is written in
//! one transaction, so a killed process leaves each document wholly present or absent.

mod documents;
mod fulltext;
mod schema;
mod search;
mod vector_index;
mod vectors;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use documents::{DocumentInfo, FileStamp, NewDocument, NewPassage, StoredFile, check_metadata};
pub use search::{Filter, Hit, Method};
use vector_index::VectorIndex;

use crate::error::{Error, Result};

/// Which embedder built a database; a database is only ever searched with the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderId {
    pub name: String,
    pub dim: usize,
}

/// A passage as stored, with its place in the source document.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub id: i64,
    pub document_id: i64,
    pub source: String,
    pub ordinal: usize,
    /// Character (Unicode scalar) offsets into the source document.
    pub start_char: usize,
    pub end_char: usize,
    pub text: String,
    /// The 1-based page it starts on, for paged formats (PDF).
    pub page: Option<u32>,
    /// The heading of the section it starts in, where the document has headings.
    pub heading: Option<String>,
}

/// The most of a database file read through a memory map.
const MMAP_BYTES: i64 = 1 << 30;

/// An open pith database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    embedder: EmbedderId,
    /// The 8-bit copy of the vectors that vector search scans; built on first use.
    index: Mutex<Option<VectorIndex>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("embedder", &self.embedder)
            .finish()
    }
}

fn register_sqlite_vec() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_vec_init has the signature SQLite expects of an extension
        // entry point; registering it as an auto extension loads it into every connection.
        unsafe {
            type Init = unsafe extern "C" fn(
                *mut rusqlite::ffi::sqlite3,
                *mut *mut std::os::raw::c_char,
                *const rusqlite::ffi::sqlite3_api_routines,
            ) -> std::os::raw::c_int;
            let init: Init = std::mem::transmute(sqlite_vec::sqlite3_vec_init as *const ());
            rusqlite::ffi::sqlite3_auto_extension(Some(init));
        }
    });
}

impl Store {
    /// Opens (creating if needed) the database at `path` for `embedder`. A database
    /// made by another embedder or by a newer pith is refused.
    pub fn open(path: &Path, embedder: &EmbedderId) -> Result<Self> {
        register_sqlite_vec();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = connect(path)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // WAL cannot be turned on for a read-only file; such a database is still readable.
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Reads through a memory map rather than a copy per page: rescoring a search's
        // candidates reads single vectors out of sqlite-vec's chunk blobs, whose overflow
        // pages it walks (through read(2), 20 times slower without the map).
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        schema::migrate(&conn, embedder)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            embedder: embedder.clone(),
            index: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn embedder(&self) -> &EmbedderId {
        &self.embedder
    }

    /// Caps the database file at about `max_bytes`; a write beyond it fails with a
    /// "database or disk is full" error and changes nothing, as a full disk would.
    pub fn set_size_limit(&self, max_bytes: u64) -> Result<()> {
        let page: u64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        self.conn
            .pragma_update(None, "max_page_count", (max_bytes / page).max(1))?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The vector index, rebuilt first when missing or when another connection has
    /// changed the database since it was built.
    fn vector_index(&self) -> Result<MutexGuard<'_, Option<VectorIndex>>> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if index.as_ref().is_none_or(|i| i.data_version != version) {
            *index = Some(VectorIndex::build(&self.conn, self.embedder.dim, version)?);
        }
        Ok(index)
    }

    /// Bytes the vector index holds in memory (0 before the first vector search).
    pub fn vector_index_bytes(&self) -> usize {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index.as_ref().map_or(0, VectorIndex::memory_bytes)
    }
}

/// Opens the file for reading and writing. A database the process may not write (an
/// app bundle, a read-only mount) opens read-only instead: it can still be searched,
/// and every write fails with SQLite's "readonly" error.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // The first read is where SQLite finds it cannot make the WAL index.
    match conn.query_row("PRAGMA user_version", [], |_| Ok(())) {
        Ok(()) => Ok(conn),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::ReadOnly | ErrorCode::CannotOpen) && path.exists() =>
        {
            open_read_only(path)
        }
        Err(e) => Err(e.into()),
    }
}

fn open_read_only(path: &Path) -> Result<Connection> {
    // `immutable` reads the main file as it stands, which misses any transaction still
    // in a write-ahead log: refuse rather than answer from stale data.
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::Io {
            path: wal,
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the database is read-only and its write-ahead log is not merged: \
                 open it once with write access",
            ),
        });
    }
    let uri = format!("file:{}?immutable=1", uri_escape(&path.to_string_lossy()));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Ok(Connection::open_with_flags(uri, flags)?)
}

/// Escapes the characters that end or escape a path in an SQLite URI.
fn uri_escape(path: &str) -> String {
    path.replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

/// Runs a ranking query whose parameters are `first`, the filter's, then the limit `k`,
/// and whose rows are (passage id, score).
fn ranked(
    conn: &Connection,
    sql: &str,
    first: &dyn rusqlite::ToSql,
    filter_params: &[&dyn rusqlite::ToSql],
    k: usize,
) -> Result<Vec<(i64, f64)>> {
    let limit = k as i64;
    let mut all: Vec<&dyn rusqlite::ToSql> = vec![first];
    all.extend_from_slice(filter_params);
    all.push(&limit);
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(all.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
