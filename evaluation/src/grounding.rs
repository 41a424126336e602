//! Grounded answers: whether an answer span is attributed to the context sentence
//! that holds the gold answer, and whether a grounding score tells a question asked
//! with its gold passage from the same question asked without it.

use std::collections::BTreeMap;

use super::qa::{self, normalize};
use super::{EvalSet, HeadScore, Question, best_heads};
use pith_core::Result;
use pith_core::ask::{AskOptions, Reply, answer_from};
use pith_core::attribution::{self, ATTRIBUTION_HEADS, SpanSupport};
use pith_core::grounding;
use pith_core::model::bert::Embedder;
use pith_core::model::generate::{Generation, Generator};
use pith_core::prune::{self, ContextSentence};

/// Tokens per answer: room for a second sentence, where inventions show up.
const ANSWER_TOKENS: usize = 48;

/// One answer's grounding features.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Run {
    pub answer: String,
    pub contains_gold: bool,
    /// The grounding score: the best MiniLM cosine between the question and a context
    /// sentence.
    pub retrieval: f64,
    /// Mean and least log-probability of the answer's tokens under the model.
    pub logprob_mean: f64,
    pub logprob_min: f64,
    /// The least, the mean and the first answer span's best lift (shipped heads).
    pub lift_min: f64,
    pub lift_mean: f64,
    pub lift_first: f64,
    /// Mean share of the answer's attention (shipped heads) on the context.
    pub context_mass: f64,
    /// How the answer span holding the gold answer was attributed, when one does.
    pub attribution: Option<Attributed>,
}

/// Whether the top context sentence of the answer span holding the gold answer
/// holds it too, by each method.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Attributed {
    /// The shipped heads: strict (a gold-passage sentence overlapping an answer span)
    /// and lenient (any kept sentence containing an answer string).
    pub strict: bool,
    pub lenient: bool,
    /// The heads' attention alone, without the embedder's similarity.
    #[serde(default)]
    pub strict_attention_only: bool,
    /// Without the length prior (attention alone).
    pub strict_no_prior: bool,
    /// Strict, reading the whole answer sentence that holds the span.
    #[serde(default)]
    pub strict_whole_sentence: bool,
    /// Share of the kept sentences that are strictly correct: a random pick's odds.
    pub chance: f64,
    pub lexical: bool,
    pub embedding: bool,
    pub first_kept: bool,
    /// Strict, per head of `all_heads` (head search only).
    pub per_head: Vec<bool>,
    /// Every kept sentence's score by each method, for weighing them together offline.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// The answer span's decode rows: the token each predicts and the mass each
    /// shipped head put on each kept sentence (`[h * kept + j]`).
    #[serde(default)]
    pub rows: Vec<Row>,
    /// The answer span holding the gold answer.
    #[serde(default)]
    pub span: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub token: String,
    pub mass: Vec<f32>,
}

/// One kept sentence as a candidate source of the answer span holding the gold
/// answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// The shipped heads' support and its lift above the length prior.
    pub support: f64,
    pub lift: f64,
    /// MiniLM cosine with the answer span, and with the answer sentence holding it
    /// (what the shipped reading weighs).
    pub embedding: f64,
    #[serde(default)]
    pub sentence_embedding: f64,
    /// Answer-span words (longer than two letters) the sentence contains.
    pub lexical: f64,
    pub strict: bool,
    pub lenient: bool,
    #[serde(default)]
    pub text: String,
}

/// A question asked with its context and, unless a distractor also holds the answer,
/// again with the gold passage removed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QuestionRuns {
    pub id: String,
    pub answerable: Run,
    pub unanswerable: Option<Run>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GroundingReport {
    pub questions: usize,
    /// Attribution accuracy (strict) over answers holding the gold answer.
    pub attribution: f64,
    pub attribution_lenient: f64,
    pub attributed_answers: usize,
    /// AUROC of the shipped grounding score, answerable against unanswerable runs.
    pub abstention_auroc: f64,
    /// How often `ask` abstains at the shipped threshold, with the gold passage and
    /// without it.
    pub abstain_threshold: f64,
    pub abstain_rate_answerable: f64,
    pub abstain_rate_unanswerable: f64,
    /// The threshold rule on these runs: the grounding score below which a tenth of
    /// the even-numbered questions' answerable runs fall.
    pub abstain_below_fit: f64,
    /// AUROC of each grounding feature, answerable against unanswerable runs.
    pub auroc: BTreeMap<String, f64>,
    /// Attribution accuracy of the baselines and ablations.
    pub baselines: BTreeMap<String, f64>,
    /// Questions asked without their gold passage (the rest were leaky).
    pub unanswerable: usize,
    /// Per head, strict attribution on the even and the odd answers (head search).
    pub heads: Vec<HeadScore>,
}

