//! `pith eval`: retrieval, pruning, rerank and end-to-end answers on a SQuAD-style set.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use pith_core::model::bert::Embedder;
use pith_core::model::generate::Generator;
use pith_core::{EngineOptions, Result};
use pith_eval::{self as eval, EvalSet};

use crate::commands::{Context, bar};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Recall@1, recall@5 and MRR of vector, BM25 and hybrid search.
    Retrieval {
        dir: PathBuf,
        /// Ingest each corpus passage from the file DOCUMENTS/<id>.<ext> (a PDF, DOCX or
        /// HTML rendering of it, made by scripts/render-documents) instead of its text.
        #[arg(long)]
        documents: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Evidence recall of attention pruning and the baselines at 2x, 4x and 8x.
    Prune {
        dir: PathBuf,
        /// Evaluate only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Recall@1 and MRR of the gold passage among the five context passages, attention
    /// rerank against embedding order.
    Rerank {
        dir: PathBuf,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Exact match, F1, containment and time to first token of answers from the five
    /// context passages, without pruning and pruned at 2x and 4x.
    Qa {
        dir: PathBuf,
        #[arg(long)]
        limit: Option<usize>,
        /// Append each question's answers and scores to this JSON-lines file, and skip
        /// the questions it already holds: a stopped run resumes where it was.
        #[arg(long)]
        log: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Attribution of answer sentences to the context sentence holding the gold answer,
    /// and the AUROC of grounding scores between questions asked with and without their
    /// gold passage.
    Grounding {
        dir: PathBuf,
        #[arg(long)]
        limit: Option<usize>,
        /// Append each question's runs to this JSON-lines file, and skip the questions
        /// it already holds.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Read every head while answering and rank the heads by attribution (slow).
        #[arg(long)]
        heads: bool,
        #[arg(long)]
        json: bool,
    },
    /// Recall of the gold passage for follow-up questions (eval/followups) searched as
    /// asked, made standalone as `pith chat` does, and as their self-contained original.
    Followup {
        dir: PathBuf,
        #[arg(long)]
        limit: Option<usize>,
        /// Answer each way of asking too: containment and abstention rates.
        #[arg(long)]
        answers: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn eval(ctx: &Context, what: EvalCommand) -> Result<()> {
    match what {
        EvalCommand::Retrieval {
            dir,
            documents,
            json,
        } => retrieval(ctx, &dir, documents.as_deref(), json),
        EvalCommand::Prune { dir, limit, json } => prune(ctx, &dir, limit, json),
        EvalCommand::Rerank { dir, limit, json } => rerank(ctx, &dir, limit, json),
        EvalCommand::Qa {
            dir,
            limit,
            log,
            json,
        } => qa(ctx, &dir, limit, log.as_deref(), json),
        EvalCommand::Grounding {
            dir,
            limit,
            log,
            heads,
            json,
        } => grounding(ctx, &dir, limit, log.as_deref(), heads, json),
        EvalCommand::Followup {
            dir,
            limit,
            answers,
            json,
        } => followup(ctx, &dir, limit, answers, json),
    }
}

/// The set, both models, and a progress bar over the questions evaluated.
fn setup(
    ctx: &Context,
    dir: &Path,
    limit: Option<usize>,
    what: &str,
) -> Result<(EvalSet, Generator, Embedder, indicatif::ProgressBar)> {
    let set = EvalSet::load(dir)?;
    let dev = ctx.device();
    let generator = ctx.generator(&dev)?;
    let embedder = Embedder::load(
        &EngineOptions::new(ctx.models_dir(), "").embedder_dir(),
        &dev.device,
    )?;
    let bar = bar(set.first(limit).len() as u64, what);
    Ok((set, generator, embedder, bar))
}

/// The `--log` file, when given, and the results it already holds.
fn open_log<T: serde::de::DeserializeOwned>(
    log: Option<&Path>,
) -> Result<(Option<eval::qa::ResultLog>, Vec<T>)> {
    Ok(match log {
        Some(path) => {
            let (log, done) = eval::qa::ResultLog::open(path)?;
            (Some(log), done)
        }
        None => (None, Vec::new()),
    })
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(value).expect("serialisable"));
}

/// Runs `f` on an engine over a fresh database (`--db` when given), so that the figures
/// are about the evaluation's data alone; the temporary database is removed after.
fn on_fresh_db<T>(ctx: &Context, f: impl FnOnce(&pith_core::Engine) -> Result<T>) -> Result<T> {
    let tmp = std::env::temp_dir().join(format!("pith-eval-{}.db", std::process::id()));
    let engine = ctx.open_at(ctx.db.clone().unwrap_or_else(|| tmp.clone()))?;
    let result = f(&engine);
    drop(engine);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
    }
    result
}

fn retrieval(ctx: &Context, dir: &Path, documents: Option<&Path>, json: bool) -> Result<()> {
    let set = EvalSet::load(dir)?;
    let bar = bar(set.questions.len() as u64, "eval");
    let report = on_fresh_db(ctx, |engine| {
        eval::retrieval(engine, &set, documents, &mut |n, _| {
            bar.set_position(n as u64)
        })
    });
    bar.finish_and_clear();
    let report = report?;
    if json {
        print_json(&report);
        return Ok(());
    }
    println!(
        "{:<8} {:>9} {:>9} {:>7}",
        "method", "recall@1", "recall@5", "MRR"
    );
    for (name, m) in &report {
        println!(
            "{name:<8} {:>9.3} {:>9.3} {:>7.3}",
            m.recall_at_1, m.recall_at_5, m.mrr
        );
    }
    println!(
        "({} questions, {} passages)",
        set.questions.len(),
        set.corpus.len()
    );
    Ok(())
}

fn prune(ctx: &Context, dir: &Path, limit: Option<usize>, json: bool) -> Result<()> {
    let (set, generator, embedder, bar) = setup(ctx, dir, limit, "eval prune")?;
    let report = eval::prune::evaluate(&generator, &embedder, &set, limit, &mut |i, _| {
        bar.set_position(i as u64)
    })?;
    bar.finish_and_clear();
    if json {
        print_json(&report.recall);
        return Ok(());
    }
    let print = |title: &str, recall: &eval::prune::Recall| {
        println!(
            "{title}\n{:<26} {:>6} {:>6} {:>6}",
            "method", "2x", "4x", "8x"
        );
        for (m, r) in recall {
            println!("{m:<26} {:>6.3} {:>6.3} {:>6.3}", r["2x"], r["4x"], r["8x"]);
        }
    };
    print(
        &format!("evidence recall, {} questions", report.questions),
        &report.recall,
    );
    print(
        "\non the odd-numbered questions only (held out from head selection)",
        &report.check_recall,
    );
    println!("\nevidence lost by attention, kept by embedding similarity:");
    for (ratio, ids) in &report.lost_to_embedding {
        println!("  {ratio}: {}", ids.join(" "));
    }
    println!("\nbest single heads at 4x (selected on even questions, checked on odd):");
    for h in &report.heads {
        println!(
            "  layer {:>2} head {}  {:.3}  {:.3}",
            h.layer, h.head, h.selection, h.check
        );
    }
    Ok(())
}

fn rerank(ctx: &Context, dir: &Path, limit: Option<usize>, json: bool) -> Result<()> {
    let (set, generator, embedder, bar) = setup(ctx, dir, limit, "eval rerank")?;
    let report = eval::rerank::evaluate(&generator, &embedder, &set, limit, &mut |i, _| {
        bar.set_position(i as u64)
    })?;
    bar.finish_and_clear();
    if json {
        print_json(&report.methods);
        return Ok(());
    }
    println!(
        "gold passage among 5, {} questions (check: odd-numbered only)",
        report.questions
    );
    println!(
        "{:<26} {:>9} {:>7} {:>15} {:>9}",
        "method", "recall@1", "MRR", "check recall@1", "check MRR"
    );
    for (m, r) in &report.methods {
        let c = &report.check[m];
        println!(
            "{m:<26} {:>9.3} {:>7.3} {:>15.3} {:>9.3}",
            r.recall_at_1, r.mrr, c.recall_at_1, c.mrr
        );
    }
    println!("\nbest single heads by MRR (selected on even questions, checked on odd):");
    for h in &report.heads {
        println!(
            "  layer {:>2} head {}  {:.3}  {:.3}",
            h.layer, h.head, h.selection, h.check
        );
    }
    Ok(())
}

fn qa(
    ctx: &Context,
    dir: &Path,
    limit: Option<usize>,
    log: Option<&Path>,
    json: bool,
) -> Result<()> {
    let (set, generator, embedder, bar) = setup(ctx, dir, limit, "eval qa")?;
    let (mut log, done) = open_log(log)?;
    let report = eval::qa::evaluate(
        &generator,
        &embedder,
        &set,
        limit,
        done,
        &mut |result, position| {
            bar.set_position(position as u64);
            log.as_mut().map_or(Ok(()), |log| log.append(result))
        },
    )?;
    bar.finish_and_clear();
    if json {
        print_json(&report);
        return Ok(());
    }
    println!(
        "{:<11} {:>6} {:>6} {:>12} {:>15} {:>15} {:>11}",
        "setting", "EM", "F1", "containment", "context tokens", "TTFT median ms", "TTFT ratio"
    );
    for (name, m) in &report {
        println!(
            "{name:<11} {:>6.3} {:>6.3} {:>12.3} {:>15.0} {:>15.0} {:>11.3}",
            m.exact_match,
            m.f1,
            m.containment,
            m.context_tokens,
            m.first_token_ms,
            m.first_token_ratio
        );
    }
    println!("(TTFT ratio: median over questions of each one's TTFT over its own without pruning)");
    println!("({} questions)", set.first(limit).len());
    Ok(())
}

fn grounding(
    ctx: &Context,
    dir: &Path,
    limit: Option<usize>,
    log: Option<&Path>,
    heads: bool,
    json: bool,
) -> Result<()> {
    let (set, generator, embedder, bar) = setup(ctx, dir, limit, "eval grounding")?;
    let (mut log, done) = open_log(log)?;
    let report = eval::grounding::evaluate(
        &generator,
        &embedder,
        &set,
        limit,
        heads,
        done,
        &mut |result, position| {
            bar.set_position(position as u64);
            log.as_mut().map_or(Ok(()), |log| log.append(result))
        },
    )?;
    bar.finish_and_clear();
    if json {
        print_json(&report);
        return Ok(());
    }
    println!(
        "attribution {:.3} (lenient {:.3}) over {} answers holding the gold answer",
        report.attribution, report.attribution_lenient, report.attributed_answers
    );
    for (name, v) in &report.baselines {
        println!("  {name:<16} {v:.3}");
    }
    println!(
        "AUROC, {} questions with their gold passage against {} without:",
        report.questions, report.unanswerable
    );
    for (name, v) in &report.auroc {
        println!("  {name:<16} {v:.3}");
    }
    println!(
        "abstention below grounding {}: {:.3} of answerable, {:.3} of unanswerable runs \
         (the rule's threshold on these runs: {:.3})",
        report.abstain_threshold,
        report.abstain_rate_answerable,
        report.abstain_rate_unanswerable,
        report.abstain_below_fit
    );
    if !report.heads.is_empty() {
        println!("best heads (strict attribution, even / odd answers):");
        for h in &report.heads {
            println!(
                "  layer {:>2} head {} {:.3} / {:.3}",
                h.layer, h.head, h.selection, h.check
            );
        }
    }
    Ok(())
}

fn followup(
    ctx: &Context,
    dir: &Path,
    limit: Option<usize>,
    answers: bool,
    json: bool,
) -> Result<()> {
    let bar = bar(0, "eval followup");
    let report = on_fresh_db(ctx, |engine| {
        eval::followup::evaluate(engine, dir, limit, answers, &mut |n, total| {
            bar.set_length(total as u64);
            bar.set_position(n as u64);
        })
    });
    bar.finish_and_clear();
    let report = report?;
    if json {
        print_json(&report);
        return Ok(());
    }
    println!(
        "{:<11} {:>9} {:>9} {:>7} {:>12} {:>9}",
        "asked", "recall@1", "recall@5", "MRR", "containment", "abstains"
    );
    for (way, m) in &report.retrieval {
        let answered = |xs: &std::collections::BTreeMap<&str, f64>| {
            xs.get(way).map_or("-".to_string(), |x| format!("{x:.3}"))
        };
        println!(
            "{way:<11} {:>9.3} {:>9.3} {:>7.3} {:>12} {:>9}",
            m.recall_at_1,
            m.recall_at_5,
            m.mrr,
            answered(&report.containment),
            answered(&report.abstain_rate)
        );
    }
    println!("({} pairs)", report.pairs);
    if let Some(m) = &report.memory {
        println!(
            "follow-ups in conversation: {:.0}% resumed the first turn's context, {:.0}% of \
             context tokens reused, {:.0}% answered as afresh, containment {:.3} vs {:.3} \
             afresh; median prune {:.0} vs {:.0} ms, first token {:.0} vs {:.0} ms",
            m.resumed * 100.0,
            m.reused_share * 100.0,
            m.same_answer * 100.0,
            m.containment[0],
            m.containment[1],
            m.prune_ms[0],
            m.prune_ms[1],
            m.first_token_ms[0],
            m.first_token_ms[1]
        );
    }
    Ok(())
}
