//! Sentence splitting and passage chunking, keeping character offsets for citations.

use std::ops::Range;

/// Words that end with a period without ending a sentence (compared lowercase,
/// without the final period).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "rev", "jr", "sr", "fr", "gen", "col", "lt", "sgt",
    "capt", "cmdr", "adm", "gov", "sen", "rep", "pres", "hon", "vs", "etc", "inc", "ltd", "co",
    "corp", "no", "nos", "mt", "ft", "ave", "blvd", "rd", "dept", "univ", "est", "approx", "fig",
    "figs", "vol", "vols", "ch", "sec", "ed", "eds", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e", "cf", "al", "a.m", "p.m", "u.s",
    "u.k", "u.n", "d.c", "ph.d", "b.c", "a.d", "op", "pp", "lb", "lbs", "oz",
];

/// Splits `text` into sentences, returned as byte ranges that cover every non-space
/// character. Handles abbreviations ("St.", "U.S.", "a.m."), initials ("J. R. R."),
/// decimals, closing quotes and brackets, and paragraph breaks.
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = vec![];
    let mut start = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if start.is_none() {
            if !c.is_ascii_whitespace() {
                start = Some(i);
            }
            i += 1;
            continue;
        }
        let s = start.expect("checked above");
        if c == b'\n'
            && text[i + 1..]
                .trim_start_matches([' ', '\t', '\r'])
                .starts_with('\n')
        {
            push_trimmed(text, s..i, &mut out);
            start = None;
            i += 1;
            continue;
        }
        if matches!(c, b'.' | b'!' | b'?') {
            let mut end = i + 1;
            while end < bytes.len()
                && matches!(bytes[end], b'.' | b'!' | b'?' | b'"' | b'\'' | b')' | b']')
            {
                end += 1;
            }
            // Closing curly quotes are multi-byte.
            for q in ["\u{201d}", "\u{2019}"] {
                if text[end..].starts_with(q) {
                    end += q.len();
                }
            }
            if ends_sentence(text, s, i, end) {
                push_trimmed(text, s..end, &mut out);
                start = None;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    if let Some(s) = start {
        push_trimmed(text, s..text.len(), &mut out);
    }
    out
}

fn push_trimmed(text: &str, r: Range<usize>, out: &mut Vec<Range<usize>>) {
    let t = &text[r.clone()];
    let end = r.start + t.trim_end().len();
    if end > r.start {
        out.push(r.start..end);
    }
}

/// Whether the punctuation at `mark` (the run ending at `end`) closes the sentence
/// that began at `start`.
fn ends_sentence(text: &str, start: usize, mark: usize, end: usize) -> bool {
    let rest = &text[end..];
    let next = rest.trim_start();
    if next.is_empty() {
        return true;
    }
    if rest.len() == next.len() {
        return false; // no space after: "3.5", "U.S.A", "example.com"
    }
    if text.as_bytes()[mark] != b'.' {
        return true;
    }
    let first = next.chars().next().expect("not empty");
    if !(first.is_uppercase() || first.is_numeric() || "\"'(\u{201c}[".contains(first)) {
        return false;
    }
    let word = text[start..mark]
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("");
    let lower = word.to_lowercase();
    let is_initial = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
    !(is_initial || ABBREVIATIONS.contains(&lower.as_str()))
}

/// A passage: a run of whole sentences (or a piece of one over-long sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Byte range in the source text.
    pub bytes: Range<usize>,
    /// Character (Unicode scalar) range in the source text.
    pub chars: Range<usize>,
}

/// Chunking parameters, in tokens of the embedder.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSize {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
}

impl Default for ChunkSize {
    /// Passages fit MiniLM's 256-token window with room for its special tokens.
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap_tokens: 40,
        }
    }
}

