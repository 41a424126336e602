//! A short fuzz run for CI: every target's body on random mutations of its committed
//! seeds for a fixed time each. An input that makes a target panic is written to
//! `fuzz/artifacts/<target>/smoke-<hash>` (as `scripts/fuzz` leaves libFuzzer's) and
//! the run fails.
//!
//!   fuzz-smoke [SECONDS_PER_TARGET] [SEED]     environment: FUZZ_TARGETS="gguf chunk"

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use pith_fuzz_harness::mutate::mutate;
use pith_fuzz_harness::{TARGETS, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The committed seeds of `target`, and for a document format the test fixtures in it
/// (`core/tests/fixtures/documents/*.pdf`...), which are not copied into the corpus.
fn seeds(target: &Target) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths = files_in(&fuzz_dir().join("corpus").join(target.name))?;
    let fixtures = fuzz_dir().join("../core/tests/fixtures/documents");
    paths.extend(
        files_in(&fixtures)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == target.name)),
    );
    paths.iter().map(std::fs::read).collect()
}

fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.sort();
    Ok(paths)
}

fn save(target: &Target, input: &[u8]) -> PathBuf {
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let dir = fuzz_dir().join("artifacts").join(target.name);
    let path = dir.join(format!("smoke-{hash:016x}"));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        eprintln!(
            "fuzz-smoke: could not save the input to {}: {e}",
            path.display()
        );
    }
    path
}

/// Runs `target` for `time`; returns the number of inputs, or the path of a crashing one.
fn run(target: &Target, time: Duration, rng: &mut StdRng) -> Result<u64, PathBuf> {
    let seeds = seeds(target).unwrap_or_else(|e| panic!("seeds of {}: {e}", target.name));
    let start = Instant::now();
    let mut runs = 0u64;
    // Every seed as it is first, then mutations.
    let mut queue: Vec<Vec<u8>> = seeds.clone();
    while start.elapsed() < time || !queue.is_empty() {
        let input = queue
            .pop()
            .unwrap_or_else(|| mutate(&seeds, target.max_len, rng));
        if std::panic::catch_unwind(|| (target.run)(&input)).is_err() {
            return Err(save(target, &input));
        }
        runs += 1;
    }
    Ok(runs)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let only = std::env::var("FUZZ_TARGETS").ok();
    let chosen = |t: &&Target| {
        only.as_deref()
            .is_none_or(|o| o.split_whitespace().any(|n| n == t.name))
    };
    eprintln!("fuzz-smoke: {seconds}s a target, seed {seed} (pass it to repeat this run)");
    let mut failed = false;
    for target in TARGETS.iter().filter(chosen) {
        let mut rng = StdRng::seed_from_u64(seed);
        match run(target, Duration::from_secs(seconds), &mut rng) {
            Ok(runs) => eprintln!("fuzz-smoke: {:<12} {runs:>8} inputs  ok", target.name),
            Err(path) => {
                eprintln!(
                    "fuzz-smoke: {:<12} CRASH, input saved to {}",
                    target.name,
                    path.display()
                );
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