/// Everything one question gives; `heads` taps every head in the answerable run.
pub fn ask_question(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    q: &Question,
    head_search: bool,
) -> Result<QuestionRuns> {
    let (texts, gold) = set.context(q)?;
    let all_heads = prune::rerank::all_heads(generator);
    let heads = if head_search {
        all_heads.clone()
    } else {
        ATTRIBUTION_HEADS.to_vec()
    };
    let answerable = run(generator, embedder, &texts, Some(gold), q, &heads)?;
    let leaky = texts
        .iter()
        .enumerate()
        .any(|(i, t)| i != gold && q.answers.iter().any(|a| qa::holds(t, a)));
    let unanswerable = if leaky {
        None
    } else {
        let rest: Vec<&str> = (0..texts.len())
            .filter(|&i| i != gold)
            .map(|i| texts[i])
            .collect();
        Some(run(generator, embedder, &rest, None, q, ATTRIBUTION_HEADS)?)
    };
    Ok(QuestionRuns {
        id: q.id.clone(),
        answerable,
        unanswerable,
    })
}

/// One answer from `texts` (`gold` the index of the gold passage, if there).
fn run(
    generator: &Generator,
    embedder: &Embedder,
    texts: &[&str],
    gold: Option<usize>,
    q: &Question,
    heads: &[(usize, usize)],
) -> Result<Run> {
    // Every run answers, so that its features can be read; whether it would abstain
    // follows from its grounding score.
    let mut options = AskOptions {
        attribution_heads: heads.to_vec(),
        abstain_below: grounding::NEVER,
        ..AskOptions::default()
    };
    options.sampling.max_tokens = ANSWER_TOKENS;
    let reply = answer_from(
        generator,
        embedder,
        texts,
        &q.question,
        &options,
        None,
        &mut |_| true,
        None,
    )?;
    let g = reply
        .generation
        .as_ref()
        .expect("an ask that never abstains generates");
    let attention = reply
        .attention
        .as_ref()
        .ok_or_else(|| pith_core::Error::Unsupported("the answer read no attention".into()))?;
    let prior = attribution::length_prior(&attention.slots);
    let shipped: Vec<usize> = ATTRIBUTION_HEADS
        .iter()
        .filter_map(|h| heads.iter().position(|x| x == h))
        .collect();
    let kept: Vec<&[f32]> = reply
        .kept
        .iter()
        .map(|&i| reply.vectors[i].as_slice())
        .collect();
    let supported = attribution::attribute_with_meaning(
        attention,
        &shipped,
        &g.text,
        &g.token_ends,
        &prior,
        embedder,
        &kept,
    )?;
    let lifts: Vec<f64> = supported
        .iter()
        .filter(|s| !s.supports.is_empty())
        .map(|s| s.lift)
        .collect();
    let lp: Vec<f64> = g.token_logprobs.iter().map(|&x| f64::from(x)).collect();
    let contains_gold = q.answers.iter().any(|a| qa::holds(&g.text, a));
    let attribution = match gold {
        Some(gold) if contains_gold => {
            attributed(embedder, &reply, &supported, &shipped, heads.len(), gold, q)?
        }
        _ => None,
    };
    Ok(Run {
        answer: g.text.clone(),
        contains_gold,
        retrieval: reply.grounding,
        logprob_mean: mean(&lp),
        logprob_min: lp.iter().copied().fold(0.0, f64::min),
        lift_min: lifts.iter().copied().fold(f64::INFINITY, f64::min).min(1.0),
        lift_mean: mean(&lifts),
        lift_first: lifts.first().copied().unwrap_or(0.0),
        context_mass: mean(
            &supported
                .iter()
                .filter(|s| !s.supports.is_empty())
                .map(|s| s.context_mass)
                .collect::<Vec<_>>(),
        ),
        attribution,
    })
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Scores the attribution of the answer span holding the gold answer.
fn attributed(
    embedder: &Embedder,
    reply: &Reply,
    supported: &[SpanSupport],
    shipped: &[usize],
    heads: usize,
    gold: usize,
    q: &Question,
) -> Result<Option<Attributed>> {
    let Some(g) = &reply.generation else {
        return Ok(None);
    };
    let holds = |text: &str| q.answers.iter().any(|a| qa::holds(text, a));
    let Some(answer) = supported
        .iter()
        .find(|s| holds(&g.text[s.bytes.clone()]) && !s.supports.is_empty())
    else {
        return Ok(None);
    };
    let kept: Vec<&ContextSentence> = reply.kept.iter().map(|&i| &reply.sentences[i]).collect();
    let strict = |j: usize| {
        let s = kept[j];
        s.passage == gold
            && q.answer_spans
                .iter()
                .any(|&(a, b)| s.chars.start < b && a < s.chars.end)
    };
    let Some(attention) = &reply.attention else {
        return Ok(None);
    };
    let prior = attribution::length_prior(&attention.slots);
    let top = |heads: &[usize], prior: &[f64]| -> Option<usize> {
        attribution::attribute(attention, heads, &g.text, &g.token_ends, prior)
            .into_iter()
            .find(|s| s.bytes == answer.bytes)
            .and_then(|s| s.supports.first().map(|&(j, _)| j))
    };
    let zero = vec![0.0; kept.len()];
    let span = &g.text[answer.bytes.clone()];
    let words: Vec<String> = normalize(span)
        .split(' ')
        .filter(|w| w.len() > 2)
        .map(str::to_owned)
        .collect();
    let overlaps: Vec<f64> = kept
        .iter()
        .map(|s| {
            let n = normalize(&s.text);
            words.iter().filter(|w| n.contains(w.as_str())).count() as f64
        })
        .collect();
    let sentence = pith_core::chunk::sentences(&g.text)
        .into_iter()
        .find(|r| r.contains(&answer.bytes.start))
        .map_or(span, |r| g.text[r].trim());
    // The kept sentences' vectors are the pruner's; only the span and its sentence
    // are embedded here.
    let asked = embedder.embed(&[span, sentence])?;
    let to = |v: &[f32]| -> Vec<f64> {
        reply
            .kept
            .iter()
            .map(|&i| prune::cosine(&reply.vectors[i], v))
            .collect()
    };
    let (similarities, sentence_similarities) = (to(&asked[0]), to(&asked[1]));
    let lexical = argmax(overlaps.iter().copied());
    let embedding = argmax(similarities.iter().copied());
    let best = answer.supports[0].0;
    let mut support = vec![0.0; kept.len()];
    for &(j, x) in &answer.supports {
        support[j] = x;
    }
    let candidates = (0..kept.len())
        .map(|j| Candidate {
            support: support[j],
            lift: support[j] - prior[j],
            embedding: similarities[j],
            sentence_embedding: sentence_similarities[j],
            lexical: overlaps[j],
            strict: strict(j),
            lenient: holds(&kept[j].text),
            text: kept[j].text.clone(),
        })
        .collect();
    let rows = span_rows(attention, g, &answer.bytes, shipped);
    Ok(Some(Attributed {
        strict: strict(best),
        lenient: holds(&kept[best].text),
        strict_attention_only: top(shipped, &prior).is_some_and(strict),
        strict_no_prior: top(shipped, &zero).is_some_and(strict),
        strict_whole_sentence: whole_sentence_top(attention, g, &answer.bytes, shipped, &prior)
            .is_some_and(strict),
        chance: (0..kept.len()).filter(|&j| strict(j)).count() as f64 / kept.len() as f64,
        lexical: strict(lexical),
        embedding: strict(embedding),
        first_kept: strict(0),
        per_head: if heads > shipped.len() {
            (0..heads)
                .map(|h| top(&[h], &prior).is_some_and(strict))
                .collect()
        } else {
            vec![]
        },
        candidates,
        rows,
        span: span.to_owned(),
    }))
}

/// The top context sentence of the answer sentence holding the span at `bytes`, read
/// from all the rows of its spans: attribution before answers were cut into clauses.
fn whole_sentence_top(
    attention: &attribution::DecodeAttention,
    g: &Generation,
    bytes: &std::ops::Range<usize>,
    heads: &[usize],
    prior: &[f64],
) -> Option<usize> {
    let sentence = pith_core::chunk::sentences(&g.text)
        .into_iter()
        .find(|s| s.start <= bytes.start && bytes.end <= s.end)?;
    let rows: Vec<usize> = attribution::span_rows(attention, &g.text, &g.token_ends)
        .into_iter()
        .filter(|(r, _)| sentence.start <= r.start && r.end <= sentence.end)
        .flat_map(|(_, rows)| rows)
        .collect();
    let whole = attribution::attribute_rows(attention, heads, &rows, prior, sentence);
    whole.supports.first().map(|&(j, _)| j)
}

/// The decode rows that attribution reads for the answer span at `bytes`
/// ([`attribution::span_rows`]), with the token each predicts, over `heads`.
fn span_rows(
    attention: &attribution::DecodeAttention,
    g: &Generation,
    bytes: &std::ops::Range<usize>,
    heads: &[usize],
) -> Vec<Row> {
    let n = attention.slots.len();
    attribution::span_rows(attention, &g.text, &g.token_ends)
        .into_iter()
        .find(|(r, _)| r == bytes)
        .map(|(_, rows)| rows)
        .unwrap_or_default()
        .into_iter()
        .map(|r| Row {
            token: g
                .text
                .get(g.token_ends[r]..g.token_ends[r + 1])
                .unwrap_or_default()
                .to_owned(),
            mass: heads
                .iter()
                .flat_map(|&h| attention.rows[r][h * n..(h + 1) * n].iter().copied())
                .collect(),
        })
        .collect()
}

fn argmax(xs: impl Iterator<Item = f64>) -> usize {
    xs.enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 { (i, x) } else { best }
        })
        .0
}

