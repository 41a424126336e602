//! A whole-database check: what a crash, a full disk or a bug must never leave behind.

use super::Store;
use crate::error::Result;

impl Store {
    /// Problems found: SQLite's integrity check, the full-text index against its
    /// passages, and any document whose passages and vectors disagree. Empty when the
    /// database is whole.
    pub fn verify(&self) -> Result<Vec<String>> {
        let mut problems = vec![];
        let integrity: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if integrity != "ok" {
            problems.push(format!("integrity_check: {integrity}"));
        }
        if let Err(e) = self.conn.execute(
            "INSERT INTO passage_text(passage_text) VALUES ('integrity-check')",
            [],
        ) {
            problems.push(format!("full-text index: {e}"));
        }
        let mut stmt = self.conn.prepare(
            "SELECT d.id, d.passages,
                    (SELECT count(*) FROM passages p WHERE p.document_id = d.id)
             FROM documents d",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (id, want, have) = row?;
            if want != have {
                problems.push(format!(
                    "document {id}: {have} passages stored, {want} recorded"
                ));
            }
        }
        let count = |sql: &str| -> Result<i64> { Ok(self.conn.query_row(sql, [], |r| r.get(0))?) };
        let checks = [
            (
                "passages without a document",
                "SELECT count(*) FROM passages WHERE document_id NOT IN (SELECT id FROM documents)",
            ),
            (
                "passages without a vector",
                "SELECT count(*) FROM passages p
                 WHERE NOT EXISTS (SELECT 1 FROM passage_vectors v WHERE v.rowid = p.id)",
            ),
            (
                "vectors without a passage",
                "SELECT count(*) FROM passage_vectors v
                 WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.id = v.rowid)",
            ),
        ];
        for (what, sql) in checks {
            let n = count(sql)?;
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        }
        Ok(problems)
    }
}
