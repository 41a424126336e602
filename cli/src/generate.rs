//! `pith generate`, `pith ask` and `pith chat`.

use std::io::{BufRead, Write};

use clap::Args;
use pith_core::Result;
use pith_core::model::chat::Message;
use pith_core::model::generate::Generator;
use pith_core::model::sampling::SamplingOptions;

use crate::commands::Context;
use pith_core::{AskOptions, Budget, Conversation, grounding};

/// Sampling flags shared by generate, chat and ask.
#[derive(Args, Clone)]
pub struct SamplingArgs {
    /// Always take the most likely token (no penalty).
    #[arg(long)]
    pub greedy: bool,
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long)]
    pub min_p: Option<f32>,
    #[arg(long)]
    pub repetition_penalty: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Stop when this text appears (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    pub fn options(&self) -> SamplingOptions {
        let mut o = if self.greedy {
            SamplingOptions::greedy(self.max_tokens)
        } else {
            SamplingOptions {
                max_tokens: self.max_tokens,
                ..SamplingOptions::default()
            }
        };
        if let Some(t) = self.temperature {
            o.temperature = t;
        }
        if let Some(k) = self.top_k {
            o.top_k = k;
        }
        if let Some(p) = self.top_p {
            o.top_p = p;
        }
        if let Some(p) = self.min_p {
            o.min_p = p;
        }
        if let Some(r) = self.repetition_penalty {
            o.repetition_penalty = r;
        }
        if let Some(s) = self.seed {
            o.seed = s;
        }
        o.stop.clone_from(&self.stop);
        o
    }
}

/// The flags of ask and chat.
#[derive(Args, Clone)]
pub struct AskArgs {
    /// Passages to retrieve.
    #[arg(short, long, default_value_t = 5)]
    pub k: usize,
    /// Give the model the whole retrieved context.
    #[arg(long, conflicts_with_all = ["ratio", "budget"])]
    pub no_prune: bool,
    /// Keep 1/RATIO of the context tokens (default 2).
    #[arg(long, conflicts_with = "budget")]
    pub ratio: Option<f64>,
    /// Keep at most this many context tokens.
    #[arg(long)]
    pub budget: Option<usize>,
    /// Retrieve 2k passages and keep the k the model's attention ranks best.
    #[arg(long)]
    pub rerank: bool,
    /// Say the documents do not hold the answer when no retrieved sentence's
    /// similarity to the question reaches this (-1 to 1).
    #[arg(long, default_value_t = grounding::ABSTAIN_BELOW, conflicts_with = "no_abstain")]
    pub abstain_below: f64,
    /// Always answer, however poorly the documents match the question.
    #[arg(long)]
    pub no_abstain: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

impl AskArgs {
    pub fn options(&self) -> AskOptions {
        AskOptions {
            k: self.k,
            prune: match (self.no_prune, self.ratio, self.budget) {
                (true, _, _) => Budget::Off,
                (_, _, Some(n)) => Budget::Tokens(n),
                (_, r, None) => Budget::Ratio(r.unwrap_or(2.0)),
            },
            rerank: self.rerank,
            abstain_below: if self.no_abstain {
                grounding::NEVER
            } else {
                self.abstain_below
            },
            sampling: self.sampling.options(),
            ..AskOptions::default()
        }
    }
}

fn print_piece(piece: &str) -> bool {
    print!("{piece}");
    std::io::stdout().flush().is_ok()
}

pub fn generate(ctx: &Context, prompt: &str, raw: bool, sampling: &SamplingArgs) -> Result<()> {
    let generator = load(ctx)?;
    let text = if raw {
        prompt.to_string()
    } else {
        generator.chat_prompt(&[Message::new("user", prompt)])?
    };
    let tokens = generator.encode(&text)?;
    let g = generator.generate(&tokens, &sampling.options(), &mut print_piece, None)?;
    println!();
    eprintln!(
        "[{} prompt tokens, {} generated; prefill {:.0} ms, {:.1} tokens/s decode; stop: {:?}]",
        g.prompt_tokens,
        g.tokens.len(),
        g.prefill.as_secs_f64() * 1e3,
        g.tokens.len() as f64 / g.decode.as_secs_f64().max(1e-9),
        g.stop
    );
    Ok(())
}

pub fn chat_plain(ctx: &Context, sampling: &SamplingArgs) -> Result<()> {
    let generator = load(ctx)?;
    let mut messages: Vec<Message> = vec![];
    let stdin = std::io::stdin();
    eprintln!("pith chat: type a message, an empty line or Ctrl-D to quit.");
    loop {
        eprint!("> ");
        let Some(line) = read_line(&stdin) else {
            return Ok(());
        };
        messages.push(Message::new("user", &line));
        let tokens = generator.encode(&generator.chat_prompt(&messages)?)?;
        let g = generator.generate(&tokens, &sampling.options(), &mut print_piece, None)?;
        println!();
        messages.push(Message::new("assistant", &g.text));
    }
}

fn load(ctx: &Context) -> Result<Generator> {
    let dev = ctx.device();
    ctx.generator(&dev)
}

/// The next line typed, trimmed; None at the end of input or on an empty line.
fn read_line(stdin: &std::io::Stdin) -> Option<String> {
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line).unwrap_or(0);
    (read > 0 && !line.trim().is_empty()).then(|| line.trim().to_string())
}