/// Packs sentences into passages of at most `size.max_tokens` tokens, each starting
/// with up to `size.overlap_tokens` tokens of whole sentences from the one before.
/// `token_ends` gives the byte end of every token of a string (the tokenizer's offsets).
pub fn chunk(text: &str, size: ChunkSize, token_ends: impl Fn(&str) -> Vec<usize>) -> Vec<Chunk> {
    let max = size.max_tokens.max(1);
    // Sentences longer than a passage are cut at token boundaries first.
    let mut pieces: Vec<(Range<usize>, usize)> = vec![];
    for s in sentences(text) {
        let ends = token_ends(&text[s.clone()]);
        if ends.len() <= max {
            pieces.push((s, ends.len()));
            continue;
        }
        let mut from = s.start;
        let groups = ends.chunks(max);
        let last = groups.len() - 1;
        for (g, group) in groups.enumerate() {
            // The last piece runs to the end of the sentence, not of its last token:
            // what the tokenizer drops (U+FFFD, control characters) stays in a passage.
            let to = if g == last {
                s.end
            } else {
                s.start + group[group.len() - 1]
            };
            if to > from {
                pieces.push((from..to, group.len()));
            }
            from = to;
        }
    }

    let mut chunks = vec![];
    let mut i = 0;
    while i < pieces.len() {
        let mut j = i;
        let mut tokens = 0;
        while j < pieces.len() && (j == i || tokens + pieces[j].1 <= max) {
            tokens += pieces[j].1;
            j += 1;
        }
        chunks.push(pieces[i].0.start..pieces[j - 1].0.end);
        if j == pieces.len() {
            break;
        }
        // Step back over whole pieces worth at most the overlap, never to `i` itself.
        let mut next = j;
        let mut overlap = 0;
        while next > i + 1 && overlap + pieces[next - 1].1 <= size.overlap_tokens {
            overlap += pieces[next - 1].1;
            next -= 1;
        }
        i = next;
    }
    with_char_offsets(text, chunks)
}

fn with_char_offsets(text: &str, ranges: Vec<Range<usize>>) -> Vec<Chunk> {
    ranges
        .into_iter()
        .map(|bytes| Chunk {
            chars: char_offset(text, bytes.start)..char_offset(text, bytes.end),
            bytes,
        })
        .collect()
}

/// The character index of byte offset `byte` (a char boundary).
pub fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        sentences(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn abbreviations_and_initials_do_not_end_sentences() {
        assert_eq!(
            split(
                "Rev. Jesse Jackson spoke at St. Mary's at 8 a.m. on Sunday. J. R. R. Tolkien wrote it. The U.S. Army won."
            ),
            vec![
                "Rev. Jesse Jackson spoke at St. Mary's at 8 a.m. on Sunday.",
                "J. R. R. Tolkien wrote it.",
                "The U.S. Army won."
            ]
        );
    }

    #[test]
    fn quotes_questions_decimals_and_paragraphs() {
        assert_eq!(
            split(
                "He said \"Go!\" Then what? It cost 3.5 dollars.\n\nNew paragraph without stop\n\nEnd"
            ),
            vec![
                "He said \"Go!\"",
                "Then what?",
                "It cost 3.5 dollars.",
                "New paragraph without stop",
                "End"
            ]
        );
    }

    #[test]
    fn lowercase_after_period_continues() {
        assert_eq!(
            split("See e.g. the book. and more"),
            vec!["See e.g. the book. and more"]
        );
    }

    fn words(s: &str) -> Vec<usize> {
        s.match_indices(|c: char| c.is_whitespace())
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .collect()
    }

    #[test]
    fn chunks_respect_size_and_overlap() {
        let text = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let size = ChunkSize {
            max_tokens: 6,
            overlap_tokens: 3,
        };
        let chunks: Vec<&str> = chunk(text, size, words)
            .iter()
            .map(|c| &text[c.bytes.clone()])
            .collect();
        assert_eq!(
            chunks,
            vec![
                "One two three. Four five six.",
                "Four five six. Seven eight nine.",
                "Seven eight nine. Ten eleven twelve."
            ]
        );
    }

    #[test]
    fn long_sentences_are_cut_and_offsets_are_chars() {
        let text = "é é é é é é é";
        let size = ChunkSize {
            max_tokens: 3,
            overlap_tokens: 0,
        };
        let chunks = chunk(text, size, words);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].chars, 0..5);
        assert_eq!(&text[chunks[2].bytes.clone()], " é");
        assert_eq!(chunks[2].chars.end, text.chars().count());
    }
}
