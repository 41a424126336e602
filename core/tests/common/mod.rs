//! Shared helpers for the integration tests: model paths and fixtures.
#![allow(dead_code)]

use std::path::PathBuf;

use pith_core::{DeviceChoice, Engine, EngineOptions};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The models directory; `scripts/fetch-models` fills it.
pub fn models() -> PathBuf {
    std::env::var_os("PITH_MODELS").map_or_else(|| root().join("models"), PathBuf::from)
}

pub fn gguf_path() -> PathBuf {
    models().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn embedder_dir() -> PathBuf {
    models().join("minilm")
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The evaluation set, copied into the repository so that a clean clone tests alone.
pub fn eval_dir() -> PathBuf {
    root().join("eval/squad-superbowl")
}

/// A scratch directory for one test's database, removed when dropped.
pub struct TempDb(pub PathBuf);

impl TempDb {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pith-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn path(&self) -> PathBuf {
        self.0.join("pith.db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Engine options on the CPU device for a scratch database.
pub fn options(db: &TempDb) -> EngineOptions {
    let mut o = EngineOptions::new(models(), db.path());
    o.device = DeviceChoice::Cpu;
    o
}

pub fn engine(db: &TempDb) -> Engine {
    Engine::open(options(db)).unwrap()
}
