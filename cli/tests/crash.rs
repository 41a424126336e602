//! Crash safety: `pith ingest` and `pith sync` are killed with SIGKILL at random
//! moments, again and again; after every kill the database must open, pass its
//! integrity checks, hold each document whole or not at all, and let the work resume.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pith_core::{DeviceChoice, DocumentInfo, Engine, EngineOptions};

/// Enough that twenty short runs, each mostly spent loading the embedder, cannot finish it.
const DOCUMENTS: usize = 120;
const KILLS: usize = 20;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// Varied, deterministic prose: each document is different, so none is a duplicate. A
/// revised log has one more sentence.
fn log(d: usize, revised: bool) -> String {
    let words = [
        "harbour", "lantern", "granite", "tide", "keeper", "signal", "fog", "reef", "beacon",
        "storm", "coast", "vessel", "mirror", "lens", "oil", "tower", "island", "night",
    ];
    let mut text = format!("# Log {d}\n\n");
    for s in 0..60 {
        let pick = |k: usize| words[(d * 7 + s * 3 + k * 5) % words.len()];
        text.push_str(&format!(
            "On day {s} of log {d} the {} saw the {} near the {} and wrote about the {}. ",
            pick(0),
            pick(1),
            pick(2),
            pick(3)
        ));
        if s % 10 == 9 {
            text.push_str("\n\n");
        }
    }
    if revised {
        text.push_str("The keeper revised this log.");
    }
    text
}

fn log_path(dir: &Path, d: usize) -> PathBuf {
    dir.join(format!("log-{d:03}.md"))
}

fn write_corpus(dir: &Path, documents: usize) {
    for d in 0..documents {
        std::fs::write(log_path(dir, d), log(d, false)).unwrap();
    }
}

/// A fixed-seed generator, so a failing run can be repeated.
fn random() -> impl FnMut() -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Runs `command` (`ingest` or `sync`) on `corpus` `kills` times, killing it at a random
/// moment, calling `check` after each kill; returns how many kills landed mid-run.
fn kill_repeatedly(
    db: &Path,
    command: &str,
    corpus: &Path,
    kills: usize,
    mut check: impl FnMut(),
) -> usize {
    let mut next = random();
    let mut killed_mid_run = 0;
    for _ in 0..kills {
        let mut child = pith(db, command, corpus).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200 + next() % 2500));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().ok();
        child.wait().unwrap();
        check();
    }
    killed_mid_run
}

fn pith(db: &Path, command: &str, corpus: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pith"));
    cmd.args(["--device", "cpu", "--models"])
        .arg(models())
        .arg("--db")
        .arg(db)
        .arg(command)
        .arg(corpus)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Opens the database as an app would and checks it is whole; returns the documents.
fn check(db: &Path) -> Vec<DocumentInfo> {
    let mut options = EngineOptions::new(models(), db);
    options.device = DeviceChoice::Cpu;
    let engine = Engine::open(options).expect("the database opens after a kill");
    let problems = engine.with_store(|s| s.verify()).unwrap();
    assert!(problems.is_empty(), "after a kill: {problems:?}");
    let docs = engine.documents().unwrap();
    for d in &docs {
        assert!(d.passages > 0, "document {} has no passages", d.source);
    }
    docs
}

#[test]
fn ingest_survives_sigkill_at_random_moments() {
    let dir = std::env::temp_dir().join(format!("pith-crash-{}", std::process::id()));
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    write_corpus(&corpus, DOCUMENTS);
    let db = dir.join("crash.db");

    let mut stored = 0;
    let killed = kill_repeatedly(&db, "ingest", &corpus, KILLS, || {
        let now = check(&db).len();
        assert!(now >= stored, "documents went from {stored} to {now}");
        stored = now;
    });
    let status = pith(&db, "ingest", &corpus).status().unwrap();
    assert!(status.success());
    assert_eq!(check(&db).len(), DOCUMENTS);
    assert!(killed > 0, "no kill landed while ingest ran");
    std::fs::remove_dir_all(&dir).ok();
}

/// A sync that revises two logs in three and deletes one in five, killed again and
/// again: every log is stored once, as it was or as it is, never both or neither.
#[test]
fn sync_survives_sigkill_at_random_moments() {
    const LOGS: usize = 60;
    let dir = std::env::temp_dir().join(format!("pith-crash-sync-{}", std::process::id()));
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    write_corpus(&corpus, LOGS);
    let db = dir.join("crash.db");
    assert!(pith(&db, "sync", &corpus).status().unwrap().success());
    assert_eq!(check(&db).len(), LOGS);

    let deleted = |d: usize| d.is_multiple_of(5);
    let revised = |d: usize| !d.is_multiple_of(3);
    for d in 0..LOGS {
        if deleted(d) {
            std::fs::remove_file(log_path(&corpus, d)).unwrap();
        } else if revised(d) {
            std::fs::write(log_path(&corpus, d), log(d, true)).unwrap();
        }
    }
    let chars = |d: usize, revised: bool| log(d, revised).chars().count();
    let check_logs = |finished: bool| {
        let mut by_source: HashMap<String, Vec<DocumentInfo>> = HashMap::new();
        for doc in check(&db) {
            by_source.entry(doc.source.clone()).or_default().push(doc);
        }
        for d in 0..LOGS {
            let source = log_path(&corpus, d).to_string_lossy().into_owned();
            let docs = by_source.remove(&source).unwrap_or_default();
            let lengths: Vec<usize> = docs.iter().map(|doc| doc.chars).collect();
            let now = chars(d, revised(d));
            match (deleted(d), finished) {
                (true, true) => assert!(docs.is_empty(), "{source} not removed"),
                (true, false) => assert!(lengths.len() <= 1, "{source}: {lengths:?}"),
                (false, true) => assert_eq!(lengths, [now], "{source}"),
                (false, false) => assert!(
                    lengths == [now] || lengths == [chars(d, false)],
                    "{source}: stored {lengths:?}"
                ),
            }
        }
        assert!(by_source.is_empty(), "unknown documents: {by_source:?}");
    };
    let killed = kill_repeatedly(&db, "sync", &corpus, KILLS / 2, || check_logs(false));
    assert!(pith(&db, "sync", &corpus).status().unwrap().success());
    check_logs(true);
    assert!(killed > 0, "no kill landed while sync ran");
    std::fs::remove_dir_all(&dir).ok();
}
