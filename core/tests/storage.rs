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
