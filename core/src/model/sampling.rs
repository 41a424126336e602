//! Choosing the next token from logits: greedy, temperature, top-k, top-p, min-p and a
//! repetition penalty, with a seeded generator so a run can be reproduced.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How to sample. `temperature == 0` is greedy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SamplingOptions {
    pub temperature: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    /// 1.0 keeps every token.
    pub top_p: f32,
    /// Drops tokens below `min_p` times the best token's probability; 0 keeps all.
    pub min_p: f32,
    /// 1.0 is none; above 1 discourages tokens already in the context (as llama.cpp does).
    pub repetition_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repetition_window: usize,
    pub seed: u64,
    pub max_tokens: usize,
    /// Generation stops when the text ends with one of these (which is not emitted).
    pub stop: Vec<String>,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repetition_penalty: 1.1,
            repetition_window: 64,
            seed: 42,
            max_tokens: 256,
            stop: vec![],
        }
    }
}

impl SamplingOptions {
    /// Plain greedy decoding, no penalty: what reference comparisons use.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            repetition_penalty: 1.0,
            max_tokens,
            ..Self::default()
        }
    }
}

/// A sampler with its random state.
pub struct Sampler {
    options: SamplingOptions,
    rng: StdRng,
}

impl Sampler {
    pub fn new(options: SamplingOptions) -> Self {
        Self {
            rng: StdRng::seed_from_u64(options.seed),
            options,
        }
    }

    pub fn options(&self) -> &SamplingOptions {
        &self.options
    }

    /// Picks the next token given `logits` and the tokens so far.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let o = &self.options;
        if o.repetition_penalty != 1.0 {
            let from = history.len().saturating_sub(o.repetition_window);
            for &t in &history[from..] {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 {
                        *l / o.repetition_penalty
                    } else {
                        *l * o.repetition_penalty
                    };
                }
            }
        }
        if o.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut cands: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l / o.temperature))
            .collect();
        cands.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if o.top_k > 0 {
            cands.truncate(o.top_k);
        }
        let max = cands[0].1;
        let mut probs: Vec<f32> = cands.iter().map(|&(_, l)| (l - max).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        let mut keep = probs.len();
        if o.min_p > 0.0 {
            keep = keep.min(
                probs
                    .iter()
                    .take_while(|&&p| p >= o.min_p * probs[0])
                    .count()
                    .max(1),
            );
        }
        if o.top_p < 1.0 {
            let mut acc = 0.0;
            let n = probs.iter().take_while(|&&p| {
                let before = acc;
                acc += p;
                before < o.top_p
            });
            keep = keep.min(n.count().max(1));
        }
        let total: f32 = probs[..keep].iter().sum();
        let mut r = self.rng.random::<f32>() * total;
        for (i, &p) in probs[..keep].iter().enumerate() {
            r -= p;
            if r <= 0.0 {
                return cands[i].0;
            }
        }
        cands[keep - 1].0
    }
}

pub fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_the_largest() {
        let mut s = Sampler::new(SamplingOptions::greedy(1));
        assert_eq!(s.sample(&mut [0.1, 3.0, -1.0, 2.9], &[]), 1);
    }

    #[test]
    fn penalty_can_change_the_choice() {
        let mut o = SamplingOptions::greedy(1);
        o.repetition_penalty = 2.0;
        assert_eq!(Sampler::new(o).sample(&mut [0.1, 3.0, -1.0, 2.9], &[1]), 3);
    }

    #[test]
    fn seeds_reproduce_and_top_k_one_is_greedy() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 11) as f32 / 3.0).collect();
        let run = |seed, top_k| {
            let o = SamplingOptions {
                temperature: 1.0,
                top_k,
                top_p: 1.0,
                min_p: 0.0,
                repetition_penalty: 1.0,
                seed,
                ..Default::default()
            };
            let mut s = Sampler::new(o);
            (0..20)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7, 0), run(7, 0));
        assert_ne!(run(7, 0), run(8, 0));
        assert!(run(7, 1).iter().all(|&t| t == argmax(&logits)));
    }
}
