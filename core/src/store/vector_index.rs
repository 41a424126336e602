//! Nearest passages through an in-memory 8-bit copy of the vectors.
//!
//! sqlite-vec scans every f32 vector of the database for each query (74 ms at 100k
//! passages of 384 dimensions on this project's machine). The copy here keeps each
//! vector unit-normalised and rounded to 8 bits with a scale of its own, a quarter of the
//! bytes, scanned with SIMD on every core; the best few dozen per result are then
//! rescored exactly from the f32 vectors in SQLite. SQLite stays the source of truth:
//! the copy is built from it on the first search, follows this connection's inserts, and
//! is rebuilt when anything else changed the database (`PRAGMA data_version` moves when
//! another connection commits) or this connection deleted passages.

use pith_kernels::Isa;
use pith_kernels::scan::dots_i8;
use rayon::prelude::*;
use rusqlite::Connection;

use crate::error::{Error, Result};

/// Rows one task scans: enough to amortise the task, few enough to spread the rows
/// over every core.
const SCAN_ROWS: usize = 4096;

/// The 8-bit copy of every passage vector.
pub struct VectorIndex {
    dim: usize,
    /// Passage ids, ascending (a filtered search finds its rows by binary search).
    ids: Vec<i64>,
    /// `[ids, dim]` codes in −127..=127 of the unit-normalised vectors.
    codes: Vec<i8>,
    /// Per row, the value of one code step.
    scales: Vec<f32>,
    /// `PRAGMA data_version` when built: another connection's commit moves it.
    pub data_version: i64,
}

impl VectorIndex {
    /// Reads every vector of `passage_vectors`.
    fn empty(dim: usize, data_version: i64) -> Self {
        Self {
            dim,
            ids: vec![],
            codes: vec![],
            scales: vec![],
            data_version,
        }
    }

    pub fn build(conn: &Connection, dim: usize, data_version: i64) -> Result<Self> {
        let mut index = Self::empty(dim, data_version);
        let mut stmt =
            conn.prepare("SELECT rowid, embedding FROM passage_vectors ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        let mut vector = Vec::with_capacity(dim);
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let blob = row.get_ref(1)?.as_blob().map_err(|e| e.to_string());
            blob.and_then(|b| from_blob(b, dim, &mut vector))
                .map_err(|e| Error::IncompatibleDatabase(format!("vector of passage {id}: {e}")))?;
            if !index.push(id, &vector) {
                return Err(Error::IncompatibleDatabase(format!(
                    "passage vectors out of order at {id}"
                )));
            }
        }
        index.codes.shrink_to_fit();
        index.scales.shrink_to_fit();
        index.ids.shrink_to_fit();
        Ok(index)
    }

    /// Appends a passage's vector. False, and nothing added, unless `id` is above every
    /// id held (SQLite gives new rows ids above the largest; the caller rebuilds).
    #[must_use]
    pub fn push(&mut self, id: i64, vector: &[f32]) -> bool {
        if self.ids.last().is_some_and(|&last| last >= id) || vector.len() != self.dim {
            return false;
        }
        let (codes, scale) = quantize(vector);
        self.ids.push(id);
        self.codes.extend(codes);
        self.scales.push(scale);
        true
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Bytes held: codes, scales and ids.
    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity() + 4 * self.scales.capacity() + 8 * self.ids.capacity()
    }

