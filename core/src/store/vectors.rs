//! Passage vectors in a sqlite-vec `vec0` table (cosine distance), keyed by passage id.

use rusqlite::{Connection, params};

use crate::error::{Error, Result};

/// sqlite-vec takes float32 vectors as little-endian blobs.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn insert(conn: &Connection, passage_id: i64, embedding: &[f32], dim: usize) -> Result<()> {
    if embedding.len() != dim {
        return Err(Error::InvalidArgument(format!(
            "embedding has {} dimensions, the database {dim}",
            embedding.len()
        )));
    }
    conn.prepare_cached("INSERT INTO passage_vectors(rowid, embedding) VALUES (?1, ?2)")?
        .execute(params![passage_id, to_blob(embedding)])?;
    Ok(())
}

/// The `k` nearest passages by cosine distance (approximate-free: vec0 scans exactly).
pub fn knn(conn: &Connection, query: &[f32], k: usize) -> Result<Vec<(i64, f64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, distance FROM passage_vectors
         WHERE embedding MATCH ?1 AND k = ?2 ORDER BY distance",
    )?;
    let rows = stmt.query_map(params![to_blob(query), k as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Nearest passages among those that pass a SQL filter on `passages p` and `documents d`.
pub fn knn_filtered(
    conn: &Connection,
    query: &[f32],
    k: usize,
    filter_sql: &str,
    filter_params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<(i64, f64)>> {
    let sql = format!(
        "SELECT v.rowid, vec_distance_cosine(v.embedding, ?) AS dist
         FROM passage_vectors v JOIN passages p ON p.id = v.rowid JOIN documents d ON d.id = p.document_id
         WHERE {filter_sql} ORDER BY dist LIMIT ?"
    );
    super::ranked(conn, &sql, &to_blob(query), filter_params, k)
}
