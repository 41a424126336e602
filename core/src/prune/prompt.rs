//! The RAG prompt, built from token pieces so that every context sentence's tokens
//! are known: pruning reads attention per sentence, citations map back to passages.

use std::ops::Range;

use crate::error::Result;
use crate::model::chat::Message;
use crate::model::generate::Generator;

/// One sentence of the retrieved context.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextSentence {
    /// Index of its passage in the context.
    pub passage: usize,
    /// Character range inside the passage text.
    pub chars: Range<usize>,
    pub text: String,
}

/// Splits passages into sentences (abbreviation-aware), keeping their character spans.
pub fn split_passages(passages: &[&str]) -> Vec<ContextSentence> {
    passages
        .iter()
        .enumerate()
        .flat_map(|(p, text)| {
            crate::chunk::sentences(text)
                .into_iter()
                .map(move |r| ContextSentence {
                    passage: p,
                    chars: crate::chunk::char_offset(text, r.start)
                        ..crate::chunk::char_offset(text, r.end),
                    text: text[r].to_string(),
                })
        })
        .collect()
}

const INSTRUCTION: &str = "Answer the question using only the context. Answer briefly.";
const MARKER: &str = "\u{1}PITH_CONTEXT\u{1}";

/// A tokenised prompt with the places that matter.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub ids: Vec<u32>,
    /// Token range of each sentence given to `build`, in order.
    pub sentences: Vec<Range<usize>>,
    /// Token range of the whole context.
    pub context: Range<usize>,
    /// From the question to the end of the prompt: the rows whose attention pruning reads.
    pub question: Range<usize>,
    /// The focus prompt's tokens at the end (empty without one).
    pub focus: Range<usize>,
}

impl Prompt {
    /// The token positions of this prompt that make the answer prompt keeping only
    /// the sentences `kept` (ascending): everything before the context, the kept
    /// sentences, and everything after the context but the focus prompt.
    pub fn kept_positions(&self, kept: &[usize]) -> Vec<usize> {
        let mut positions: Vec<usize> = (0..self.context.start).collect();
        for &s in kept {
            positions.extend(self.sentences[s].clone());
        }
        positions.extend(self.context.end..self.focus.start);
        positions
    }
}

/// The chat prompt with `sentences` (passages separated by blank lines) before the
/// question. `focus`, when given, opens the assistant's answer (e.g. "The answer is").
pub fn build(
    generator: &Generator,
    sentences: &[&ContextSentence],
    question: &str,
    focus: Option<&str>,
) -> Result<Prompt> {
    let template = generator.chat_prompt(&[Message::new(
        "user",
        &format!("{INSTRUCTION}\n\nContext:\n{MARKER}\n\nQuestion: {question}"),
    )])?;
    let (before, after) = template
        .split_once(MARKER)
        .expect("the template keeps the message");
    let mut ids = generator.encode(before)?;
    let context_start = ids.len();
    let mut ranges = Vec::with_capacity(sentences.len());
    let mut previous: Option<usize> = None;
    for s in sentences {
        let sep = match previous {
            None => "",
            Some(p) if p == s.passage => " ",
            Some(_) => "\n\n",
        };
        let start = ids.len();
        ids.extend(generator.encode(&format!("{sep}{}", s.text))?);
        ranges.push(start..ids.len());
        previous = Some(s.passage);
    }
    let context = context_start..ids.len();
    let (gap, rest) = after
        .split_once("Question: ")
        .expect("the template keeps the question");
    ids.extend(generator.encode(gap)?);
    let question_start = ids.len();
    ids.extend(generator.encode(&format!("Question: {rest}"))?);
    // Encoded apart so that the prompt without the focus is a prefix of the one with it.
    let focus_start = ids.len();
    ids.extend(generator.encode(focus.unwrap_or(""))?);
    let end = ids.len();
    Ok(Prompt {
        ids,
        sentences: ranges,
        context,
        question: question_start..end,
        focus: focus_start..end,
    })
}
