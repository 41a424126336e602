//! Keeping a folder in sync on the real embedder and a real database: what is added,
//! replaced, removed and skipped, and that unchanged files are not read.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pith_core::{Engine, Error, IngestControl, SearchOptions, SyncReport};
use pith_eval::EvalSet;

use common::{TempDb, engine};

fn paragraph(i: usize) -> String {
    let set = EvalSet::load(&common::eval_dir()).unwrap();
    set.corpus[i % set.corpus.len()].text.clone()
}

fn try_sync(engine: &Engine, root: &Path) -> pith_core::Result<SyncReport> {
    engine.sync(&[root.to_path_buf()], "{}", IngestControl::default())
}

fn sync(engine: &Engine, root: &Path) -> SyncReport {
    let report = try_sync(engine, root).unwrap();
    let problems = engine.with_store(|s| s.verify()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    report
}

fn names(root: &Path, files: &[&str]) -> Vec<String> {
    files
        .iter()
        .map(|f| root.join(f).to_string_lossy().into_owned())
        .collect()
}

/// The stored text of `path`'s document, by searching for its first words.
fn stored_text(engine: &Engine, path: &Path) -> Vec<String> {
    let source = path.to_string_lossy();
    let docs = engine.documents().unwrap();
    let ids: Vec<i64> = docs
        .iter()
        .filter(|d| d.source == source)
        .map(|d| d.id)
        .collect();
    let options = SearchOptions {
        k: 50,
        filter: pith_core::Filter {
            documents: ids,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut hits = engine.search("the", &options).unwrap();
    hits.sort_by_key(|h| (h.passage.document_id, h.passage.ordinal));
    hits.into_iter().map(|h| h.passage.text).collect()
}

fn set_modified(path: &Path, when: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn sync_adds_replaces_removes_and_skips_unchanged_files_unread() {
    let db = TempDb::new("sync");
    let root = db.0.join("notes");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.txt"), paragraph(0)).unwrap();
    std::fs::write(root.join("b.md"), paragraph(1)).unwrap();
    std::fs::write(root.join("sub/c.txt"), paragraph(2)).unwrap();
    std::fs::write(root.join("image.png"), [0u8, 1, 2]).unwrap();
    let e = engine(&db);

    let first = sync(&e, &root);
    assert_eq!(first.added, names(&root, &["a.txt", "b.md", "sub/c.txt"]));
    assert!(first.passages >= 3);
    assert!(first.changed());

    let again = sync(&e, &root);
    assert_eq!((again.unchanged, again.changed()), (3, false));

    // Same size, same time, other bytes: a sync that read b.md would store them.
    let b = root.join("b.md");
    let when = std::fs::metadata(&b).unwrap().modified().unwrap();
    let before = stored_text(&e, &b);
    let other = paragraph(1).replace(|c: char| c.is_ascii_lowercase(), "x");
    std::fs::write(&b, &other).unwrap();
    set_modified(&b, when);
    assert_eq!(sync(&e, &root).unchanged, 3);
    assert_eq!(stored_text(&e, &b), before, "b.md was read");
    std::fs::write(&b, paragraph(1)).unwrap();
    set_modified(&b, when);

    // A touch without a change re-reads the file once and keeps its document.
    let a = root.join("a.txt");
    let a_id = e.documents().unwrap()[0].id;
    set_modified(&a, SystemTime::now() + Duration::from_secs(5));
    let touched = sync(&e, &root);
    assert_eq!((touched.unchanged, touched.changed()), (3, false));
    assert_eq!(e.documents().unwrap()[0].id, a_id);
    assert_eq!(sync(&e, &root).unchanged, 3);

    // A change replaces the document; a deletion removes it; a new file is added; a copy
    // of stored content is a duplicate.
    std::fs::write(&a, paragraph(3)).unwrap();
    std::fs::remove_file(root.join("sub/c.txt")).unwrap();
    std::fs::write(root.join("d.txt"), paragraph(4)).unwrap();
    std::fs::write(root.join("copy-of-b.md"), paragraph(1)).unwrap();
    let changed = sync(&e, &root);
    assert_eq!(changed.updated, names(&root, &["a.txt"]));
    assert_eq!(changed.removed, names(&root, &["sub/c.txt"]));
    assert_eq!(changed.added, names(&root, &["d.txt"]));
    assert_eq!(changed.duplicates, names(&root, &["copy-of-b.md"]));
    assert_eq!(changed.unchanged, 1);
    let docs = e.documents().unwrap();
    let sources: Vec<&str> = docs.iter().map(|d| d.source.as_str()).collect();
    assert_eq!(sources, names(&root, &["b.md", "a.txt", "d.txt"]));
    assert!(!docs.iter().any(|d| d.id == a_id), "the old a.txt is gone");
    assert!(stored_text(&e, &a).concat().contains(&paragraph(3)[..40]));
}

#[test]
fn a_missing_folder_fails_the_sync_and_deletes_nothing() {
    let db = TempDb::new("sync-missing");
    let root = db.0.join("notes");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), paragraph(0)).unwrap();
    let e = engine(&db);
    assert_eq!(sync(&e, &root).added.len(), 1);
    std::fs::rename(&root, db.0.join("elsewhere")).unwrap();
    let err = try_sync(&e, &root).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(e.documents().unwrap().len(), 1);
}

#[test]
fn a_file_that_cannot_be_read_is_reported_and_the_rest_synced() {
    let db = TempDb::new("sync-bad");
    let root = db.0.join("notes");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("good.txt"), paragraph(0)).unwrap();
    std::fs::write(root.join("broken.pdf"), b"%PDF-1.7 truncated").unwrap();
    let e = engine(&db);
    let report = sync(&e, &root);
    assert_eq!(report.added, names(&root, &["good.txt"]));
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].path.ends_with("broken.pdf"));
    assert!(
        report.failed[0].error.contains("PDF"),
        "{:?}",
        report.failed
    );
    // A failed file has no stamp, so the next sync tries it again.
    let again = sync(&e, &root);
    assert_eq!((again.unchanged, again.failed.len()), (1, 1));
}

#[test]
fn syncing_a_file_path_keeps_only_that_file() {
    let db = TempDb::new("sync-file");
    let root = db.0.join("notes");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), paragraph(0)).unwrap();
    std::fs::write(root.join("ab.txt"), paragraph(1)).unwrap();
    let e = engine(&db);
    let file: PathBuf = root.join("a.txt");
    assert_eq!(sync(&e, &file).added, names(&root, &["a.txt"]));
    assert_eq!(sync(&e, &root).added, names(&root, &["ab.txt"]));
    std::fs::remove_file(&file).unwrap();
    // "notes/a.txt" is not a folder holding "notes/ab.txt".
    let err = try_sync(&e, &file).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(sync(&e, &root).removed, names(&root, &["a.txt"]));
    assert_eq!(e.documents().unwrap().len(), 1);
}
