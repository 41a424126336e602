//! Crash-safe ingest: `pith ingest` of a corpus is killed with SIGKILL at random
//! moments, again and again; after every kill the database must open, pass its
//! integrity checks, hold each document whole or not at all, and let ingest resume.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pith_core::{DeviceChoice, Engine, EngineOptions};

/// Enough that twenty short runs, each mostly spent loading the embedder, cannot finish it.
const DOCUMENTS: usize = 120;
const KILLS: usize = 20;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// Varied, deterministic prose: each document is different, so none is a duplicate.
fn write_corpus(dir: &Path) {
    let words = [
        "harbour", "lantern", "granite", "tide", "keeper", "signal", "fog", "reef", "beacon",
        "storm", "coast", "vessel", "mirror", "lens", "oil", "tower", "island", "night",
    ];
    for d in 0..DOCUMENTS {
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
        std::fs::write(dir.join(format!("log-{d:02}.md")), text).unwrap();
    }
}

fn ingest(db: &Path, corpus: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pith"));
    cmd.args(["--device", "cpu", "--models"])
        .arg(models())
        .arg("--db")
        .arg(db)
        .arg("ingest")
        .arg(corpus)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Opens the database as an app would and checks it is whole; returns the documents.
fn check(db: &Path) -> usize {
    let mut options = EngineOptions::new(models(), db);
    options.device = DeviceChoice::Cpu;
    let engine = Engine::open(options).expect("the database opens after a kill");
    let problems = engine.with_store(|s| s.verify()).unwrap();
    assert!(problems.is_empty(), "after a kill: {problems:?}");
    let docs = engine.documents().unwrap();
    for d in &docs {
        assert!(d.passages > 0, "document {} has no passages", d.source);
    }
    docs.len()
}

#[test]
fn ingest_survives_sigkill_at_random_moments() {
    let dir = std::env::temp_dir().join(format!("pith-crash-{}", std::process::id()));
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    write_corpus(&corpus);
    let db = dir.join("crash.db");

    // A fixed-seed generator, so a failing run can be repeated.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut stored = 0;
    let mut killed_mid_ingest = 0;
    for _ in 0..KILLS {
        let mut child = ingest(&db, &corpus).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200 + next() % 2500));
        if child.try_wait().unwrap().is_none() {
            killed_mid_ingest += 1;
        }
        child.kill().ok();
        child.wait().unwrap();
        let now = check(&db);
        assert!(now >= stored, "documents went from {stored} to {now}");
        stored = now;
    }
    let status = ingest(&db, &corpus).status().unwrap();
    assert!(status.success());
    assert_eq!(check(&db), DOCUMENTS);
    assert!(killed_mid_ingest > 0, "no kill landed while ingest ran");
    std::fs::remove_dir_all(&dir).ok();
}
