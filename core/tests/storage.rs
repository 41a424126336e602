//! Storage faults: a full disk, a locked and a read-only database are clear errors,
//! and nothing already stored is lost.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::{TempDb, engine};
use pith_core::{Engine, Error};

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

/// Set in the child process that checks a read-only database as an unprivileged user.
const READ_ONLY_CHILD: &str = "PITH_TEST_READ_ONLY_DB";
const NOBODY: u32 = 65534;

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A database the process may not write (an app bundle, a read-only mount): it opens
/// and answers searches; ingest and delete are clear errors that change nothing.
#[test]
fn a_read_only_database_is_searchable_and_refuses_writes() {
    if let Ok(path) = std::env::var(READ_ONLY_CHILD) {
        return read_only_checks(Path::new(&path));
    }
    let db = TempDb::new("read-only");
    engine(&db)
        .ingest_text(
            "first",
            "The keeper lit the lamp at dusk.",
            "{}",
            &mut |_, _| {},
        )
        .unwrap();
    set_mode(&db.path(), 0o444);
    set_mode(&db.0, 0o555);
    // File modes do not stop root: then the checks run as `nobody` in a child process.
    if std::fs::metadata(&db.0).unwrap().uid() == 0 {
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_read_only_database_is_searchable_and_refuses_writes",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(READ_ONLY_CHILD, db.path())
            .uid(NOBODY)
            .gid(NOBODY)
            .status()
            .unwrap();
        assert!(status.success(), "the checks as nobody failed");
    } else {
        read_only_checks(&db.path());
    }
    set_mode(&db.0, 0o755);
    set_mode(&db.path(), 0o644);
    let e = engine(&db);
    assert_eq!(e.documents().unwrap().len(), 1);
    assert!(e.with_store(|s| s.verify()).unwrap().is_empty());
}

fn read_only_checks(path: &Path) {
    let mut options = pith_core::EngineOptions::new(common::models(), path.to_path_buf());
    options.device = pith_core::DeviceChoice::Cpu;
    let e = Engine::open(options).unwrap();
    assert_eq!(
        e.search("lamp at dusk", &Default::default()).unwrap().len(),
        1
    );
    let err = e
        .ingest_text("second", "Fog rolled in before dawn.", "{}", &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err}");
    assert!(err.to_string().contains("readonly"), "{err}");
    let docs = e.documents().unwrap();
    assert!(e.delete_document(docs[0].id).is_err());
    assert_eq!(e.documents().unwrap().len(), 1);
}

/// A unit vector along axis `i` of `dim`, nudged toward the next axis by `tilt`.
fn axis(i: usize, dim: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    v[i % dim] = 1.0;
    v[(i + 1) % dim] = tilt;
    v
}

fn store_document(store: &pith_core::store::Store, name: &str, vectors: &[Vec<f32>]) -> i64 {
    use pith_core::store::{NewDocument, NewPassage};
    let passages: Vec<NewPassage> = vectors
        .iter()
        .map(|v| NewPassage {
            start_char: 0,
            end_char: name.len(),
            text: name.to_string(),
            page: None,
            heading: None,
            embedding: v.clone(),
        })
        .collect();
    store
        .insert_document(&NewDocument {
            source: name,
            content_hash: name,
            metadata: "{}",
            chars: name.len(),
            passages: &passages,
            stamp: None,
            replaces: &[],
        })
        .unwrap()
}

fn nearest_source(store: &pith_core::store::Store, query: &[f32]) -> Option<String> {
    store
        .search(
            "",
            query,
            1,
            pith_core::Method::Vector,
            &pith_core::Filter::default(),
        )
        .unwrap()
        .first()
        .map(|h| h.passage.source.clone())
}

#[test]
fn vector_search_follows_inserts_deletes_and_other_connections() {
    use pith_core::store::{EmbedderId, Store};
    let db = TempDb::new("vector-index");
    let id = EmbedderId {
        name: "axes".into(),
        dim: 16,
    };
    let a = Store::open(&db.path(), &id).unwrap();
    store_document(&a, "first", &[axis(0, 16, 0.1), axis(1, 16, 0.1)]);
    assert_eq!(
        nearest_source(&a, &axis(1, 16, 0.0)).as_deref(),
        Some("first")
    );
    assert!(
        a.vector_index_bytes() > 0,
        "the first search builds the index"
    );

    // This connection's insert goes into the index as it is.
    let second = store_document(&a, "second", &[axis(5, 16, 0.1)]);
    assert_eq!(
        nearest_source(&a, &axis(5, 16, 0.0)).as_deref(),
        Some("second")
    );

    // Another connection's insert is seen through the data version.
    let b = Store::open(&db.path(), &id).unwrap();
    store_document(&b, "third", &[axis(9, 16, 0.1)]);
    assert_eq!(
        nearest_source(&a, &axis(9, 16, 0.0)).as_deref(),
        Some("third")
    );

    // A deleted document's passages are gone from the results.
    a.delete_document(second).unwrap();
    assert_ne!(
        nearest_source(&a, &axis(5, 16, 0.0)).as_deref(),
        Some("second")
    );
    assert_ne!(
        nearest_source(&b, &axis(5, 16, 0.0)).as_deref(),
        Some("second")
    );

    // A query of the wrong width is a clear error.
    let err = a
        .search(
            "",
            &[1.0; 8],
            1,
            pith_core::Method::Vector,
            &pith_core::Filter::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}
