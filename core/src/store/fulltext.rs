//! Full-text search over passages with FTS5 and BM25.

use rusqlite::Connection;

use crate::error::Result;

/// Turns free text into an FTS5 query: every word quoted (so no user text is read as
/// FTS5 syntax) and joined by OR, leaving the ranking to BM25.
pub fn match_expression(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" OR "))
}

/// The `k` best passages by BM25 among those that pass `filter_sql` (on `passages p`
/// and `documents d`); scores are SQLite's `bm25()`, lower is better.
pub fn bm25(
    conn: &Connection,
    text: &str,
    k: usize,
    filter_sql: &str,
    filter_params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<(i64, f64)>> {
    let Some(expr) = match_expression(text) else {
        return Ok(vec![]);
    };
    let sql = format!(
        "SELECT t.rowid, bm25(passage_text) AS score
         FROM passage_text t JOIN passages p ON p.id = t.rowid JOIN documents d ON d.id = p.document_id
         WHERE passage_text MATCH ? AND {filter_sql} ORDER BY score LIMIT ?"
    );
    super::ranked(conn, &sql, &expr, filter_params, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_inject_fts_syntax() {
        assert_eq!(
            match_expression("who won? NEAR(\"x\" AND y*)").as_deref(),
            Some("\"who\" OR \"won\" OR \"NEAR\" OR \"x\" OR \"AND\" OR \"y\"")
        );
        assert_eq!(match_expression("?! --"), None);
    }
}
