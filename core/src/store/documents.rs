//! Writing, listing and deleting documents with their passages and vectors.

use rusqlite::{OptionalExtension, params};

use super::{Passage, Store, vectors};
use crate::error::{Error, Result};

/// A document ready to be stored: its passages already chunked and embedded.
pub struct NewDocument<'a> {
    pub source: &'a str,
    pub content_hash: &'a str,
    /// A JSON object.
    pub metadata: &'a str,
    pub chars: usize,
    pub passages: &'a [NewPassage],
    /// The file it was read from, as it was before reading.
    pub stamp: Option<FileStamp>,
    /// Documents it replaces (earlier versions of its file), deleted in its transaction.
    pub replaces: &'a [i64],
}

/// What tells a file changed without reading it: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub modified_ns: i64,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        let modified_ns =
            meta.modified()
                .map_or(0, |t| match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(after) => after.as_nanos() as i64,
                    Err(before) => -(before.duration().as_nanos() as i64),
                });
        Self {
            size: meta.len(),
            modified_ns,
        }
    }
}

/// A stored document read from a file, as a sync compares it with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub id: i64,
    pub source: String,
    /// `None` for documents stored before pith recorded stamps.
    pub stamp: Option<FileStamp>,
}

pub struct NewPassage {
    pub start_char: usize,
    pub end_char: usize,
    pub text: String,
    /// The 1-based page it starts on, for paged formats (PDF).
    pub page: Option<u32>,
    /// The heading of the section it starts in.
    pub heading: Option<String>,
    pub embedding: Vec<f32>,
}

/// A stored document as listed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DocumentInfo {
    pub id: i64,
    pub source: String,
    pub metadata: serde_json::Value,
    pub chars: usize,
    pub passages: usize,
    pub created_at: i64,
}

/// Refuses metadata that is not a JSON object.
pub fn check_metadata(metadata: &str) -> Result<()> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(metadata)
        .map(drop)
        .map_err(|e| Error::InvalidArgument(format!("metadata must be a JSON object: {e}")))
}

impl Store {
    /// The id of a stored document with this content hash, if any.
    pub fn find_by_hash(&self, content_hash: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM documents WHERE content_hash = ?1",
                [content_hash],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stores a document and all its rows, and deletes the documents it replaces, in one
    /// transaction; returns its id.
    pub fn insert_document(&self, doc: &NewDocument) -> Result<i64> {
        check_metadata(doc.metadata)?;
        let tx = self.conn.unchecked_transaction()?;
        let replaced = delete_all(&tx, doc.replaces)?;
        tx.execute(
            "INSERT INTO documents(source, content_hash, metadata, chars, passages,
                                   file_size, file_mtime_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                doc.source,
                doc.content_hash,
                doc.metadata,
                doc.chars as i64,
                doc.passages.len() as i64,
                doc.stamp.map(|s| s.size as i64),
                doc.stamp.map(|s| s.modified_ns)
            ],
        )?;
        let doc_id = tx.last_insert_rowid();
        let mut ids = Vec::with_capacity(doc.passages.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO passages(document_id, ordinal, start_char, end_char, text, page, heading)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (ordinal, p) in doc.passages.iter().enumerate() {
                insert.execute(params![
                    doc_id,
                    ordinal as i64,
                    p.start_char as i64,
                    p.end_char as i64,
                    p.text,
                    p.page,
                    p.heading
                ])?;
                let id = tx.last_insert_rowid();
                vectors::insert(&tx, id, &p.embedding, self.embedder.dim)?;
                ids.push(id);
            }
        }
        tx.commit()?;
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let appended = !replaced
            && index.as_mut().is_none_or(|index| {
                ids.into_iter()
                    .zip(doc.passages)
                    .all(|(id, p)| index.push(id, &p.embedding))
            });
        if !appended {
            *index = None;
        }
        Ok(doc_id)
    }

    /// Deletes a document and, through the schema's cascade and triggers, its
    /// passages, vectors and full text. Returns false when no such document exists.
    pub fn delete_document(&self, id: i64) -> Result<bool> {
        self.delete_documents(&[id])
    }

    /// Deletes documents as [`Store::delete_document`] does, in one transaction; returns
    /// whether any existed.
    pub fn delete_documents(&self, ids: &[i64]) -> Result<bool> {
        self.stamp_and_delete(None, ids)
    }

