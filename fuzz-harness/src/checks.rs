//! What `pith_core::chunk` promises, checked by the `chunk` and `tokenizer` targets.

use std::ops::Range;

use pith_core::chunk::{Chunk, char_offset};

/// Byte ranges that are non-empty, in bounds, on character boundaries and in order.
fn check_ranges<'a>(text: &str, ranges: impl Iterator<Item = &'a Range<usize>>) {
    let mut last_start = None;
    for r in ranges {
        assert!(r.start < r.end, "empty range {r:?}");
        assert!(
            text.get(r.clone()).is_some(),
            "{r:?} is not a slice of {text:?}"
        );
        assert!(
            last_start < Some(r.start),
            "{r:?} does not start after the last"
        );
        last_start = Some(r.start);
    }
}

/// Every character no range covers is whitespace.
fn check_coverage(text: &str, ranges: &[Range<usize>]) {
    for (i, c) in text.char_indices() {
        if !c.is_whitespace() {
            assert!(
                ranges.iter().any(|r| r.contains(&i)),
                "{c:?} at byte {i} of {text:?} is in no range of {ranges:?}"
            );
        }
    }
}

/// `sentences`: disjoint, ordered, trimmed ranges covering every non-space character.
pub fn check_sentences(text: &str, sentences: &[Range<usize>]) {
    check_ranges(text, sentences.iter());
    for pair in sentences.windows(2) {
        assert!(pair[0].end <= pair[1].start, "overlap: {pair:?}");
    }
    for s in sentences {
        let t = &text[s.clone()];
        assert_eq!(t.trim_end(), t, "sentence {s:?} ends with whitespace");
        assert!(!t.starts_with(|c: char| c.is_ascii_whitespace()), "{s:?}");
    }
    check_coverage(text, sentences);
}

/// `chunk`: passages in order, covering every non-space character, with character
/// offsets that match their byte offsets.
pub fn check_chunks(text: &str, chunks: &[Chunk]) {
    check_ranges(text, chunks.iter().map(|c| &c.bytes));
    for c in chunks {
        let chars = char_offset(text, c.bytes.start)..char_offset(text, c.bytes.end);
        assert_eq!(c.chars, chars, "character offsets of {:?}", c.bytes);
    }
    let bytes: Vec<Range<usize>> = chunks.iter().map(|c| c.bytes.clone()).collect();
    check_coverage(text, &bytes);
}