    /// The ids of the `n` rows (of `allowed` only, when given) most similar to `query`
    /// by the 8-bit codes, in no particular order.
    pub fn candidates(&self, query: &[f32], n: usize, allowed: Option<&[i64]>) -> Vec<i64> {
        let (query, _) = quantize(query);
        let query = &query;
        let isa = Isa::best();
        let mut scored: Vec<(f32, usize)> = match allowed {
            None => {
                let mut dots = vec![0i32; self.len()];
                dots.par_chunks_mut(SCAN_ROWS)
                    .enumerate()
                    .for_each(|(task, out)| {
                        let first = task * SCAN_ROWS * self.dim;
                        let rows = &self.codes[first..first + out.len() * self.dim];
                        dots_i8(isa, query, rows, out);
                    });
                dots.iter()
                    .zip(&self.scales)
                    .enumerate()
                    .map(|(row, (&d, &s))| (d as f32 * s, row))
                    .collect()
            }
            Some(ids) => ids
                .iter()
                .filter_map(|id| self.ids.binary_search(id).ok())
                .map(|row| {
                    let mut dot = [0i32];
                    let codes = &self.codes[row * self.dim..(row + 1) * self.dim];
                    dots_i8(isa, query, codes, &mut dot);
                    (dot[0] as f32 * self.scales[row], row)
                })
                .collect(),
        };
        if scored.len() > n && n > 0 {
            scored.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        }
        scored.truncate(n);
        scored.into_iter().map(|(_, row)| self.ids[row]).collect()
    }
}

/// `vector` unit-normalised and rounded to codes in −127..=127, with the value of one
/// code step (the largest component takes code ±127).
fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    let largest = vector.iter().fold(0f32, |m, v| m.max(v.abs()));
    if norm == 0.0 || largest == 0.0 || !norm.is_finite() {
        return (vec![0; vector.len()], 0.0);
    }
    let scale = largest / norm / 127.0;
    let codes = vector
        .iter()
        .map(|v| (v / norm / scale).round() as i8)
        .collect();
    (codes, scale)
}

/// A vector blob as sqlite-vec stores it (little-endian f32) into `out`.
pub fn from_blob(blob: &[u8], dim: usize, out: &mut Vec<f32>) -> std::result::Result<(), String> {
    if blob.len() != 4 * dim {
        return Err(format!("{} bytes, not {dim} f32 values", blob.len()));
    }
    out.clear();
    out.extend(
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut s = seed | 1;
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn index(vectors: &[Vec<f32>]) -> VectorIndex {
        let mut index = VectorIndex::empty(vectors[0].len(), 0);
        for (i, v) in vectors.iter().enumerate() {
            assert!(index.push(100 + i as i64, v));
        }
        index
    }

    #[test]
    fn candidates_hold_the_exact_nearest() {
        let dim = 384;
        let vectors: Vec<Vec<f32>> = (0..5000).map(|i| unit(i + 1, dim)).collect();
        let index = index(&vectors);
        for q in 0..20 {
            let query = unit(10_000 + q, dim);
            let mut exact: Vec<(f32, i64)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    (
                        v.iter().zip(&query).map(|(a, b)| a * b).sum(),
                        100 + i as i64,
                    )
                })
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let found = index.candidates(&query, 84, None);
            assert_eq!(found.len(), 84);
            for (_, id) in &exact[..10] {
                assert!(found.contains(id), "query {q}: passage {id} missed");
            }
        }
    }

    #[test]
    fn filtered_candidates_come_from_the_allowed_rows_only() {
        let vectors: Vec<Vec<f32>> = (0..300).map(|i| unit(i + 1, 64)).collect();
        let index = index(&vectors);
        let allowed: Vec<i64> = (100..400).step_by(7).chain([5, 9999]).collect();
        let found = index.candidates(&vectors[0], 10, Some(&allowed));
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|id| allowed.contains(id)));
        assert!(
            found.contains(&100),
            "the query's own row is allowed and nearest"
        );
    }

    #[test]
    fn only_ascending_ids_of_the_right_width_are_appended() {
        let vectors: Vec<Vec<f32>> = (0..50).map(|i| unit(i + 1, 32)).collect();
        let mut index = index(&vectors);
        let new = unit(777, 32);
        assert!(!index.push(120, &new));
        assert!(!index.push(500, &new[..16]));
        assert!(index.push(500, &new));
        assert_eq!(index.len(), 51);
        assert_eq!(index.candidates(&new, 1, None), [500]);
    }

    #[test]
    fn a_blob_of_the_wrong_size_is_an_error() {
        let mut v = vec![];
        assert!(from_blob(&[0; 12], 4, &mut v).is_err());
        from_blob(&1f32.to_le_bytes().repeat(4), 4, &mut v).unwrap();
        assert_eq!(v, [1.0; 4]);
    }
}
