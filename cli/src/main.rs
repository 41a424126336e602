//! `pith`: the offline command-line assistant.

mod bench;
mod commands;
mod eval;
mod generate;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pith_core::DeviceChoice;
use pith_core::model::llama::Precision;

#[derive(Parser)]
#[command(
    name = "pith",
    version,
    about = "Ask questions about your own documents, offline."
)]
struct Cli {
    /// The database (default: pith.db in the user's data directory).
    #[arg(long, global = true, env = "PITH_DB")]
    db: Option<PathBuf>,
    /// The model directory laid out by scripts/fetch-models (default: ./models, then the data directory).
    #[arg(long, global = true, env = "PITH_MODELS")]
    models: Option<PathBuf>,
    /// Where models run: auto (a graphics card through wgpu when there is one, else the
    /// CPU), gpu (wgpu on any adapter, a software rasterizer such as lavapipe too) or cpu.
    #[arg(long, global = true, default_value = "auto")]
    device: DeviceChoice,
    /// The generator's weights: q (as stored in the GGUF, the default), f16 or f32.
    #[arg(long, global = true)]
    precision: Option<Precision>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add documents (text, Markdown, HTML, DOCX, PDF) or folders of them to the database.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// JSON object stored with every document ingested by this command.
        #[arg(long, default_value = "{}")]
        metadata: String,
    },
    /// Keep the database in line with folders (or files): new files ingested, changed
    /// ones re-ingested, deleted ones removed, unchanged ones skipped unread. Files are
    /// known by their path as given: sync a folder by the same path each time.
    Sync {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// JSON object stored with every document this sync ingests.
        #[arg(long, default_value = "{}")]
        metadata: String,
        /// Go on syncing as files change, until interrupted.
        #[arg(long)]
        watch: bool,
        /// Print each sync's report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Search the database.
    Search {
        query: String,
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        /// vector, bm25 or hybrid.
        #[arg(long, default_value = "hybrid")]
        method: pith_core::Method,
        /// Only search this document (repeatable).
        #[arg(long = "document")]
        documents: Vec<i64>,
        /// Only documents whose metadata has KEY=VALUE (repeatable).
        #[arg(long = "where")]
        wheres: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the text pith extracts from a document (PDF, DOCX, HTML, Markdown, text),
    /// without ingesting it; --json adds where its pages and sections start (byte offsets).
    Extract {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the documents in the database.
    Docs {
        #[arg(long)]
        json: bool,
    },
    /// Delete documents by id.
    Delete {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Answer a question from the database, streaming the answer, then list citations.
    Ask {
        question: String,
        #[command(flatten)]
        ask: generate::AskArgs,
        #[arg(long)]
        json: bool,
    },
    /// Generate text with the local model.
    Generate {
        prompt: String,
        /// Continue the text as given, without the chat template; prints only the continuation.
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        sampling: generate::SamplingArgs,
    },
    /// Ask about the documents in a conversation: a question may lean on the one
    /// before it ("and when was it built?").
    Chat {
        /// Chat with the model alone, without the documents.
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        ask: generate::AskArgs,
    },
    /// Measure pith on an evaluation set.
    Eval {
        #[command(subcommand)]
        what: eval::EvalCommand,
    },
    /// Measure speed and memory (scripts/bench runs these beside peer implementations).
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

/// Mesa's Vulkan device-select layer looks for a Wayland display when wgpu asks for its
/// adapters and, without a desktop session, prints "error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment." several times. Where there is no session it has no
/// display to order the adapters by, so the CLI turns it off there (unless the user set
/// it). The library leaves an app's environment alone.
fn quiet_device_select() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // SAFETY: the first thing `main` does, before any thread starts.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

fn main() -> ExitCode {
    quiet_device_select();
    let cli = Cli::parse();
    let ctx = commands::Context {
        db: cli.db,
        models: cli.models,
        device: cli.device,
        precision: cli.precision,
    };
    let result = match cli.command {
        Command::Ingest { paths, metadata } => commands::ingest(&ctx, &paths, &metadata),
        Command::Sync {
            paths,
            metadata,
            watch,
            json,
        } => sync::sync(&ctx, &paths, &metadata, watch, json),
        Command::Search {
            query,
            k,
            method,
            documents,
            wheres,
            json,
        } => commands::search(&ctx, &query, k, method, documents, &wheres, json),
        Command::Extract { path, json } => commands::extract(&path, json),
        Command::Docs { json } => commands::docs(&ctx, json),
        Command::Delete { ids } => commands::delete(&ctx, &ids),
        Command::Ask {
            question,
            ask,
            json,
        } => generate::ask(&ctx, &question, &ask.options(), json),
        Command::Generate {
            prompt,
            raw,
            sampling,
        } => generate::generate(&ctx, &prompt, raw, &sampling),
        Command::Chat { plain: true, ask } => generate::chat_plain(&ctx, &ask.sampling),
        Command::Chat { plain: false, ask } => generate::chat(&ctx, &ask.options()),
        Command::Eval { what } => eval::eval(&ctx, what),
        Command::Bench { what } => bench::bench(&ctx, what),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pith: error: {e}");
            ExitCode::FAILURE
        }
    }
}
