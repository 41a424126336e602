//! A long run of asks in one process, watching resident memory and ask time: the
//! check for leaks (burn-wgpu has grown memory in long inference loops) and slowdowns.

use std::time::Instant;

use super::{EvalSet, median};
use pith_core::ask::{AskOptions, answer_from};
use pith_core::model::bert::Embedder;
use pith_core::model::generate::Generator;
use pith_core::{Error, Result};

/// What to run: `asks` answers cycling over the set's first `questions` questions,
/// each from its first `passages` context passages.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub asks: usize,
    pub questions: usize,
    /// Asks before the memory baseline is taken.
    pub warmup: usize,
    pub passages: usize,
    pub options: AskOptions,
}

impl SoakPlan {
    /// Context passages each ask is given: the plan's, at least one.
    pub fn context_passages(&self) -> usize {
        self.passages.max(1)
    }
}

/// Resident memory (MiB) and time (ms) after each ask.
#[derive(Debug, Clone)]
pub struct SoakReport {
    pub warmup: usize,
    pub questions: usize,
    pub rss_mib: Vec<f64>,
    pub ask_ms: Vec<f64>,
}

impl SoakReport {
    pub fn rss_after_warmup(&self) -> f64 {
        self.rss_after_cycles(0)
    }

    /// Resident memory after the last ask of the same question as the warm-up's last:
    /// the resident set moves by tens of MiB from one question to the next (buffers
    /// sized by the prompt), so only asks of one question compare.
    pub fn rss_end(&self) -> f64 {
        self.rss_after_cycles(self.cycles())
    }

    /// Full rounds of the questions after the warm-up.
    fn cycles(&self) -> usize {
        (self.rss_mib.len() - self.warmup) / self.questions
    }

    /// Resident memory after `cycle` rounds of the questions past the warm-up.
    fn rss_after_cycles(&self, cycle: usize) -> f64 {
        self.rss_mib[self.warmup - 1 + cycle * self.questions]
    }

    /// Growth of resident memory from the end of the warm-up to [`Self::rss_end`], in %.
    pub fn growth_pct(&self) -> f64 {
        (self.rss_end() - self.rss_after_warmup()) / self.rss_after_warmup() * 100.0
    }

    /// The growth a run of `asks` would reach at this run's steady rate per ask, in %:
    /// a short run's share of a long run's bound. The steady rate is the smaller of the
    /// rates over the first and the second half of the rounds. A leak grows both halves
    /// alike, while a one-off step (an allocator taking another block, as lavapipe's
    /// resident set did four times in 500 asks) lands in one, and carried on linearly it
    /// would read as a leak. A run of one round has no halves; its whole rate is taken.
    pub fn projected_growth_pct(&self, asks: usize) -> f64 {
        let cycles = self.cycles();
        let rate = |from: usize, to: usize| {
            (self.rss_after_cycles(to) - self.rss_after_cycles(from))
                / ((to - from) * self.questions) as f64
        };
        let per_ask = if cycles < 2 {
            rate(0, cycles)
        } else {
            rate(0, cycles / 2).min(rate(cycles / 2, cycles))
        };
        per_ask * (asks - self.warmup) as f64 / self.rss_after_warmup() * 100.0
    }

    /// Median ask time over the first tenth after the warm-up and over the last tenth.
    pub fn median_ask_ms_first_and_last_tenth(&self) -> (f64, f64) {
        let tenth = self.ask_ms.len() / 10;
        let first = &self.ask_ms[self.warmup..self.warmup + tenth];
        (
            median(first),
            median(&self.ask_ms[self.ask_ms.len() - tenth..]),
        )
    }
}

/// Runs the plan; `progress(asks done, resident MiB)` after every ask.
pub fn soak(
    generator: &Generator,
    embedder: &Embedder,
    set: &EvalSet,
    plan: &SoakPlan,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<SoakReport> {
    let questions = set.first(Some(plan.questions.max(1)));
    if questions.is_empty() {
        return Err(Error::InvalidArgument("the set has no questions".into()));
    }
    let tenth = plan.asks / 10;
    if plan.warmup == 0 || tenth == 0 || plan.warmup + tenth.max(questions.len()) > plan.asks {
        return Err(Error::InvalidArgument(format!(
            "{} asks with a warm-up of {}: the warm-up takes at least one ask and leaves \
             at least a tenth of the asks and one round of the {} questions to compare",
            plan.asks,
            plan.warmup,
            questions.len()
        )));
    }
    let (mut rss_mib, mut ask_ms) = (vec![], vec![]);
    for i in 0..plan.asks {
        let q = &questions[i % questions.len()];
        let (mut texts, _) = set.context(q)?;
        texts.truncate(plan.context_passages());
        let start = Instant::now();
        answer_from(
            generator,
            embedder,
            &texts,
            &q.question,
            &plan.options,
            None,
            &mut |_| true,
            None,
        )?;
        ask_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let rss = resident_mib().ok_or_else(|| {
            Error::Unsupported("resident memory is read from /proc (Linux only)".into())
        })?;
        rss_mib.push(rss);
        progress(i + 1, rss);
    }
    Ok(SoakReport {
        warmup: plan.warmup,
        questions: questions.len(),
        rss_mib,
        ask_ms,
    })
}

/// The process's resident set now, in MiB (Linux `VmRSS`); `None` elsewhere.
pub fn resident_mib() -> Option<f64> {
    proc_status_mib("VmRSS:")
}

/// The process's resident-set high-water mark in MiB (Linux `VmHWM`); `None` elsewhere.
pub fn peak_resident_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

/// A memory figure of `/proc/self/status`, in MiB.
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(questions: usize, rss_mib: Vec<f64>) -> SoakReport {
        SoakReport {
            warmup: 2,
            questions,
            ask_ms: vec![1.0; rss_mib.len()],
            rss_mib,
        }
    }

    #[test]
    fn growth_is_measured_from_the_end_of_the_warm_up() {
        let r = report(1, vec![50.0, 100.0, 101.0, 102.0, 103.0]);
        assert_eq!(r.growth_pct(), 3.0);
        // 1 MiB an ask in both halves: 498 asks would grow 498%.
        assert!((r.projected_growth_pct(500) - 498.0).abs() < 1e-9);
    }

    #[test]
    fn growth_compares_asks_of_the_same_question() {
        // Two questions alternate, the second needing 20 MiB more; the run ends on it.
        let r = report(2, vec![100.0, 100.0, 120.0, 100.0, 121.0, 101.0, 121.0]);
        assert_eq!(r.rss_after_warmup(), 100.0);
        assert_eq!(r.rss_end(), 101.0);
        // One round (2 asks) grew 0 MiB, the other 1 MiB: the steady rate is 0.
        assert_eq!(r.projected_growth_pct(6), 0.0);
    }

    #[test]
    fn a_one_off_step_is_not_carried_on_but_a_leak_is() {
        let step = report(1, vec![100.0, 100.0, 100.0, 110.0, 110.0, 110.0]);
        assert_eq!(step.growth_pct(), 10.0);
        assert_eq!(step.projected_growth_pct(500), 0.0);
        let leak = report(1, vec![100.0, 100.0, 101.0, 102.0, 103.0, 104.0]);
        // 1 MiB an ask over both halves (2 asks, then 2): 498 MiB more by 500 asks.
        assert!((leak.projected_growth_pct(500) - 498.0).abs() < 1e-9);
    }
}
