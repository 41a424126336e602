//! Schema creation and migrations, keyed by `PRAGMA user_version`.

use rusqlite::{Connection, OptionalExtension, params};

use super::EmbedderId;
use crate::error::{Error, Result};

/// The schema this build writes. Bump it and add a step to `MIGRATIONS` to change it.
pub const SCHEMA_VERSION: i64 = 3;

/// `MIGRATIONS[n]` takes a database from version `n` to `n + 1`.
const MIGRATIONS: &[fn(&Connection, &EmbedderId) -> rusqlite::Result<()>] =
    &[create_v1, add_provenance_v2, add_file_stamps_v3];

fn create_v1(conn: &Connection, embedder: &EmbedderId) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE documents(
             id INTEGER PRIMARY KEY,
             source TEXT NOT NULL,
             content_hash TEXT NOT NULL UNIQUE,
             metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
             chars INTEGER NOT NULL,
             passages INTEGER NOT NULL,
             created_at INTEGER NOT NULL DEFAULT (unixepoch()));
         CREATE TABLE passages(
             id INTEGER PRIMARY KEY,
             document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
             ordinal INTEGER NOT NULL,
             start_char INTEGER NOT NULL,
             end_char INTEGER NOT NULL,
             text TEXT NOT NULL);
         CREATE INDEX passages_by_document ON passages(document_id, ordinal);
         CREATE VIRTUAL TABLE passage_text USING fts5(
             text, content='passages', content_rowid='id', tokenize='porter unicode61');
         CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN
             INSERT INTO passage_text(rowid, text) VALUES (new.id, new.text);
         END;
         CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN
             INSERT INTO passage_text(passage_text, rowid, text) VALUES ('delete', old.id, old.text);
         END;",
    )?;
    conn.execute(
        &format!(
            "CREATE VIRTUAL TABLE passage_vectors USING vec0(embedding float[{}] distance_metric=cosine)",
            embedder.dim
        ),
        [],
    )?;
    // Vectors have no foreign key; this trigger keeps them with their passage.
    conn.execute_batch(
        "CREATE TRIGGER passages_vec_delete AFTER DELETE ON passages BEGIN
             DELETE FROM passage_vectors WHERE rowid = old.id;
         END;",
    )?;
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('embedder', ?1), ('dimension', ?2)",
        params![embedder.name, embedder.dim.to_string()],
    )?;
    Ok(())
}

/// Version 2: a passage's page (PDF, 1-based) and the heading of its section, where the
/// document has them.
fn add_provenance_v2(conn: &Connection, _: &EmbedderId) -> rusqlite::Result<()> {
    conn.execute_batch(
        "ALTER TABLE passages ADD COLUMN page INTEGER;
         ALTER TABLE passages ADD COLUMN heading TEXT;",
    )
}

/// Version 3: the size and modification time of the file a document was read from, so
/// that a sync skips unchanged files without reading them, and an index to find a
/// file's documents by path.
fn add_file_stamps_v3(conn: &Connection, _: &EmbedderId) -> rusqlite::Result<()> {
    conn.execute_batch(
        "ALTER TABLE documents ADD COLUMN file_size INTEGER;
         ALTER TABLE documents ADD COLUMN file_mtime_ns INTEGER;
         CREATE INDEX documents_by_source ON documents(source);",
    )
}

/// Brings the database to [`SCHEMA_VERSION`] and checks it was built by `embedder`.
pub fn migrate(conn: &Connection, embedder: &EmbedderId) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::IncompatibleDatabase(format!(
            "schema version {version} was written by a newer pith (this one reads up to {SCHEMA_VERSION})"
        )));
    }
    if version == 0 && has_foreign_tables(conn)? {
        return Err(Error::IncompatibleDatabase(
            "the file holds tables that pith did not create".into(),
        ));
    }
    for step in version..SCHEMA_VERSION {
        let tx = conn.unchecked_transaction()?;
        MIGRATIONS[step as usize](&tx, embedder)?;
        tx.pragma_update(None, "user_version", step + 1)?;
        tx.commit()?;
    }
    check_embedder(conn, embedder)
}

fn has_foreign_tables(conn: &Connection) -> Result<bool> {
    let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    Ok(n > 0)
}

fn check_embedder(conn: &Connection, embedder: &EmbedderId) -> Result<()> {
    let get = |key: &str| -> Result<Option<String>> {
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    };
    let name = get("embedder")?.unwrap_or_default();
    let dim = get("dimension")?.unwrap_or_default();
    if name != embedder.name || dim != embedder.dim.to_string() {
        return Err(Error::IncompatibleDatabase(format!(
            "built with embedder {name:?} ({dim} dimensions); this engine uses {:?} ({} dimensions): \
             re-ingest into a new database",
            embedder.name, embedder.dim
        )));
    }
    Ok(())
}
