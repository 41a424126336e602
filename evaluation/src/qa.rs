//! End-to-end answers from each question's five context passages, with and without
//! pruning: SQuAD exact match, token F1, answer containment and time to first token.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{EvalSet, Question};
use pith_core::Budget;
use pith_core::ask::{AskOptions, answer_from};
use pith_core::grounding;
use pith_core::model::bert::Embedder;
use pith_core::model::generate::Generator;
use pith_core::{Error, Result};

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
    /// Median over questions of this setting's time to first token divided by the
    /// same question's without pruning: pairing each question with itself keeps a
    /// load change on a shared machine, or a run resumed later, out of the ratio.
    pub first_token_ratio: f64,
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

/// Whether `text` holds `answer` as whole words, after normalisation: "12 teams"
/// does not hold "2", nor "Lombardi" the answer "L".
pub fn holds(text: &str, answer: &str) -> bool {
    let answer = normalize(answer);
    !answer.is_empty() && format!(" {} ", normalize(text)).contains(&format!(" {answer} "))
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

/// One answer in one setting, scored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SettingResult {
    pub answer: String,
    pub exact_match: f64,
    pub f1: f64,
    pub containment: f64,
    pub first_token_ms: f64,
    pub context_tokens: usize,
}

/// A question answered in every setting: one line of `pith eval qa --log`, so a long
/// run can stop and resume without losing what it measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QuestionResult {
    pub id: String,
    pub settings: BTreeMap<String, SettingResult>,
}

/// Answers one question in every setting.
pub fn answer_question(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    q: &Question,
) -> Result<QuestionResult> {
    let (texts, _) = set.context(q)?;
    let mut settings = BTreeMap::new();
    for (name, budget) in SETTINGS {
        // Every question is answered: abstention is measured by `eval grounding`.
        let mut options = AskOptions {
            prune: budget,
            abstain_below: grounding::NEVER,
            ..AskOptions::default()
        };
        options.sampling.max_tokens = ANSWER_TOKENS;
        let reply = answer_from(
            generator,
            embedder,
            &texts,
            &q.question,
            &options,
            None,
            &mut |_| true,
            None,
        )?;
        let generation = reply
            .generation
            .expect("an ask that never abstains generates");
        let text = generation.text;
        let result = SettingResult {
            exact_match: best(&q.answers, |a| {
                f64::from(u8::from(normalize(&text) == normalize(a)))
            }),
            f1: best(&q.answers, |a| f1(&text, a)),
            containment: best(&q.answers, |a| f64::from(u8::from(holds(&text, a)))),
            first_token_ms: (reply.prune + generation.first_token).as_secs_f64() * 1e3,
            context_tokens: reply.tokens_after,
            answer: text,
        };
        settings.insert(name.to_owned(), result);
    }
    Ok(QuestionResult {
        id: q.id.clone(),
        settings,
    })
}

/// Evaluates the first `limit` questions (all when `None`), skipping those in `done`
/// (an earlier run's results); `on_result` sees each new result as it comes, with the
/// number of questions behind it. Summarises old and new together.
pub fn evaluate(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    limit: Option<usize>,
    done: Vec<QuestionResult>,
    on_result: &mut dyn FnMut(&QuestionResult, usize) -> Result<()>,
) -> Result<BTreeMap<String, QaMetrics>> {
    let questions = set.first(limit);
    let mut done: BTreeMap<String, QuestionResult> =
        done.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut results = Vec::with_capacity(questions.len());
    for q in questions {
        let result = match done.remove(&q.id) {
            Some(r) => r,
            None => {
                let r = answer_question(generator, embedder, set, q)?;
                on_result(&r, results.len() + 1)?;
                r
            }
        };
        results.push(result);
    }
    Ok(summarise(&results))
}

/// Results kept in a JSON-lines file, one question a line, appended as they come.
pub struct ResultLog {
    path: PathBuf,
    file: File,
}

