//! `pith generate` and `pith chat`.

use std::io::{BufRead, Write};

use clap::Args;
use pith_core::Result;
use pith_core::model::chat::Message;
use pith_core::model::generate::Generator;
use pith_core::model::sampling::SamplingOptions;

use crate::commands::Context;
use pith_core::{AskOptions, Budget};

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

pub fn chat(ctx: &Context, sampling: &SamplingArgs) -> Result<()> {
    let generator = load(ctx)?;
    let mut messages: Vec<Message> = vec![];
    let stdin = std::io::stdin();
    eprintln!("pith chat: type a message, an empty line or Ctrl-D to quit.");
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            return Ok(());
        }
        messages.push(Message::new("user", line.trim()));
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

pub fn ask(
    ctx: &Context,
    question: &str,
    k: usize,
    prune: Budget,
    rerank: bool,
    json: bool,
    sampling: &SamplingArgs,
) -> Result<()> {
    let engine = ctx.open()?;
    let options = AskOptions {
        k,
        prune,
        rerank,
        sampling: sampling.options(),
        ..AskOptions::default()
    };
    let mut stream = |piece: &str| json || print_piece(piece);
    let answer = engine.ask(question, &options, &mut stream, None)?;
    if json {
        println!("{}", serde_json::to_string(&answer).expect("serialisable"));
        return Ok(());
    }
    println!("\n");
    if !answer.attributions.is_empty() {
        println!("{}\n", marked(&answer));
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
        "[context {} -> {} tokens; retrieve {:.0} ms, rerank {:.0} ms, prune {:.0} ms, prefill {:.0} ms, decode {:.0} ms, first token {:.0} ms]",
        answer.context_tokens_before,
        answer.context_tokens_after,
        t.retrieve_ms,
        t.rerank_ms,
        t.prune_ms,
        t.prefill_ms,
        t.decode_ms,
        t.first_token_ms
    );
    Ok(())
}

/// The answer with each sentence followed by the citations it came from, `[1][3]`, or
/// by `[unsupported]` when none stands out.
fn marked(answer: &pith_core::Answer) -> String {
    let chars: Vec<char> = answer.text.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    for a in &answer.attributions {
        out.extend(&chars[at..a.end_char]);
        at = a.end_char;
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
