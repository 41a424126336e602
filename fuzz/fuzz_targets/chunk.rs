//! Sentence splitting and chunking on arbitrary text, with whitespace-separated words
//! as tokens and sizes taken from the input's first bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pith_core::chunk::{self, ChunkSize};
use pith_fuzz::{check_chunks, check_sentences};

/// Byte ends of whitespace-separated words, as the chunk unit tests count tokens.
fn words(s: &str) -> Vec<usize> {
    s.match_indices(char::is_whitespace)
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [max, overlap, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    check_sentences(&text, &chunk::sentences(&text));
    let size = ChunkSize {
        max_tokens: usize::from(*max % 32),
        overlap_tokens: usize::from(*overlap % 32),
    };
    check_chunks(&text, &chunk::chunk(&text, size, words));
});