impl ResultLog {
    /// Opens or creates the log and reads what earlier runs wrote. A last line without
    /// its newline (a run killed while writing it) is cut off, so the run redoes it.
    pub fn open<T: serde::de::DeserializeOwned>(path: &Path) -> Result<(Self, Vec<T>)> {
        let io = |e| Error::io(path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io)?;
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            file.set_len(whole as u64).map_err(io)?;
        }
        let results = super::parse_jsonl(&text[..whole], path)?;
        let log = Self {
            path: path.to_owned(),
            file,
        };
        Ok((log, results))
    }

    pub fn append(&mut self, result: &impl serde::Serialize) -> Result<()> {
        let mut line = serde_json::to_string(result)
            .map_err(|e| Error::InvalidArgument(format!("unserialisable result: {e}")))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// Means over questions per setting; time to first token as the median.
pub fn summarise(results: &[QuestionResult]) -> BTreeMap<String, QaMetrics> {
    let n = results.len().max(1) as f64;
    let unpruned = SETTINGS[0].0;
    let mut per_setting: BTreeMap<&str, Vec<(&SettingResult, Option<f64>)>> = BTreeMap::new();
    for q in results {
        let base = q.settings.get(unpruned).map(|r| r.first_token_ms);
        for (name, r) in &q.settings {
            let ratio = base.map(|b| r.first_token_ms / b);
            per_setting.entry(name).or_default().push((r, ratio));
        }
    }
    per_setting
        .into_iter()
        .map(|(name, rs)| {
            let mean = |f: fn(&SettingResult) -> f64| rs.iter().map(|r| f(r.0)).sum::<f64>() / n;
            let ttft: Vec<f64> = rs.iter().map(|r| r.0.first_token_ms).collect();
            let ratios: Vec<f64> = rs.iter().filter_map(|r| r.1).collect();
            let metrics = QaMetrics {
                exact_match: mean(|r| r.exact_match),
                f1: mean(|r| r.f1),
                containment: mean(|r| r.containment),
                first_token_ms: super::median(&ttft),
                first_token_ratio: super::median(&ratios),
                context_tokens: mean(|r| r.context_tokens as f64),
            };
            (name.to_owned(), metrics)
        })
        .collect()
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

    #[test]
    fn an_answer_is_held_as_whole_words() {
        assert!(holds("They won the Super Bowl L in 2016.", "Super Bowl L"));
        assert!(holds("It was 2.", "2"));
        assert!(!holds("The answer is 12.", "2"));
        assert!(!holds("Levi's Stadium", "L"));
        assert!(!holds("anything", "the"));
    }

    fn timed(id: &str, times: [f64; 2]) -> QuestionResult {
        let setting = |ms| SettingResult {
            answer: String::new(),
            exact_match: 0.0,
            f1: 0.0,
            containment: 0.0,
            first_token_ms: ms,
            context_tokens: 0,
        };
        let settings = [("no_pruning", times[0]), ("4x", times[1])]
            .into_iter()
            .map(|(name, ms)| (name.to_owned(), setting(ms)))
            .collect();
        QuestionResult {
            id: id.to_owned(),
            settings,
        }
    }

    #[test]
    fn ttft_ratio_pairs_each_question_with_itself() {
        // The second question ran on a machine twice as loaded; its ratio is the
        // same as the first's.
        let report = summarise(&[timed("a", [1000.0, 800.0]), timed("b", [2000.0, 1600.0])]);
        assert!((report["4x"].first_token_ratio - 0.8).abs() < 1e-9);
        assert!((report["no_pruning"].first_token_ratio - 1.0).abs() < 1e-9);
    }

    #[test]
    fn log_drops_a_torn_last_line_and_resumes() {
        let dir = std::env::temp_dir().join(format!("pith-qa-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qa.jsonl");
        let whole = serde_json::to_string(&timed("a", [1.0, 1.0])).unwrap();
        std::fs::write(&path, format!("{whole}\n{{\"id\":\"b\",\"sett")).unwrap();

        let (mut log, done) = ResultLog::open::<QuestionResult>(&path).unwrap();
        assert_eq!(
            done.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        log.append(&timed("b", [2.0, 1.0])).unwrap();
        drop(log);

        let (_, done) = ResultLog::open::<QuestionResult>(&path).unwrap();
        assert_eq!(
            done.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(done[1].settings["no_pruning"].first_token_ms, 2.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
