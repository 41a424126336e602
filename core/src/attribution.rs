//! Which context sentences each part of an answer came from. While the answer is
//! decoded, every row of the attribution heads is summed over each context sentence's
//! cache slots; an answer span's support for a context sentence is the share of its
//! rows' context attention that went there (docs/plans/grounding.md). The spans are the
//! answer's clauses: a sentence that joins a copied fact to another ("… on February 7,
//! 2016, against the New England Patriots") splits its rows between their sources, and
//! read whole it cites the wrong one for one of them (docs/eval.md, "Grounding").

use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::Result;
use crate::model::bert::Embedder;
use crate::model::llama::{Captured, read_vec};
use crate::prune::{cosine, zscore};

/// Heads whose decode attention attributes answer spans, as (layer, head).
pub const ATTRIBUTION_HEADS: &[(usize, usize)] = &[(15, 6), (14, 3)];

/// Decode attention summed over context sentences.
#[derive(Debug, Clone)]
pub struct DecodeAttention {
    pub heads: Vec<(usize, usize)>,
    /// The cache slots of each context sentence the answer was generated from.
    pub slots: Vec<Range<usize>>,
    /// Per decode row, `[h * sentences + s]`: the mass head `heads[h]` put on sentence `s`.
    pub rows: Vec<Vec<f32>>,
}

/// Sums each decode row of the attribution heads over the context sentences on the
/// model's device as the answer is generated, and reads the sums back once it is done:
/// reading each row as it comes would wait for the device once per token (on
/// lavapipe that doubled an ask's time).
pub struct DecodeReader {
    heads: Vec<(usize, usize)>,
    slots: Vec<Range<usize>>,
    /// The cache slots from the first sentence's to the last one's end.
    span: Range<usize>,
    /// `[span, sentences]`: 1 where a slot belongs to a sentence.
    membership: Option<Tensor<2>>,
    /// Per decode row, `[1, heads * sentences]`.
    rows: Vec<Tensor<2>>,
    /// Decode rows pushed (the sums are empty when there are no sentences).
    pushed: usize,
}

impl DecodeReader {
    pub fn new(heads: &[(usize, usize)], slots: Vec<Range<usize>>, device: &Device) -> Self {
        let start = slots.iter().map(|r| r.start).min().unwrap_or(0);
        let end = slots.iter().map(|r| r.end).max().unwrap_or(0);
        let (n, s) = (end.saturating_sub(start), slots.len());
        let mut ones = vec![0f32; n * s];
        for (i, r) in slots.iter().enumerate() {
            for k in r.clone() {
                ones[(k - start) * s + i] = 1.0;
            }
        }
        let membership =
            (n * s > 0).then(|| Tensor::from_data(TensorData::new(ones, [n, s]), device));
        Self {
            heads: heads.to_vec(),
            slots,
            span: start..end,
            membership,
            rows: vec![],
            pushed: 0,
        }
    }

    /// The layers to read out, ascending.
    pub fn layers(&self) -> Vec<usize> {
        let mut layers: Vec<usize> = self.heads.iter().map(|&(l, _)| l).collect();
        layers.sort_unstable();
        layers.dedup();
        layers
    }

    /// Adds the rows one decode step captured (one query row per layer).
    pub fn push(&mut self, read: &[Captured]) {
        self.pushed += 1;
        let Some(membership) = &self.membership else {
            return;
        };
        let (start, n) = (self.span.start, self.span.len());
        let sums: Vec<Tensor<2>> = self
            .heads
            .iter()
            .map(|&(layer, head)| {
                let probs = read
                    .iter()
                    .find(|c| c.layer == layer)
                    .and_then(|c| c.parts.last())
                    .expect("the tap captures every layer it names");
                let rows = probs.dims()[1];
                probs
                    .clone()
                    .narrow(0, head, 1)
                    .narrow(1, rows - 1, 1)
                    .narrow(2, start, n)
                    .reshape([1, n])
                    .matmul(membership.clone())
            })
            .collect();
        self.rows.push(Tensor::cat(sums, 1));
    }

    /// The sums of every row pushed, read back in one go.
    pub fn finish(self) -> Result<DecodeAttention> {
        let width = self.heads.len() * self.slots.len();
        let rows = if self.rows.is_empty() {
            vec![vec![]; self.pushed]
        } else {
            let data = read_vec(Tensor::cat(self.rows, 0))?;
            data.chunks(width).map(<[f32]>::to_vec).collect()
        };
        Ok(DecodeAttention {
            heads: self.heads,
            slots: self.slots,
            rows,
        })
    }
}

