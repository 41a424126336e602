//! Inputs that crashed a fuzz target (`scripts/fuzz`), kept as ordinary tests. Each
//! file under `tests/fixtures/fuzz/` is the target's input as libFuzzer wrote it.

mod common;

use std::path::PathBuf;

use pith_core::chunk::{self, ChunkSize};
use pith_core::device::{self, DeviceChoice};
use pith_core::model::bert::Embedder;

fn input(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every character of `text` that is not whitespace lies in some chunk.
fn assert_covered(text: &str, chunks: &[chunk::Chunk]) {
    for (i, c) in text.char_indices() {
        assert!(
            c.is_whitespace() || chunks.iter().any(|k| k.bytes.contains(&i)),
            "{c:?} at byte {i} of {text:?} is in no passage: {chunks:?}"
        );
    }
}

/// A sentence cut into whole groups of tokens lost what followed its last token: the
/// embedder's tokenizer drops U+FFFD, so a trailing one was in no passage.
#[test]
fn tokenizer_chunk_drops_text_after_last_token() {
    let data = input("chunk-drops-text-after-last-token");
    let text = String::from_utf8_lossy(&data);
    let embedder = Embedder::load(
        &common::embedder_dir(),
        &device::open(DeviceChoice::Cpu).device,
    )
    .unwrap();
    // The sizes the tokenizer target takes from the input's first two bytes.
    let size = ChunkSize {
        max_tokens: usize::from(data[0] % 8) + 1,
        overlap_tokens: usize::from(data[1] % 4),
    };
    let chunks = chunk::chunk(&text, size, |s| embedder.token_ends(s));
    assert_covered(&text, &chunks);
}

/// The same without a model: a tokenizer that ignores the last character.
#[test]
fn chunk_keeps_text_the_tokenizer_ignores() {
    let text = "one two three\u{fffd}";
    // One token per word, none for U+FFFD, as MiniLM's tokenizer does.
    let token_ends = |s: &str| {
        assert_eq!(s, text, "one sentence");
        vec![3, 7, 13]
    };
    let size = ChunkSize {
        max_tokens: 1,
        overlap_tokens: 0,
    };
    let chunks = chunk::chunk(text, size, token_ends);
    assert_covered(text, &chunks);
    assert_eq!(chunks.last().unwrap().bytes.end, text.len());
}
