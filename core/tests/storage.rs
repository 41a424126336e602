//! Storage faults: a full disk and a locked database are clear errors, and nothing
//! already stored is lost.

mod common;

use common::{TempDb, engine};
use pith_core::Error;

/// About 40 passages of distinct prose.
fn long_document() -> String {
    (0..400)
        .map(|i| {
            format!("Entry {i} of the keeper's log records wind, tide and the state of lamp {i}. ")
        })
        .collect()
}

#[test]
fn a_full_disk_fails_the_ingest_and_keeps_what_was_stored() {
    let db = TempDb::new("full");
    let e = engine(&db);
    let first = e
        .ingest_text(
            "first",
            "The keeper lit the lamp at dusk.",
            "{}",
            &mut |_, _| {},
        )
        .unwrap();
    let size = std::fs::metadata(db.path()).unwrap().len();
    e.with_store(|s| s.set_size_limit(size + 8192)).unwrap();

    let err = e
        .ingest_text("big", &long_document(), "{}", &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err}");
    assert!(err.to_string().contains("full"), "{err}");

    let docs = e.documents().unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].id, first.document_id);
    assert!(e.with_store(|s| s.verify()).unwrap().is_empty());
    assert_eq!(
        e.search("lamp at dusk", &Default::default()).unwrap().len(),
        1
    );

    // With room again, the same document goes in whole.
    e.with_store(|s| s.set_size_limit(1 << 30)).unwrap();
    e.ingest_text("big", &long_document(), "{}", &mut |_, _| {})
        .unwrap();
    assert!(e.with_store(|s| s.verify()).unwrap().is_empty());
}

#[test]
fn a_locked_database_is_an_error_then_works_again() {
    let db = TempDb::new("locked");
    let e = engine(&db);
    e.ingest_text(
        "first",
        "The keeper lit the lamp at dusk.",
        "{}",
        &mut |_, _| {},
    )
    .unwrap();

    let other = rusqlite::Connection::open(db.path()).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = e
        .ingest_text("second", "Fog rolled in before dawn.", "{}", &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err}");
    assert!(err.to_string().contains("locked"), "{err}");
    other.execute_batch("ROLLBACK").unwrap();

    e.ingest_text("second", "Fog rolled in before dawn.", "{}", &mut |_, _| {})
        .unwrap();
    assert_eq!(e.documents().unwrap().len(), 2);
    assert!(e.with_store(|s| s.verify()).unwrap().is_empty());
}
