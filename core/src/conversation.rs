//! Conversations over the documents: a question that leans on the one before it ("How
//! long do they live in captivity?") still retrieves, because the subject it leaves
//! out is carried over from the earlier question.

use std::sync::atomic::AtomicBool;

use crate::ask::Carried;
use crate::ask::{Answer, AskOptions};
use crate::error::Result;
use crate::prune::ANAPHORA;
use crate::rag::Engine;

/// One question and its answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Turn {
    pub question: String,
    /// The question as it was searched: with the words it leans on carried over.
    pub standalone: String,
    pub answer: String,
    /// The cited text the answer was given from, lower-cased.
    #[serde(skip)]
    sources: Vec<String>,
}

/// The questions asked so far; `Engine::chat` adds a turn per question. It also keeps
/// the generator's cache of the last turn's context, so that a follow-up over the same
/// passages does not run them again.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    turns: Vec<Turn>,
    memory: Carried,
}

/// Words that refer back to something named before, besides the pruner's
/// [`ANAPHORA`] (which open a sentence; these stand anywhere in a question).
const ALSO_LEANING: &[&str] = &["them", "him", "that", "there", "one"];

fn leans_back(word: &str) -> bool {
    ANAPHORA.contains(&word) || ALSO_LEANING.contains(&word)
}

/// Words that carry no subject: question words, pronouns, auxiliaries, prepositions.
const FUNCTION_WORDS: &[&str] = &[
    "a", "about", "after", "also", "an", "and", "are", "as", "at", "be", "been", "before", "being",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "how",
    "in", "into", "is", "many", "much", "of", "on", "or", "over", "so", "than", "the", "to",
    "under", "was", "were", "what", "when", "where", "which", "while", "who", "whom", "whose",
    "why", "will", "with", "would",
];

/// A follow-up with fewer content words than this leans on the question before it.
const SHORT: usize = 3;

impl Conversation {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// Forgets every turn: the next question starts a new conversation.
    pub fn reset(&mut self) {
        self.turns.clear();
        self.memory = Carried::default();
    }

    /// `question` made self-contained: when it leans on the previous question (a
    /// pronoun, an opening "and", or hardly any content words), the previous
    /// standalone question's content words it lacks follow it in brackets; of those,
    /// only the ones found in two or more of the previous answer's citations when
    /// there are such (the conversation's subject, not the earlier question's detail).
    pub fn standalone(&self, question: &str) -> String {
        let Some(previous) = self.turns.last() else {
            return question.to_string();
        };
        let asked = words(question);
        let lowered: Vec<String> = asked.iter().map(|w| w.to_lowercase()).collect();
        let content = lowered.iter().filter(|w| is_content(w)).count();
        let leans = lowered.first().is_some_and(|w| w == "and")
            || lowered.iter().any(|w| leans_back(w))
            || content < SHORT;
        if !leans {
            return question.to_string();
        }
        let mut carried: Vec<&str> = vec![];
        for w in words(&previous.standalone) {
            let l = w.to_lowercase();
            let new = !lowered.contains(&l) && !carried.iter().any(|c| c.to_lowercase() == l);
            if is_content(&l) && new {
                carried.push(w);
            }
        }
        let subject: Vec<&str> = carried
            .iter()
            .copied()
            .filter(|w| {
                let l = w.to_lowercase();
                previous.sources.iter().filter(|s| s.contains(&l)).count() >= 2
            })
            .collect();
        if !subject.is_empty() {
            carried = subject;
        }
        if carried.is_empty() {
            question.to_string()
        } else {
            format!("{question} ({})", carried.join(" "))
        }
    }

    fn push(&mut self, question: &str, standalone: String, answer: &Answer) {
        self.turns.push(Turn {
            question: question.to_string(),
            standalone,
            answer: answer.text.clone(),
            sources: answer
                .citations
                .iter()
                .map(|c| c.snippet.to_lowercase())
                .collect(),
        });
    }
}

/// The words of `text`, without punctuation.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect()
}

fn is_content(word: &str) -> bool {
    !FUNCTION_WORDS.contains(&word) && !leans_back(word)
}

impl Engine {
    /// Answers `question` as the next turn of `conversation`: asked as
    /// [`Conversation::standalone`] makes it, then added to the conversation.
    /// Streaming, cancellation and abstention as in [`Engine::ask`]; a cancelled or
    /// failed question adds no turn.
    pub fn chat(
        &self,
        conversation: &mut Conversation,
        question: &str,
        options: &AskOptions,
        on_text: &mut dyn FnMut(&str) -> bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Answer> {
        let standalone = conversation.standalone(question);
        let memory = Some(&mut conversation.memory);
        let answer = self.ask_with_memory(&standalone, options, memory, on_text, cancel)?;
        conversation.push(question, standalone, &answer);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(question: &str) -> Conversation {
        Conversation {
            turns: vec![Turn {
                question: question.into(),
                standalone: question.into(),
                answer: String::new(),
                sources: vec![],
            }],
            memory: Carried::default(),
        }
    }

    #[test]
    fn a_follow_up_carries_the_subject_it_leaves_out() {
        let c = after("What is the scientific name of the aardvark?");
        assert_eq!(
            c.standalone("How long do they live in captivity?"),
            "How long do they live in captivity? (scientific name aardvark)"
        );
        assert_eq!(
            c.standalone("And the IUCN rating?"),
            "And the IUCN rating? (scientific name aardvark)"
        );
    }

    #[test]
    fn the_subject_the_citations_share_is_carried_without_the_detail() {
        let mut c = after("What is the scientific name of the aardvark?");
        c.turns[0].sources = vec![
            "the aardvark (orycteropus afer) is a burrowing mammal.".into(),
            "its scientific name means earth pig.".into(),
            "aardvarks live in africa.".into(),
        ];
        assert_eq!(
            c.standalone("How long do they live in captivity?"),
            "How long do they live in captivity? (aardvark)"
        );
    }

    #[test]
    fn a_question_that_stands_alone_is_searched_as_asked() {
        let c = after("What is the scientific name of the aardvark?");
        let q = "Which US Navy squadron was nicknamed the Aardvarks?";
        assert_eq!(c.standalone(q), q);
        assert_eq!(
            Conversation::new().standalone("When did it open?"),
            "When did it open?"
        );
    }
}
