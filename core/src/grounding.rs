//! Whether the retrieved documents can answer a question at all, so that `ask` can say
//! they do not instead of letting the model guess.
//!
//! The grounding score is the best cosine similarity (MiniLM) between the question and
//! a retrieved sentence. On the squad sets it tells a question asked with its gold
//! passage from the same question asked without it at AUROC 0.89-0.97, and adding the
//! decode attention's support to it made that worse (docs/eval.md "Grounding"), so the
//! score is known before generation and an abstaining ask generates nothing.

/// Below this grounding score `ask` abstains: the score at which a tenth of the
/// even-numbered squad-superbowl questions, asked with their gold passage, would
/// abstain (the rule fixed before measuring; checked on the odd ones and heldout-wiki,
/// docs/eval.md).
pub const ABSTAIN_BELOW: f64 = 0.548;

/// A threshold that never abstains: no cosine is below -1.
pub const NEVER: f64 = -1.0;

/// The answer of an ask that abstains.
pub const NOTICE: &str = "The documents do not contain the answer to this question.";

/// The grounding score of a question over its context's sentences' similarities to it;
/// -1, the least cosine, when there is no context.
pub fn score(similarity: &[f64]) -> f64 {
    similarity.iter().copied().fold(-1.0, f64::max)
}

/// Whether an ask with threshold `below` abstains at grounding `score`; a threshold of
/// -1 or lower never abstains.
pub fn abstains(score: f64, below: f64) -> bool {
    score < below
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_sentence_grounds_the_question() {
        assert_eq!(score(&[0.2, 0.7, 0.5]), 0.7);
        assert_eq!(score(&[]), -1.0);
        assert!(abstains(score(&[0.3]), ABSTAIN_BELOW));
        assert!(!abstains(score(&[0.6]), ABSTAIN_BELOW));
        assert!(!abstains(score(&[]), -1.0));
    }
}