/// One answer span and the context sentences behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSupport {
    /// Byte range in the generated text.
    pub bytes: Range<usize>,
    /// Context sentences (indices into the slots) with their support, the share of the
    /// span's context attention that went to them, ordered by lift: support above the
    /// prior.
    pub supports: Vec<(usize, f64)>,
    /// The best lift, 0 when no row was read for the span.
    pub lift: f64,
    /// Mean share of a row's attention that went to the context at all.
    pub context_mass: f64,
}

/// Attributes each span of `text` ([`answer_spans`]), the generated text whose token
/// `t` ends at byte `token_ends[t]`. `heads` picks which of `attention`'s heads count;
/// `prior` is each context sentence's expected share (e.g. its share of the context's
/// tokens), which ranking subtracts so that long sentences do not win by size.
///
/// The row read while token `t` was fed predicts token `t + 1`, so it is attributed
/// to token `t + 1`; the first token has no row.
pub fn attribute(
    attention: &DecodeAttention,
    heads: &[usize],
    text: &str,
    token_ends: &[usize],
    prior: &[f64],
) -> Vec<SpanSupport> {
    span_rows(attention, text, token_ends)
        .into_iter()
        .map(|(bytes, rows)| attribute_rows(attention, heads, &rows, prior, bytes))
        .collect()
}

/// Attributes the text at `bytes` from the decode rows `rows` (see [`attribute`]).
pub fn attribute_rows(
    attention: &DecodeAttention,
    heads: &[usize],
    rows: &[usize],
    prior: &[f64],
    bytes: Range<usize>,
) -> SpanSupport {
    let rows: Vec<&[f32]> = rows.iter().map(|&r| attention.rows[r].as_slice()).collect();
    support(attention.slots.len(), heads, &rows, prior, bytes)
}

/// How much the answer sentence's similarity to a context sentence counts beside the
/// clause's attention in ordering its supports, both z-scored over the kept sentences.
/// Superbowl's passages repeat one event's facts in many sentences, among which the
/// heads' attention alone often picks a neighbour of the source (docs/eval.md,
/// "Attribution with the embedder").
pub const SIMILARITY_WEIGHT: f64 = 1.0;

/// [`attribute`], each span's supports then ordered by their lift and the embedder's
/// similarity of the answer sentence holding the span to each context sentence
/// (`sentences`: their MiniLM vectors, in slot order): z(lift) + [`SIMILARITY_WEIGHT`]
/// z(similarity). The supports' shares and the span's lift stay the attention's.
#[allow(clippy::too_many_arguments)]
pub fn attribute_with_meaning(
    attention: &DecodeAttention,
    heads: &[usize],
    text: &str,
    token_ends: &[usize],
    prior: &[f64],
    embedder: &Embedder,
    sentences: &[&[f32]],
) -> Result<Vec<SpanSupport>> {
    let mut spans = attribute(attention, heads, text, token_ends, prior);
    let answer = crate::chunk::sentences(text);
    if spans.is_empty() || sentences.is_empty() || answer.is_empty() {
        return Ok(spans);
    }
    let texts: Vec<&str> = answer.iter().map(|r| text[r.clone()].trim()).collect();
    let answer_vectors = embedder.embed(&texts)?;
    for span in &mut spans {
        let Some(a) = answer.iter().position(|r| r.contains(&span.bytes.start)) else {
            continue;
        };
        let similarity: Vec<f64> = sentences
            .iter()
            .map(|c| cosine(c, &answer_vectors[a]))
            .collect();
        order_by_meaning(span, prior, &similarity);
    }
    Ok(spans)
}

/// Orders `span`'s supports by z(lift) + [`SIMILARITY_WEIGHT`] z(similarity).
fn order_by_meaning(span: &mut SpanSupport, prior: &[f64], similarity: &[f64]) {
    let n = similarity.len();
    if span.supports.len() != n {
        return;
    }
    let mut lift = vec![0.0; n];
    for &(s, share) in &span.supports {
        lift[s] = share - prior.get(s).copied().unwrap_or(0.0);
    }
    let score: Vec<f64> = zscore(&lift)
        .into_iter()
        .zip(zscore(similarity))
        .map(|(l, m)| l + SIMILARITY_WEIGHT * m)
        .collect();
    span.supports
        .sort_by(|a, b| score[b.0].total_cmp(&score[a.0]));
}

