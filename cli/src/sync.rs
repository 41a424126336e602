//! `pith sync`: keeps the database in line with folders, once or (`--watch`) until
//! interrupted.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use pith_core::extract::has_document_extension;
use pith_core::{Engine, Error, Result, SyncReport};

use crate::commands::{Context, with_ingest_bar};

/// How long the folders must be quiet after a change before a sync runs: an editor's
/// save or a copy of many files is one burst of events.
const SETTLE: Duration = Duration::from_millis(500);

pub fn sync(
    ctx: &Context,
    roots: &[PathBuf],
    metadata: &str,
    watch: bool,
    json: bool,
) -> Result<()> {
    let engine = ctx.open()?;
    if !watch {
        return sync_once(&engine, roots, metadata, json).map(drop);
    }
    let (tx, events) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(tx).map_err(watch_error)?;
    for root in roots {
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(watch_error)?;
    }
    // Watching starts before the first sync, so nothing changed during it is missed.
    sync_once(&engine, roots, metadata, json)?;
    eprintln!("pith: watching {} for changes (Ctrl-C stops)", names(roots));
    while let Ok(event) = events.recv() {
        match event {
            Ok(event) if !may_change_documents(&event) => continue,
            Ok(_) => {}
            Err(e) => eprintln!("pith: warning: watching: {e}"),
        }
        settle(&events);
        sync_once(&engine, roots, metadata, json)?;
    }
    Ok(())
}

/// Whether `event` can change what a sync finds: not a read (a sync's own reads are
/// events too), and on a document or a folder, not on the database's own files.
fn may_change_documents(event: &notify::Event) -> bool {
    !matches!(event.kind, EventKind::Access(_))
        && event
            .paths
            .iter()
            .any(|p| has_document_extension(p) || p.extension().is_none() || p.is_dir())
}

/// Waits until no event has come for [`SETTLE`], dropping the events.
fn settle<T>(events: &mpsc::Receiver<T>) {
    while events.recv_timeout(SETTLE).is_ok() {}
}

fn sync_once(engine: &Engine, roots: &[PathBuf], metadata: &str, json: bool) -> Result<SyncReport> {
    let started = Instant::now();
    let report = with_ingest_bar("sync", |control| engine.sync(roots, metadata, control))?;
    if json {
        println!("{}", serde_json::to_string(&report).expect("serialisable"));
    } else {
        print(&report, started.elapsed());
    }
    Ok(report)
}

fn print(report: &SyncReport, took: Duration) {
    let lines = [
        ("added", &report.added),
        ("updated", &report.updated),
        ("removed", &report.removed),
        ("duplicate", &report.duplicates),
    ];
    for (what, paths) in lines {
        for path in paths {
            println!("{what:<9} {path}");
        }
    }
    for failure in &report.failed {
        println!("failed    {}: {}", failure.path, failure.error);
    }
    println!(
        "synced in {:.1} s: {} added, {} updated, {} removed, {} unchanged, {} duplicate(s), {} failed; {} passages stored",
        took.as_secs_f64(),
        report.added.len(),
        report.updated.len(),
        report.removed.len(),
        report.unchanged,
        report.duplicates.len(),
        report.failed.len(),
        report.passages,
    );
}

fn names(roots: &[PathBuf]) -> String {
    let names: Vec<_> = roots.iter().map(|r| r.display().to_string()).collect();
    names.join(", ")
}

fn watch_error(e: notify::Error) -> Error {
    Error::InvalidArgument(format!("cannot watch for changes: {e}"))
}
