//! Long runs: many asks in one process must not grow resident memory (burn-wgpu has
//! leaked in long inference loops) beyond issue 8's bound of 5% over 500 asks. This
//! binary holds only these tests, so the resident set is theirs alone; they run one
//! at a time. On a real GPU the device's own memory is not in the resident set; on
//! lavapipe (CI) every wgpu buffer lives in host memory and is counted.
//!
//! `pith bench soak` runs the full 500 asks; these short runs check that the steady
//! rate per ask measured here, carried on to 500 asks, stays inside the bound.

mod common;

use std::sync::Mutex;

use pith_core::model::bert::Embedder;
use pith_core::model::generate::{DEFAULT_CONTEXT, Generator};
use pith_core::model::llama::Precision;
use pith_core::{AskOptions, Budget, DeviceChoice, device};
use pith_eval::EvalSet;
use pith_eval::soak::{SoakPlan, SoakReport, soak};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const BOUND_PCT: f64 = 5.0;
const LONG_RUN: usize = 500;

fn run(choice: DeviceChoice, asks: usize, warmup: usize, questions: usize) -> SoakReport {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dev = device::open(choice);
    let generator = Generator::load(
        &common::gguf_path(),
        &dev.device,
        DEFAULT_CONTEXT,
        Precision::default(),
    )
    .unwrap();
    let embedder = Embedder::load(&common::embedder_dir(), &dev.device).unwrap();
    let set = EvalSet::load(&common::eval_dir()).unwrap();
    // Every ask generates, abstaining or not: generation is what could leak.
    let mut options = AskOptions {
        prune: Budget::Ratio(2.0),
        abstain_below: pith_core::grounding::NEVER,
        ..AskOptions::default()
    };
    options.sampling.max_tokens = 2;
    let plan = SoakPlan {
        asks,
        questions,
        warmup,
        passages: 1,
        options,
    };
    soak(&generator, &embedder, &set, &plan, &mut |_, _| {}).unwrap()
}

fn assert_flat(report: &SoakReport) {
    let (growth, projected) = (report.growth_pct(), report.projected_growth_pct(LONG_RUN));
    eprintln!(
        "resident {:.1} MiB after warm-up, {:.1} MiB at the end: {growth:+.3}%, \
         {projected:+.2}% over {LONG_RUN} asks at the steady rate",
        report.rss_after_warmup(),
        report.rss_end()
    );
    assert!(
        growth <= BOUND_PCT,
        "grew {growth:.2}%: {:?}",
        report.rss_mib
    );
    assert!(
        projected <= BOUND_PCT,
        "{growth:.3}% over {} asks, steadily, is {projected:.2}% over {LONG_RUN}: {:?}",
        report.rss_mib.len() - report.warmup,
        report.rss_mib
    );
}

#[test]
fn memory_stays_flat_over_many_asks_on_the_cpu() {
    assert_flat(&run(DeviceChoice::Cpu, 100, 20, 10));
}

#[test]
fn memory_stays_flat_over_many_asks_on_wgpu() {
    // An ask takes 18 to 30 s on lavapipe once its kernels are built, and the first ask
    // of each new question length one to three minutes (the shader compiler and
    // autotune): one question asked ten times (CI's time: 16 asks over two questions
    // took 12 minutes), pruned like an app's asks so that the embedder's thread beside
    // the scoring pass is in the loop (a CubeCL stream per thread once grew 6.9 MiB an
    // ask here). Asks over many questions are `pith bench soak`'s (docs/reliability.md).
    // The resident set creeps by about 1 MiB over the first asks, and a 500-ask run
    // stepped up four times later on (0.5 to 12.5 MiB): the steady rate carried on to
    // 500 asks leaves such steps out.
    assert_flat(&run(DeviceChoice::Gpu, 10, 3, 1));
}