/// Fewest words a clause keeps to itself; a shorter one joins its neighbour, so that
/// "Santa Clara, California" and "In 2016, …" stay whole.
const CLAUSE_WORDS: usize = 3;

/// The parts of an answer attributed on their own, as byte ranges: its sentences, cut
/// into clauses after ",", ";", ":" or ")" and before "(" (each followed or preceded by
/// a space), where each side keeps [`CLAUSE_WORDS`] words.
pub fn answer_spans(text: &str) -> Vec<Range<usize>> {
    crate::chunk::sentences(text)
        .into_iter()
        .flat_map(|sentence| clauses(text, sentence))
        .collect()
}

fn clauses(text: &str, sentence: Range<usize>) -> Vec<Range<usize>> {
    let body = text[sentence.clone()].as_bytes();
    let space_at = |i: usize| body.get(i).is_some_and(u8::is_ascii_whitespace);
    let cuts = (0..body.len()).filter_map(|i| match body[i] {
        b',' | b';' | b':' | b')' if space_at(i + 1) => Some(i + 1),
        b'(' if i > 0 && space_at(i - 1) => Some(i),
        _ => None,
    });
    let words = |r: &Range<usize>| text[r.clone()].split_whitespace().count();
    let mut spans: Vec<Range<usize>> = vec![];
    let mut start = sentence.start;
    for end in cuts.map(|c| sentence.start + c).chain([sentence.end]) {
        match spans.last_mut() {
            Some(last) if words(last) < CLAUSE_WORDS => last.end = end,
            _ => spans.push(start..end),
        }
        start = end;
    }
    if spans.len() > 1 && spans.last().is_some_and(|r| words(r) < CLAUSE_WORDS) {
        let last = spans.pop().expect("checked above");
        spans.last_mut().expect("checked above").end = last.end;
    }
    spans
        .into_iter()
        .map(|r| {
            let span = &text[r.clone()];
            let lead = span.len() - span.trim_start().len();
            r.start + lead..r.start + span.trim_end().len()
        })
        .collect()
}

/// Each span of `text` ([`answer_spans`]) with the indices of the decode rows that
/// predict its tokens: row `t - 1` predicts token `t`, which ends at `token_ends[t]`.
/// Rows predicting blank tokens are left out.
pub fn span_rows(
    attention: &DecodeAttention,
    text: &str,
    token_ends: &[usize],
) -> Vec<(Range<usize>, Vec<usize>)> {
    let mut spans: Vec<(Range<usize>, Vec<usize>)> = answer_spans(text)
        .into_iter()
        .map(|bytes| (bytes, vec![]))
        .collect();
    for (t, &end) in token_ends.iter().enumerate().skip(1) {
        if t > attention.rows.len() {
            break;
        }
        let begin = token_ends[t - 1];
        if end > text.len() || text[begin.min(end)..end].trim().is_empty() {
            continue;
        }
        if let Some((_, rows)) = spans
            .iter_mut()
            .find(|(r, _)| r.start < end && end <= r.end)
        {
            rows.push(t - 1);
        }
    }
    spans
}

/// Pools the rows' mass over `heads`: support of `s` = its mass over all the mass on
/// the context.
fn support(
    sentences: usize,
    heads: &[usize],
    rows: &[&[f32]],
    prior: &[f64],
    bytes: Range<usize>,
) -> SpanSupport {
    let mut mass = vec![0f64; sentences];
    for row in rows {
        for &h in heads {
            for (m, &x) in mass
                .iter_mut()
                .zip(&row[h * sentences..(h + 1) * sentences])
            {
                *m += f64::from(x);
            }
        }
    }
    let total: f64 = mass.iter().sum();
    if rows.is_empty() || heads.is_empty() || total <= 0.0 {
        return SpanSupport {
            bytes,
            supports: vec![],
            lift: 0.0,
            context_mass: 0.0,
        };
    }
    let mut supports: Vec<(usize, f64)> = mass.iter().map(|m| m / total).enumerate().collect();
    let lift = |&(s, x): &(usize, f64)| x - prior.get(s).copied().unwrap_or(0.0);
    supports.sort_by(|a, b| lift(b).total_cmp(&lift(a)));
    SpanSupport {
        bytes,
        lift: lift(&supports[0]),
        supports,
        context_mass: total / (rows.len() * heads.len()) as f64,
    }
}

