//! Embeds text with pith's MiniLM on the CPU device, for scripts that re-read evaluation
//! logs (scripts/attribution-variants.py): each line of stdin is a JSON list of texts,
//! each line of stdout the JSON list of their unit vectors.
//!
//!     cargo run --release --example embed -- models/minilm < texts.jsonl

use std::io::{BufRead, Write};

use pith_core::DeviceChoice;
use pith_core::device;
use pith_core::model::bert::Embedder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "models/minilm".into());
    let embedder = Embedder::load(dir.as_ref(), &device::open(DeviceChoice::Cpu).device)?;
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let texts: Vec<String> = serde_json::from_str(&line?)?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        writeln!(out, "{}", serde_json::to_string(&embedder.embed(&texts)?)?)?;
    }
    Ok(())
}
