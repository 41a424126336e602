//! End-to-end answers from each question's five context passages, with and without
//! pruning: SQuAD exact match, token F1, answer containment and time to first token.

use std::collections::BTreeMap;

use super::EvalSet;
use crate::ask::{AskOptions, answer_from};
use crate::error::Result;
use crate::model::bert::Embedder;
use crate::model::generate::Generator;
use crate::prune::Budget;

/// The settings compared: no pruning, and pruning at 2x and 4x.
pub const SETTINGS: [(&str, Budget); 3] = [
    ("no_pruning", Budget::Off),
    ("2x", Budget::Ratio(2.0)),
    ("4x", Budget::Ratio(4.0)),
];

/// Tokens generated per answer: enough for a SQuAD answer in a sentence.
const ANSWER_TOKENS: usize = 32;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QaMetrics {
    pub exact_match: f64,
    pub f1: f64,
    pub containment: f64,
    /// Median over questions, in milliseconds.
    pub first_token_ms: f64,
    /// Mean context tokens given to the generator.
    pub context_tokens: f64,
}

/// Lower case, no punctuation, no articles, single spaces: the official SQuAD
/// normalisation.
pub fn normalize(text: &str) -> String {
    let lower: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Token F1 of a prediction against one gold answer, after normalisation.
pub fn f1(prediction: &str, gold: &str) -> f64 {
    let p = normalize(prediction);
    let g = normalize(gold);
    let (p, g): (Vec<&str>, Vec<&str>) = (p.split(' ').collect(), g.split(' ').collect());
    let mut remaining = g.clone();
    let common = p
        .iter()
        .filter(|w| {
            remaining
                .iter()
                .position(|r| r == *w)
                .map(|i| remaining.swap_remove(i))
                .is_some()
        })
        .count();
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / p.len() as f64;
    let recall = common as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

fn best(answers: &[String], score: impl Fn(&str) -> f64) -> f64 {
    answers.iter().map(|a| score(a)).fold(0.0, f64::max)
}

/// Evaluates the first `limit` questions (all when `None`) in each setting.
pub fn evaluate(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    limit: Option<usize>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BTreeMap<&'static str, QaMetrics>> {
    let questions = set.first(limit);
    let mut sums: BTreeMap<&str, (QaMetrics, Vec<f64>)> = BTreeMap::new();
    for (n, q) in questions.iter().enumerate() {
        let (texts, _) = set.context(q)?;
        for (name, budget) in SETTINGS {
            let mut options = AskOptions {
                prune: budget,
                ..AskOptions::default()
            };
            options.sampling.max_tokens = ANSWER_TOKENS;
            let reply = answer_from(
                generator,
                embedder,
                &texts,
                &q.question,
                &options,
                &mut |_| true,
                None,
            )?;
            let text = &reply.generation.text;
            let (m, ttft) = sums.entry(name).or_default();
            m.exact_match += best(&q.answers, |a| {
                f64::from(u8::from(normalize(text) == normalize(a)))
            });
            m.f1 += best(&q.answers, |a| f1(text, a));
            m.containment += best(&q.answers, |a| {
                f64::from(u8::from(normalize(text).contains(&normalize(a))))
            });
            m.context_tokens += reply.tokens_after as f64;
            ttft.push((reply.prune + reply.generation.first_token).as_secs_f64() * 1e3);
        }
        progress(n + 1, questions.len());
    }
    let n = questions.len().max(1) as f64;
    Ok(sums
        .into_iter()
        .map(|(name, (m, ttft))| {
            let metrics = QaMetrics {
                exact_match: m.exact_match / n,
                f1: m.f1 / n,
                containment: m.containment / n,
                first_token_ms: super::median(&ttft),
                context_tokens: m.context_tokens / n,
            };
            (name, metrics)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_normalisation_and_f1() {
        assert_eq!(normalize("The  Denver Broncos!"), "denver broncos");
        assert_eq!(f1("the Denver Broncos", "Denver Broncos"), 1.0);
        assert!((f1("Broncos won", "Denver Broncos") - 0.5).abs() < 1e-9);
        assert_eq!(f1("Panthers", "Denver Broncos"), 0.0);
    }
}
