//! Ingesting many files at once: the pipeline on the real embedder and a real database,
//! its progress, per-file outcomes, cancellation and resuming.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use pith_core::{
    Engine, Error, Filter, IngestControl, IngestProgress, IngestReport, IngestSummary, Method,
    Result, SearchOptions,
};
use pith_eval::EvalSet;

use common::{TempDb, engine};

/// Files of three eval paragraphs each (several passages a file, more passages in all
/// than one embedder batch), in a stable order.
fn write_corpus(dir: &Path) -> Vec<PathBuf> {
    let set = EvalSet::load(&common::eval_dir()).unwrap();
    let n = set.corpus.len();
    (0..n)
        .map(|i| {
            let text: Vec<&str> = (0..3)
                .map(|j| set.corpus[(i + j) % n].text.as_str())
                .collect();
            let path = dir.join(format!("doc-{i:02}.txt"));
            std::fs::write(&path, text.join("\n\n")).unwrap();
            path
        })
        .collect()
}

/// What the callbacks saw.
#[derive(Default)]
struct Seen {
    progress: Vec<IngestProgress>,
    documents: Vec<(String, Result<IngestReport>)>,
}

fn ingest(
    e: &Engine,
    files: &[PathBuf],
    stop_after_first_batch: bool,
) -> (Result<IngestSummary>, Seen) {
    let mut seen = Seen::default();
    let cancel = AtomicBool::new(false);
    let result = e.ingest_files(
        files,
        "{}",
        IngestControl {
            progress: Some(&mut |p| {
                if stop_after_first_batch && p.passages_done > 0 {
                    cancel.store(true, Ordering::Relaxed);
                }
                seen.progress.push(p.clone());
                true
            }),
            document: Some(&mut |source, outcome| {
                seen.documents.push((source.to_string(), outcome))
            }),
            cancel: Some(&cancel),
        },
    );
    (result, seen)
}

#[test]
fn many_files_are_embedded_together_and_each_stored_whole() {
    let db = TempDb::new("ingest-many");
    let corpus = write_corpus(&db.0);
    let mut files = corpus.clone();
    let binary = db.0.join("image.txt");
    std::fs::write(&binary, [0u8, 1, 2, 3]).unwrap();
    let empty = db.0.join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let copy = db.0.join("copy.txt");
    std::fs::copy(&corpus[0], &copy).unwrap();
    files.extend([binary.clone(), empty.clone(), copy.clone()]);

    let e = engine(&db);
    let (result, seen) = ingest(&e, &files, false);
    let summary = result.unwrap();
    assert_eq!(
        (summary.added, summary.duplicates, summary.failed),
        (corpus.len(), 1, 2)
    );

    // Every file reported once; the bad ones with their reasons.
    let mut reported: Vec<&str> = seen.documents.iter().map(|(s, _)| s.as_str()).collect();
    reported.sort_unstable();
    let mut expected: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    expected.sort_unstable();
    assert_eq!(reported, expected);
    let outcome = |path: &Path| {
        let name = path.display().to_string();
        &seen.documents.iter().find(|(s, _)| *s == name).unwrap().1
    };
    assert!(matches!(outcome(&binary), Err(Error::InvalidArgument(m)) if m.contains("binary")));
    assert!(matches!(outcome(&empty), Err(Error::InvalidArgument(m)) if m.contains("empty")));
    assert!(matches!(outcome(&copy), Ok(r) if r.duplicate));

    // Progress only moves forward and ends with everything done.
    for pair in seen.progress.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(b.passages_done >= a.passages_done && b.bytes_done >= a.bytes_done);
        assert!(b.documents_done >= a.documents_done && b.elapsed >= a.elapsed);
    }
    let last = seen.progress.last().unwrap();
    assert_eq!(last.documents_done, files.len());
    assert_eq!(last.bytes_done, last.bytes_total);
    // The copy may be read before its original is stored: then it is embedded too, and
    // found a duplicate only by the writer.
    assert_eq!(last.passages_done, last.passages_known);
    assert!(last.passages_done >= summary.passages);
    assert!(summary.passages > 64, "more passages than one batch");
    assert_eq!(last.eta(), Some(std::time::Duration::ZERO));

    // Each stored vector belongs to its own passage: a passage's text, as a query,
    // finds a passage with that very text at cosine 1.
    assert!(e.with_store(|s| s.verify()).unwrap().is_empty());
    let ids: Vec<i64> = (1..=summary.passages as i64).collect();
    let passages = e.with_store(|s| s.passages(&ids)).unwrap();
    assert_eq!(passages.len(), summary.passages);
    let options = SearchOptions {
        k: 1,
        method: Method::Vector,
        filter: Filter::default(),
    };
    for p in passages.iter().step_by(7) {
        let hit = &e.search(&p.text, &options).unwrap()[0];
        assert_eq!(hit.passage.text, p.text);
        assert!(hit.score > 0.9999, "{} for passage {}", hit.score, p.id);
    }
}

#[test]
fn a_cancel_keeps_whole_documents_and_a_rerun_finishes_the_rest() {
    let db = TempDb::new("ingest-cancel");
    let files = write_corpus(&db.0);
    let e = engine(&db);
    let (result, seen) = ingest(&e, &files, true);
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    let stored = e.documents().unwrap();
    assert!(
        stored.len() < files.len(),
        "the cancel came after one batch"
    );
    assert_eq!(seen.documents.len(), stored.len());
    assert!(e.with_store(|s| s.verify()).unwrap().is_empty());

    // The re-run (a new engine, as after a restart) skips what is stored.
    drop(e);
    let e = engine(&db);
    let (result, _) = ingest(&e, &files, false);
    let summary = result.unwrap();
    assert_eq!(summary.duplicates, stored.len());
    assert_eq!(summary.added, files.len() - stored.len());
    assert_eq!(e.documents().unwrap().len(), files.len());
    assert!(e.with_store(|s| s.verify()).unwrap().is_empty());
}

#[test]
fn bad_metadata_fails_the_call_before_any_work() {
    let db = TempDb::new("ingest-metadata");
    let files = write_corpus(&db.0);
    let e = engine(&db);
    let result = e.ingest_files(&files, "[1]", IngestControl::default());
    assert!(matches!(result, Err(Error::InvalidArgument(m)) if m.contains("JSON object")));
    assert!(e.documents().unwrap().is_empty());
}