/// Each sentence's share of the context's tokens: the support a sentence gets from
/// attention spread evenly.
pub fn length_prior(slots: &[Range<usize>]) -> Vec<f64> {
    let total: usize = slots.iter().map(|r| r.len()).sum();
    slots
        .iter()
        .map(|r| r.len() as f64 / total.max(1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attention(rows: Vec<Vec<f32>>) -> DecodeAttention {
        DecodeAttention {
            heads: vec![(0, 0)],
            slots: vec![0..2, 2..6],
            rows,
        }
    }

    #[test]
    fn rows_go_to_the_token_they_predict() {
        let text = "Paris. It is big.";
        // Tokens: "Paris", ".", " It", " is", " big", "."
        let ends = [5, 6, 9, 12, 16, 17];
        // Row t predicts token t + 1: row 0 makes the first sentence's ".", rows 1-4
        // the second sentence.
        let rows = vec![
            vec![0.9, 0.1],
            vec![0.2, 0.0],
            vec![0.0, 0.5],
            vec![0.1, 0.4],
            vec![0.0, 0.3],
        ];
        let got = attribute(&attention(rows), &[0], text, &ends, &[0.0, 0.0]);
        assert_eq!(got.len(), 2);
        assert_eq!(&text[got[0].bytes.clone()], "Paris.");
        assert_eq!(got[0].supports[0].0, 0);
        assert!((got[0].supports[0].1 - 0.9).abs() < 1e-6);
        assert_eq!(got[1].supports[0].0, 1);
        assert!((got[1].supports[0].1 - 1.2 / 1.5).abs() < 1e-6);
    }

    #[test]
    fn the_prior_ranks_by_lift() {
        let rows = vec![vec![0.5, 0.5], vec![0.5, 0.5]];
        let ends = [1, 2, 3];
        let flat = attribute(&attention(rows.clone()), &[0], "abc", &ends, &[0.0, 0.0]);
        assert!((flat[0].lift - 0.5).abs() < 1e-9);
        // The second sentence is twice as long: the same mass is less than its share.
        let prior = length_prior(&[0..2, 2..6]);
        let got = attribute(&attention(rows), &[0], "abc", &ends, &prior);
        assert_eq!(got[0].supports[0].0, 0);
        assert!((got[0].lift - (0.5 - 1.0 / 3.0)).abs() < 1e-9);
    }

    #[test]
    fn meaning_reorders_supports_the_attention_nearly_ties() {
        let span = |supports: Vec<(usize, f64)>| SpanSupport {
            bytes: 0..3,
            lift: supports[0].1,
            supports,
            context_mass: 1.0,
        };
        let prior = [0.0; 3];
        let mut near = span(vec![(0, 0.5), (1, 0.45), (2, 0.05)]);
        order_by_meaning(&mut near, &prior, &[0.1, 0.9, 0.2]);
        let order: Vec<usize> = near.supports.iter().map(|&(s, _)| s).collect();
        assert_eq!(order, [1, 0, 2]);
        assert_eq!(near.lift, 0.5, "the lift stays the attention's");
        let mut flat = span(vec![(0, 0.5), (1, 0.45), (2, 0.05)]);
        order_by_meaning(&mut flat, &prior, &[0.3, 0.3, 0.3]);
        assert_eq!(flat.supports[0], (0, 0.5));
    }

    fn spans(text: &str) -> Vec<&str> {
        answer_spans(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn clauses_are_cut_where_both_sides_keep_three_words() {
        assert_eq!(
            spans(
                "Denver beat the Carolina Panthers 24–10, in a game against the New England \
                 Patriots. It was held at Levi's Stadium in Santa Clara, California."
            ),
            [
                "Denver beat the Carolina Panthers 24–10,",
                "in a game against the New England Patriots.",
                "It was held at Levi's Stadium in Santa Clara, California."
            ]
        );
        assert_eq!(
            spans("In 2016, the Broncos won (their third title) again; fans cheered loudly."),
            [
                "In 2016, the Broncos won",
                "(their third title)",
                "again; fans cheered loudly."
            ]
        );
        assert_eq!(spans("Yes, 1,000 of them."), ["Yes, 1,000 of them."]);
    }

    #[test]
    fn a_sentence_without_rows_has_no_support() {
        let got = attribute(&attention(vec![]), &[0], "Yes.", &[3, 4], &[0.0, 0.0]);
        assert_eq!(got.len(), 1);
        assert!(got[0].supports.is_empty());
    }
}