/// The area under the ROC curve of `positive` scores against `negative` ones: the odds
/// that a random positive scores above a random negative, ties counting half.
pub fn auroc(positive: &[f64], negative: &[f64]) -> f64 {
    if positive.is_empty() || negative.is_empty() {
        return f64::NAN;
    }
    let wins: f64 = positive
        .iter()
        .flat_map(|p| negative.iter().map(move |n| (p, n)))
        .map(|(p, n)| match p.total_cmp(n) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        })
        .sum();
    wins / (positive.len() * negative.len()) as f64
}

/// Reads one feature of a run.
type Feature = fn(&Run) -> f64;

/// The grounding features whose AUROC is reported, higher meaning better grounded.
const FEATURES: [(&str, Feature); 7] = [
    ("retrieval", |r| r.retrieval),
    ("logprob_mean", |r| r.logprob_mean),
    ("logprob_min", |r| r.logprob_min),
    ("lift_min", |r| r.lift_min),
    ("lift_mean", |r| r.lift_mean),
    ("lift_first", |r| r.lift_first),
    ("context_mass", |r| r.context_mass),
];

/// Evaluates the first `limit` questions (all when `None`), skipping those in `done`;
/// `on_result` sees each new one with the number of questions behind it.
pub fn evaluate(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    limit: Option<usize>,
    head_search: bool,
    done: Vec<QuestionRuns>,
    on_result: &mut dyn FnMut(&QuestionRuns, usize) -> Result<()>,
) -> Result<GroundingReport> {
    let mut done: BTreeMap<String, QuestionRuns> =
        done.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut results = vec![];
    for q in set.first(limit) {
        let r = match done.remove(&q.id) {
            Some(r) => r,
            None => {
                let r = ask_question(generator, embedder, set, q, head_search)?;
                on_result(&r, results.len() + 1)?;
                r
            }
        };
        results.push(r);
    }
    Ok(summarise(&results, &prune::rerank::all_heads(generator)))
}