    /// In one transaction, records `stamp` on document `id` (when given) and deletes the
    /// documents `drop`: a file found unchanged after all, or changed into content
    /// stored already.
    pub fn keep_file(&self, id: i64, stamp: Option<FileStamp>, drop: &[i64]) -> Result<()> {
        self.stamp_and_delete(stamp.map(|s| (id, s)), drop)
            .map(|_| ())
    }

    fn stamp_and_delete(&self, stamp: Option<(i64, FileStamp)>, drop: &[i64]) -> Result<bool> {
        let tx = self.conn.unchecked_transaction()?;
        if let Some((id, stamp)) = stamp {
            tx.execute(
                "UPDATE documents SET file_size = ?2, file_mtime_ns = ?3 WHERE id = ?1",
                params![id, stamp.size as i64, stamp.modified_ns],
            )?;
        }
        let deleted = delete_all(&tx, drop)?;
        tx.commit()?;
        if deleted {
            // Rebuilt on the next vector search, without the deleted passages.
            *self.index.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(deleted)
    }

    /// The documents read from the file `root` or from files under the folder `root`
    /// (by their source, the path they were ingested by).
    pub fn files_under(&self, root: &str) -> Result<Vec<StoredFile>> {
        let folder = format!(
            "{}{}",
            root.trim_end_matches('/'),
            std::path::MAIN_SEPARATOR
        );
        let mut stmt = self.conn.prepare(
            "SELECT id, source, file_size, file_mtime_ns FROM documents
             WHERE source = ?1 OR substr(source, 1, length(?2)) = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![root, folder], |r| {
            let size: Option<i64> = r.get(2)?;
            let modified_ns: Option<i64> = r.get(3)?;
            Ok(StoredFile {
                id: r.get(0)?,
                source: r.get(1)?,
                stamp: size.zip(modified_ns).map(|(size, modified_ns)| FileStamp {
                    size: size as u64,
                    modified_ns,
                }),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn documents(&self) -> Result<Vec<DocumentInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, source, metadata, chars, passages, created_at FROM documents ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let metadata: String = r.get(2)?;
            Ok(DocumentInfo {
                id: r.get(0)?,
                source: r.get(1)?,
                metadata: serde_json::from_str(&metadata).unwrap_or_default(),
                chars: r.get::<_, i64>(3)? as usize,
                passages: r.get::<_, i64>(4)? as usize,
                created_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Passages by id, in the order asked; unknown ids are skipped.
    pub fn passages(&self, ids: &[i64]) -> Result<Vec<Passage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.document_id, d.source, p.ordinal, p.start_char, p.end_char, p.text,
                    p.page, p.heading
             FROM passages p JOIN documents d ON d.id = p.document_id WHERE p.id = ?1",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let row = stmt
                .query_row([id], |r| {
                    Ok(Passage {
                        id: r.get(0)?,
                        document_id: r.get(1)?,
                        source: r.get(2)?,
                        ordinal: r.get::<_, i64>(3)? as usize,
                        start_char: r.get::<_, i64>(4)? as usize,
                        end_char: r.get::<_, i64>(5)? as usize,
                        text: r.get(6)?,
                        page: r.get(7)?,
                        heading: r.get(8)?,
                    })
                })
                .optional()?;
            out.extend(row);
        }
        Ok(out)
    }

    /// Counts of (documents, passages, vectors, full-text rows), for consistency checks.
    pub fn counts(&self) -> Result<(i64, i64, i64, i64)> {
        let count = |sql: &str| -> Result<i64> { Ok(self.conn.query_row(sql, [], |r| r.get(0))?) };
        Ok((
            count("SELECT count(*) FROM documents")?,
            count("SELECT count(*) FROM passages")?,
            count("SELECT count(*) FROM passage_vectors")?,
            count("SELECT count(*) FROM passage_text_docsize")?,
        ))
    }
}

/// Deletes documents and, through the schema's cascade and triggers, their passages,
/// vectors and full text; true when any existed.
fn delete_all(tx: &rusqlite::Transaction, ids: &[i64]) -> Result<bool> {
    let mut delete = tx.prepare_cached("DELETE FROM documents WHERE id = ?1")?;
    let mut deleted = false;
    for &id in ids {
        deleted |= delete.execute([id])? > 0;
    }
    Ok(deleted)
}