pub fn ask(ctx: &Context, question: &str, options: &AskOptions, json: bool) -> Result<()> {
    let engine = ctx.open()?;
    let mut stream = |piece: &str| json || print_piece(piece);
    let answer = engine.ask(question, options, &mut stream, None)?;
    if json {
        println!("{}", serde_json::to_string(&answer).expect("serialisable"));
        return Ok(());
    }
    print_sources(&answer, options);
    Ok(())
}

/// A conversation over the documents, one question a line.
pub fn chat(ctx: &Context, options: &AskOptions) -> Result<()> {
    let engine = ctx.open()?;
    let mut conversation = Conversation::new();
    let stdin = std::io::stdin();
    eprintln!(
        "pith chat: ask about your documents; a question may lean on the one before. \
         An empty line or Ctrl-D quits."
    );
    loop {
        eprint!("> ");
        let Some(question) = read_line(&stdin) else {
            return Ok(());
        };
        let answer = engine.chat(
            &mut conversation,
            &question,
            options,
            &mut print_piece,
            None,
        )?;
        let standalone = &conversation
            .turns()
            .last()
            .expect("a turn was added")
            .standalone;
        if *standalone != question {
            eprintln!("\n[asked as: {standalone}]");
        }
        print_sources(&answer, options);
    }
}

/// After the streamed answer: the answer marked sentence by sentence, the citations and
/// the figures; or why the ask abstained.
fn print_sources(answer: &pith_core::Answer, options: &AskOptions) {
    println!("\n");
    if answer.abstained {
        eprintln!(
            "[grounding {:.3} is below {}: no retrieved sentence is close to the question; --no-abstain answers anyway]",
            answer.grounding, options.abstain_below
        );
        return;
    }
    if !answer.attributions.is_empty() {
        println!("{}\n", marked(answer));
    }
    for (i, c) in answer.citations.iter().enumerate() {
        println!(
            "[{}] {} (doc {}, chars {}..{}): {}",
            i + 1,
            crate::commands::place(&c.source, c.page, c.heading.as_deref()),
            c.document_id,
            c.start_char,
            c.end_char,
            crate::commands::snippet(&c.snippet, 240)
        );
    }
    let t = &answer.timings;
    eprintln!(
        "[grounding {:.3}; context {} -> {} tokens ({} reused); retrieve {:.0} ms, rerank {:.0} ms, prune {:.0} ms, prefill {:.0} ms, decode {:.0} ms, first token {:.0} ms]",
        answer.grounding,
        answer.context_tokens_before,
        answer.context_tokens_after,
        answer.context_tokens_reused,
        t.retrieve_ms,
        t.rerank_ms,
        t.prune_ms,
        t.prefill_ms,
        t.decode_ms,
        t.first_token_ms
    );
}

/// The answer with each clause followed by the citations it came from, ` [1] [3]`, or
/// by ` [unsupported]` when none stands out; the marks go before the clause's closing
/// punctuation ("… Patriots [2].").
fn marked(answer: &pith_core::Answer) -> String {
    let chars: Vec<char> = answer.text.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    for a in &answer.attributions {
        let mut end = a.end_char;
        while end > at.max(a.start_char)
            && matches!(chars[end - 1], '.' | ',' | ';' | ':' | '!' | '?')
        {
            end -= 1;
        }
        out.extend(&chars[at..end]);
        at = end;
        let mut cited: Vec<usize> = vec![];
        for s in &a.supports {
            if !cited.contains(&(s.citation + 1)) {
                cited.push(s.citation + 1);
            }
        }
        if !a.supported || cited.is_empty() {
            out.push_str(" [unsupported]");
        } else {
            for n in cited {
                out.push_str(&format!(" [{n}]"));
            }
        }
    }
    out.extend(&chars[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pith_core::{Answer, Attribution, Support};

    fn attribution(start_char: usize, end_char: usize, citations: &[usize]) -> Attribution {
        let support = |&citation: &usize| Support {
            citation,
            start_char: 0,
            end_char: 0,
            text: String::new(),
            score: 0.5,
        };
        Attribution {
            start_char,
            end_char,
            supported: !citations.is_empty(),
            supports: citations.iter().map(support).collect(),
        }
    }

    #[test]
    fn marks_go_before_each_clause_s_closing_punctuation() {
        let text = "Denver beat the Panthers 24–10, against all odds. Fans wept.";
        let answer = Answer {
            text: text.into(),
            citations: vec![],
            attributions: vec![
                attribution(0, 31, &[0]),
                attribution(32, 49, &[1, 1, 0]),
                attribution(50, 60, &[]),
            ],
            grounding: 0.9,
            abstained: false,
            context_tokens_before: 0,
            context_tokens_after: 0,
            context_tokens_reused: 0,
            prompt_tokens: 0,
            generated_tokens: 0,
            stop: pith_core::model::generate::StopReason::EndOfText,
            timings: Default::default(),
        };
        assert_eq!(
            marked(&answer),
            "Denver beat the Panthers 24–10 [1], against all odds [2] [1]. Fans wept [unsupported]."
        );
    }
}
