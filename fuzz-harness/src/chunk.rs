//! Sentence splitting and chunking on arbitrary text, with whitespace-separated words
//! as tokens and sizes taken from the input's first bytes.

use crate::checks::{check_chunks, check_sentences};
use pith_core::chunk::{self, ChunkSize};

/// Byte ends of whitespace-separated words, as the chunk unit tests count tokens.
fn words(s: &str) -> Vec<usize> {
    s.match_indices(char::is_whitespace)
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .collect()
}

/// Runs one input; a failed check panics.
pub fn run(data: &[u8]) {
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
}
