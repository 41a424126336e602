//! `pith bench`: throughput and latency figures for the embedder, the store and the
//! generator. Inputs come from files so that `scripts/bench` can feed the very same
//! passages, vectors and prompt tokens to the peers it compares pith with.
//!
//! These are measurements, not tests: nothing here asserts on a timing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Subcommand;
use pith_core::ask::AskOptions;
use pith_core::attribution::{ATTRIBUTION_HEADS, DecodeReader};
use pith_core::model::bert::Embedder;
use pith_core::model::generate::{DecodeTap, Generator};
use pith_core::model::sampling::SamplingOptions;
use pith_core::store::{EmbedderId, NewDocument, NewPassage, Store};
use pith_core::{Error, Filter, Method, Result};
use pith_eval::soak::{self, SoakPlan, peak_resident_mib, resident_mib};
use pith_eval::{EvalSet, median};
use serde_json::{Value, json};

use crate::commands::Context;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Passages per second at each batch size, and peak memory, of the embedder.
    Embed {
        /// Passages, one per line.
        #[arg(long)]
        passages: PathBuf,
        /// Use only the first N passages.
        #[arg(long, default_value_t = 128)]
        limit: usize,
        /// Passages per call to the embedder, one measurement each.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        batches: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long)]
        json: bool,
    },
    /// p50/p99 search latency (vector and hybrid) and recall@10 against exact search.
    Search {
        /// Base vectors: little-endian f32, `dim` per row.
        #[arg(long)]
        vectors: PathBuf,
        /// Query vectors, same layout.
        #[arg(long)]
        queries: PathBuf,
        /// Passage texts, one per line, for the full-text half of hybrid search.
        #[arg(long)]
        passages: PathBuf,
        #[arg(long, default_value_t = 384)]
        dim: usize,
        /// Database sizes to build (each uses the first N vectors).
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        sizes: Vec<usize>,
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Where to build the databases (default: the system temp directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Prefill and decode tokens/s, time to first token and peak memory, greedy.
    Generate {
        /// Text whose first tokens make the prompt (no chat template).
        #[arg(long)]
        prompt_file: PathBuf,
        /// Prompt lengths in tokens.
        #[arg(long, value_delimiter = ',', default_value = "512")]
        lengths: Vec<usize>,
        /// Tokens to decode after each prompt.
        #[arg(long, default_value_t = 64)]
        decode: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Write each prompt's token ids here as ids_<length>.json, for the peers.
        #[arg(long)]
        ids_dir: Option<PathBuf>,
        /// Read the attribution heads' attention while decoding, as ask does.
        #[arg(long)]
        attribution: bool,
        #[arg(long)]
        json: bool,
    },
    /// Many asks (pruned 2x, greedy) in one process: resident memory and time per ask
    /// from the first asks to the last, where a leak or a slowdown would show.
    Soak {
        /// An evaluation set (e.g. eval/squad-superbowl): its questions and contexts.
        dir: PathBuf,
        #[arg(long, default_value_t = 500)]
        asks: usize,
        /// Cycle over the first N questions, so the first asks and the last are alike.
        #[arg(long, default_value_t = 25)]
        questions: usize,
        /// Asks before the memory baseline is taken.
        #[arg(long, default_value_t = 25)]
        warmup: usize,
        #[arg(long, default_value_t = 8)]
        max_tokens: usize,
        /// Context passages per ask, of the question's five: fewer make each ask
        /// cheaper where the device is slow (lavapipe) without changing what repeats.
        #[arg(long, default_value_t = 5)]
        passages: usize,
        #[arg(long)]
        json: bool,
    },
}

pub fn bench(ctx: &Context, what: BenchCommand) -> Result<()> {
    let (report, json) = match what {
        BenchCommand::Embed {
            passages,
            limit,
            batches,
            reps,
            json,
        } => (embed(ctx, &passages, limit, &batches, reps)?, json),
        BenchCommand::Search {
            vectors,
            queries,
            passages,
            dim,
            sizes,
            k,
            reps,
            dir,
            json,
        } => {
            let inputs = SearchInputs::read(&vectors, &queries, &passages, dim)?;
            let dir = dir.unwrap_or_else(std::env::temp_dir);
            (search(&inputs, &sizes, k, reps, &dir)?, json)
        }
        BenchCommand::Generate {
            prompt_file,
            lengths,
            decode,
            reps,
            ids_dir,
            attribution,
            json,
        } => {
            let plan = GeneratePlan {
                lengths,
                decode,
                reps,
                ids_dir,
                attribution,
            };
            (generate(ctx, &prompt_file, &plan)?, json)
        }
        BenchCommand::Soak {
            dir,
            asks,
            questions,
            warmup,
            max_tokens,
            passages,
            json,
        } => {
            // Every ask generates, abstaining or not: generation is what could leak.
            let mut options = AskOptions {
                abstain_below: pith_core::grounding::NEVER,
                ..AskOptions::default()
            };
            options.sampling.max_tokens = max_tokens;
            let plan = SoakPlan {
                asks,
                questions,
                warmup,
                passages,
                options,
            };
            (soak(ctx, &dir, &plan)?, json)
        }
    };
    if json {
        println!("{report}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- shared helpers

/// The nearest-rank percentile `p` (0..100) of `xs`.
fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `Error::io` is private to core; this builds the same variant.
fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// Reads a file of little-endian f32 rows of `dim` values.
fn read_f32_rows(path: &Path, dim: usize) -> Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if dim == 0 || bytes.len() % (4 * dim) != 0 {
        return Err(Error::InvalidArgument(format!(
            "{}: {} bytes is not a whole number of {dim}-float rows",
            path.display(),
            bytes.len()
        )));
    }
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(floats.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

// ---------------------------------------------------------------- embed

fn embed(
    ctx: &Context,
    passages: &Path,
    limit: usize,
    sizes: &[usize],
    reps: usize,
) -> Result<Value> {
    let lines = read_lines(passages)?;
    let texts: Vec<&str> = lines.iter().take(limit).map(String::as_str).collect();
    let dev = ctx.device();
    let load_start = Instant::now();
    let embedder = Embedder::load(&ctx.models_dir().join("minilm"), &dev.device)?;
    let load = load_start.elapsed();
    // One untimed call pays for lazy initialisation (thread pool, kernels) once.
    embedder.embed(&texts[..texts.len().min(2)])?;
    let mut batches = serde_json::Map::new();
    for &batch in sizes {
        let rates = (0..reps)
            .map(|_| embed_rate(&embedder, &texts, batch))
            .collect::<Result<Vec<f64>>>()?;
        batches.insert(
            format!("batch_{batch}"),
            json!({"passages_per_s": median(&rates), "runs": rates}),
        );
    }
    Ok(json!({
        "bench": "embed",
        "impl": "pith",
        "device": format!("{:?}", dev.kind).to_lowercase(),
        "passages": texts.len(),
        "mean_chars": texts.iter().map(|t| t.len()).sum::<usize>() as f64 / texts.len().max(1) as f64,
        "load_s": load.as_secs_f64(),
        "batches": batches,
        "peak_rss_mib": peak_resident_mib(),
    }))
}

/// Passages per second embedding `texts` in calls of `batch` passages.
fn embed_rate(embedder: &Embedder, texts: &[&str], batch: usize) -> Result<f64> {
    let start = Instant::now();
    for chunk in texts.chunks(batch) {
        embedder.embed(chunk)?;
    }
    Ok(texts.len() as f64 / start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------- search

struct SearchInputs {
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    texts: Vec<String>,
    dim: usize,
}

impl SearchInputs {
    fn read(vectors: &Path, queries: &Path, passages: &Path, dim: usize) -> Result<Self> {
        Ok(Self {
            base: read_f32_rows(vectors, dim)?,
            queries: read_f32_rows(queries, dim)?,
            texts: read_lines(passages)?,
            dim,
        })
    }

    /// Passage `i`'s text; the text file is reused cyclically when shorter than the vectors.
    fn text(&self, i: usize) -> &str {
        &self.texts[i % self.texts.len()]
    }

    /// A short keyword query for query `q`: the first words of some passage.
    fn query_text(&self, q: usize) -> String {
        let words: Vec<&str> = self.text(q * 7919).split_whitespace().take(4).collect();
        words.join(" ")
    }
}

fn search(
    inputs: &SearchInputs,
    sizes: &[usize],
    k: usize,
    reps: usize,
    dir: &Path,
) -> Result<Value> {
    if inputs.texts.is_empty() {
        return Err(Error::InvalidArgument("no passage texts".into()));
    }
    let mut runs = vec![];
    for &n in sizes {
        if n > inputs.base.len() {
            return Err(Error::InvalidArgument(format!(
                "size {n}: only {} vectors given",
                inputs.base.len()
            )));
        }
        let path = dir.join(format!("pith-bench-{}-{n}.db", std::process::id()));
        let result = search_one(inputs, n, k, reps, &path);
        remove_db(&path);
        runs.push(result?);
    }
    Ok(json!({
        "bench": "search",
        "impl": "pith",
        "k": k,
        "queries": inputs.queries.len(),
        "dim": inputs.dim,
        "sizes": runs,
        "peak_rss_mib": peak_resident_mib(),
    }))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Builds a database of the first `n` passages and measures searches on it.
fn search_one(
    inputs: &SearchInputs,
    n: usize,
    k: usize,
    reps: usize,
    path: &Path,
) -> Result<Value> {
    remove_db(path);
    let id = EmbedderId {
        name: "bench-random-unit-vectors".into(),
        dim: inputs.dim,
    };
    let store = Store::open(path, &id)?;
    let build_start = Instant::now();
    fill_store(&store, inputs, n)?;
    let build = build_start.elapsed();
    let exact: Vec<Vec<usize>> = inputs
        .queries
        .iter()
        .map(|q| exact_top_k(&inputs.base[..n], q, k))
        .collect();
    // The first vector search builds the in-memory index from SQLite.
    let first = Instant::now();
    let q = &inputs.queries[0];
    store.search(
        &inputs.query_text(0),
        q,
        k,
        Method::Vector,
        &Filter::default(),
    )?;
    let first_ms = ms(first.elapsed());
    let mut methods = serde_json::Map::new();
    let all = Filter::default();
    for (name, method) in [("vector", Method::Vector), ("hybrid", Method::Hybrid)] {
        let (timing, found) = time_queries(&store, inputs, k, method, &all, reps)?;
        let mut entry = timing;
        if method == Method::Vector {
            entry["recall_at_k"] = json!(recall(&exact, &found));
        }
        methods.insert(name.into(), entry);
    }
    // Restricted to one document in ten (documents hold consecutive passages).
    let documents: Vec<i64> = (0..n.div_ceil(PASSAGES_PER_DOCUMENT) as i64)
        .step_by(10)
        .map(|d| d + 1)
        .collect();
    let allowed = |i: usize| documents.contains(&((i / PASSAGES_PER_DOCUMENT) as i64 + 1));
    let exact_filtered: Vec<Vec<usize>> = inputs
        .queries
        .iter()
        .map(|q| {
            let rows: Vec<usize> = (0..n).filter(|&i| allowed(i)).collect();
            let base: Vec<Vec<f32>> = rows.iter().map(|&i| inputs.base[i].clone()).collect();
            exact_top_k(&base, q, k)
                .into_iter()
                .map(|j| rows[j])
                .collect()
        })
        .collect();
    let filter = Filter {
        documents,
        metadata: vec![],
    };
    let (mut entry, found) = time_queries(&store, inputs, k, Method::Vector, &filter, reps)?;
    entry["recall_at_k"] = json!(recall(&exact_filtered, &found));
    methods.insert("vector_filtered".into(), entry);
    Ok(json!({
        "passages": n,
        "build_s": build.as_secs_f64(),
        "inserts_per_s": n as f64 / build.as_secs_f64(),
        "first_query_ms": first_ms,
        "index_mib": store.vector_index_bytes() as f64 / (1 << 20) as f64,
        "methods": methods,
    }))
}

/// Passages per stored document: large documents keep the build fast while still
/// going through the same insert path as `pith ingest`.
const PASSAGES_PER_DOCUMENT: usize = 1000;

fn fill_store(store: &Store, inputs: &SearchInputs, n: usize) -> Result<()> {
    for (d, start) in (0..n).step_by(PASSAGES_PER_DOCUMENT).enumerate() {
        let end = (start + PASSAGES_PER_DOCUMENT).min(n);
        let passages: Vec<NewPassage> = (start..end)
            .map(|i| NewPassage {
                start_char: 0,
                end_char: inputs.text(i).chars().count(),
                text: inputs.text(i).to_string(),
                page: None,
                heading: None,
                embedding: inputs.base[i].clone(),
            })
            .collect();
        let hash = format!("bench-{n}-{d}");
        store.insert_document(&NewDocument {
            source: &hash,
            content_hash: &hash,
            metadata: "{}",
            chars: 0,
            passages: &passages,
            stamp: None,
            replaces: &[],
        })?;
    }
    Ok(())
}

/// Runs every query `reps` times; returns latency percentiles (medians over the
/// repetitions) and the 0-based passage indices the first repetition found.
fn time_queries(
    store: &Store,
    inputs: &SearchInputs,
    k: usize,
    method: Method,
    filter: &Filter,
    reps: usize,
) -> Result<(Value, Vec<Vec<usize>>)> {
    let (mut p50, mut p99, mut found) = (vec![], vec![], vec![]);
    for rep in 0..reps {
        let mut lat = Vec::with_capacity(inputs.queries.len());
        for (qi, q) in inputs.queries.iter().enumerate() {
            let text = inputs.query_text(qi);
            let start = Instant::now();
            let hits = store.search(&text, q, k, method, filter)?;
            lat.push(ms(start.elapsed()));
            if rep == 0 {
                // Passage ids are assigned 1, 2, ... in insertion order.
                found.push(hits.iter().map(|h| (h.passage.id - 1) as usize).collect());
            }
        }
        p50.push(percentile(&lat, 50.0));
        p99.push(percentile(&lat, 99.0));
    }
    let timing = json!({
        "p50_ms": median(&p50),
        "p99_ms": median(&p99),
        "runs_p50_ms": p50,
        "runs_p99_ms": p99,
    });
    Ok((timing, found))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    dot / (na.sqrt() * nb.sqrt()).max(1e-30)
}

/// Indices of the `k` base vectors most cosine-similar to `q`, by brute force.
fn exact_top_k(base: &[Vec<f32>], q: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = base
        .iter()
        .enumerate()
        .map(|(i, v)| (cosine(v, q), i))
        .collect();
    let k = k.min(scored.len());
    if k == 0 {
        return vec![];
    }
    scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
    scored[..k].iter().map(|&(_, i)| i).collect()
}

/// Mean over queries of |found ∩ exact| / |exact|.
fn recall(exact: &[Vec<usize>], found: &[Vec<usize>]) -> f64 {
    let per_query = exact.iter().zip(found).map(|(e, f)| {
        let hit = f.iter().filter(|i| e.contains(i)).count();
        hit as f64 / e.len().max(1) as f64
    });
    per_query.sum::<f64>() / exact.len().max(1) as f64
}

// ---------------------------------------------------------------- generate

struct GeneratePlan {
    lengths: Vec<usize>,
    decode: usize,
    reps: usize,
    ids_dir: Option<PathBuf>,
    attribution: bool,
}

fn generate(ctx: &Context, prompt_file: &Path, plan: &GeneratePlan) -> Result<Value> {
    let text = std::fs::read_to_string(prompt_file).map_err(|e| io_error(prompt_file, e))?;
    let dev = ctx.device();
    let load_start = Instant::now();
    let generator = ctx.generator(&dev)?;
    let load = load_start.elapsed();
    let loaded_rss = resident_mib();
    let all_ids = generator.encode(&text)?;
    // One short untimed generation pays for lazy initialisation once.
    run_once(
        &generator,
        &all_ids[..all_ids.len().min(16)],
        4,
        plan.attribution,
    )?;
    let mut results = vec![];
    for &len in &plan.lengths {
        if len > all_ids.len() {
            return Err(Error::InvalidArgument(format!(
                "the prompt file has {} tokens, fewer than {len}",
                all_ids.len()
            )));
        }
        let ids = &all_ids[..len];
        if let Some(dir) = &plan.ids_dir {
            write_ids(dir, len, ids)?;
        }
        let runs = (0..plan.reps)
            .map(|_| run_once(&generator, ids, plan.decode, plan.attribution))
            .collect::<Result<Vec<Value>>>()?;
        results.push(summarise_runs(len, runs));
    }
    Ok(json!({
        "bench": "generate",
        "impl": "pith",
        "device": format!("{:?}", dev.kind).to_lowercase(),
        "precision": generator.llama().precision,
        "context_capacity": generator.max_context(),
        "attribution": plan.attribution,
        "load_s": load.as_secs_f64(),
        "lengths": results,
        "loaded_rss_mib": loaded_rss,
        "peak_rss_mib": peak_resident_mib(),
    }))
}

fn write_ids(dir: &Path, len: usize, ids: &[u32]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let path = dir.join(format!("ids_{len}.json"));
    let body = serde_json::to_string(ids).unwrap_or_default();
    std::fs::write(&path, body).map_err(|e| io_error(&path, e))
}

/// One greedy generation of up to `decode` tokens after `ids`, as rates; with
/// `attribution`, each decode row of the attribution heads is summed over the prompt as
/// `ask` sums it over the kept sentences.
fn run_once(generator: &Generator, ids: &[u32], decode: usize, attribution: bool) -> Result<Value> {
    // The whole prompt is one sentence.
    let prompt = std::iter::once(0..ids.len()).collect();
    let mut reader = DecodeReader::new(ATTRIBUTION_HEADS, prompt, generator.llama().device());
    let mut tap = DecodeTap {
        layers: reader.layers(),
        on_row: Box::new(|read| reader.push(read)),
    };
    let g = generator.generate_tapped(
        ids,
        &SamplingOptions::greedy(decode),
        attribution.then_some(&mut tap),
        &mut |_| true,
        None,
    )?;
    drop(tap);
    // Reading the sums back at the end is part of what attribution costs a decode.
    let read_start = Instant::now();
    if attribution {
        reader.finish()?;
    }
    let decode = g.decode + read_start.elapsed();
    // The first token is sampled from the prefill's logits; each later one costs a
    // forward pass, and the loop runs one more pass after the last, so `decode`
    // covers as many passes as tokens.
    let decoded = g.tokens.len();
    Ok(json!({
        "prompt_tokens": g.prompt_tokens,
        "decode_tokens": decoded,
        "prefill_tok_s": g.prompt_tokens as f64 / g.prefill.as_secs_f64(),
        "decode_tok_s": decoded as f64 / decode.as_secs_f64().max(1e-9),
        "ttft_ms": ms(g.first_token),
        "stop": g.stop,
        "first_tokens": &g.tokens[..g.tokens.len().min(8)],
    }))
}

fn summarise_runs(len: usize, runs: Vec<Value>) -> Value {
    let field = |name: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[name].as_f64()).collect() };
    json!({
        "prompt_tokens": len,
        "prefill_tok_s": median(&field("prefill_tok_s")),
        "decode_tok_s": median(&field("decode_tok_s")),
        "ttft_ms": median(&field("ttft_ms")),
        "runs": runs,
    })
}

// ---------------------------------------------------------------- soak

fn soak(ctx: &Context, dir: &Path, plan: &SoakPlan) -> Result<Value> {
    let set = EvalSet::load(dir)?;
    let dev = ctx.device();
    let generator = ctx.generator(&dev)?;
    let embedder = Embedder::load(&ctx.models_dir().join("minilm"), &dev.device)?;
    let report = soak::soak(&generator, &embedder, &set, plan, &mut |done, rss| {
        if done % 25 == 0 {
            eprintln!("soak: {done} asks, {rss:.0} MiB resident");
        }
    })?;
    let (first, last) = report.median_ask_ms_first_and_last_tenth();
    Ok(json!({
        "bench": "soak",
        "impl": "pith",
        "device": format!("{:?}", dev.kind).to_lowercase(),
        "asks": plan.asks,
        "questions": report.questions,
        "passages": plan.context_passages(),
        "max_tokens": plan.options.sampling.max_tokens,
        "rss_after_warmup_mib": report.rss_after_warmup(),
        "rss_end_mib": report.rss_end(),
        "rss_max_mib": report.rss_mib.iter().copied().fold(f64::NAN, f64::max),
        "rss_growth_pct": report.growth_pct(),
        "median_ask_ms_first_tenth": first,
        "median_ask_ms_last_tenth": last,
        "rss_mib": report.rss_mib,
        "ask_ms": report.ask_ms,
    }))
}