/// The report over every question's runs.
pub fn summarise(results: &[QuestionRuns], all_heads: &[(usize, usize)]) -> GroundingReport {
    let attributed: Vec<(usize, &Attributed)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.answerable.attribution.as_ref()?)))
        .collect();
    let share = |f: &dyn Fn(&Attributed) -> f64| {
        attributed.iter().map(|(_, a)| f(a)).sum::<f64>() / attributed.len().max(1) as f64
    };
    let flag = |b: bool| f64::from(u8::from(b));
    let mut baselines = BTreeMap::new();
    baselines.insert(
        "attention_only".into(),
        share(&|a| flag(a.strict_attention_only)),
    );
    baselines.insert("no_prior".into(), share(&|a| flag(a.strict_no_prior)));
    baselines.insert(
        "whole_sentence".into(),
        share(&|a| flag(a.strict_whole_sentence)),
    );
    baselines.insert("chance".into(), share(&|a| a.chance));
    baselines.insert("lexical_overlap".into(), share(&|a| flag(a.lexical)));
    baselines.insert("embedding".into(), share(&|a| flag(a.embedding)));
    baselines.insert("first_kept".into(), share(&|a| flag(a.first_kept)));

    let answerable: Vec<&Run> = results.iter().map(|r| &r.answerable).collect();
    let unanswerable: Vec<&Run> = results
        .iter()
        .filter_map(|r| r.unanswerable.as_ref())
        .collect();
    let abstains = |runs: &[&Run]| {
        let n = runs
            .iter()
            .filter(|r| grounding::abstains(r.retrieval, grounding::ABSTAIN_BELOW))
            .count();
        n as f64 / runs.len().max(1) as f64
    };
    let auroc: BTreeMap<String, f64> = FEATURES
        .iter()
        .map(|&(name, f)| {
            let pos: Vec<f64> = answerable.iter().map(|r| f(r)).collect();
            let neg: Vec<f64> = unanswerable.iter().map(|r| f(r)).collect();
            (name.to_string(), self::auroc(&pos, &neg))
        })
        .collect();

    let searched: Vec<&(usize, &Attributed)> = attributed
        .iter()
        .filter(|(_, a)| a.per_head.len() == all_heads.len())
        .collect();
    let mut totals = vec![[0.0; 2]; all_heads.len()];
    let mut counts = [0; 2];
    for (i, a) in &searched {
        counts[i % 2] += 1;
        for (t, &ok) in totals.iter_mut().zip(&a.per_head) {
            t[i % 2] += flag(ok);
        }
    }
    GroundingReport {
        questions: results.len(),
        attribution: share(&|a| flag(a.strict)),
        attribution_lenient: share(&|a| flag(a.lenient)),
        attributed_answers: attributed.len(),
        abstention_auroc: auroc["retrieval"],
        abstain_threshold: grounding::ABSTAIN_BELOW,
        abstain_rate_answerable: abstains(&answerable),
        abstain_rate_unanswerable: abstains(&unanswerable),
        abstain_below_fit: tenth_lowest(answerable.iter().step_by(2).map(|r| r.retrieval)),
        auroc,
        baselines,
        unanswerable: unanswerable.len(),
        heads: if searched.is_empty() {
            vec![]
        } else {
            best_heads(all_heads, &totals, counts)
        },
    }
}

/// The value a tenth of `xs` lie below (NaN when empty).
fn tenth_lowest(xs: impl Iterator<Item = f64>) -> f64 {
    let mut xs: Vec<f64> = xs.collect();
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 10).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::{auroc, tenth_lowest};

    #[test]
    fn a_tenth_lies_below_the_fit() {
        let xs = (0..20).map(f64::from);
        assert_eq!(tenth_lowest(xs), 2.0);
        assert!(tenth_lowest(std::iter::empty()).is_nan());
    }

    #[test]
    fn auroc_counts_pairs_and_ties() {
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]), 1.0);
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]), 0.0);
        assert_eq!(auroc(&[1.0, 1.0], &[1.0]), 0.5);
        assert_eq!(auroc(&[1.0, 3.0], &[2.0]), 0.5);
    }
}
