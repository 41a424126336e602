//! Passage vectors in a sqlite-vec `vec0` table (cosine distance), keyed by passage id:
//! the source of truth that the in-memory index (`vector_index`) is built from.

use rusqlite::{Connection, params};

use super::vector_index::from_blob;
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

/// Passages whose vectors rank among the index's candidates, rescored exactly: the `k`
/// nearest of `ids` by cosine distance, nearest first.
pub fn rescore(conn: &Connection, query: &[f32], ids: &[i64], k: usize) -> Result<Vec<(i64, f64)>> {
    let mut stmt = conn.prepare_cached("SELECT embedding FROM passage_vectors WHERE rowid = ?1")?;
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let query_norm = norm(query);
    let mut vector = Vec::with_capacity(query.len());
    let mut scored = Vec::with_capacity(ids.len());
    for &id in ids {
        let blob: Vec<u8> = stmt.query_row([id], |r| r.get(0))?;
        from_blob(&blob, query.len(), &mut vector)
            .map_err(|e| Error::IncompatibleDatabase(format!("vector of passage {id}: {e}")))?;
        let dot: f64 = query
            .iter()
            .zip(&vector)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        let denominator = query_norm * norm(&vector);
        let cosine = if denominator > 0.0 {
            dot / denominator
        } else {
            0.0
        };
        scored.push((id, 1.0 - cosine));
    }
    scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    Ok(scored)
}
