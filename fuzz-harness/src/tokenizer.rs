//! Both tokenizers on arbitrary text (invalid UTF-8 made lossy, as a C caller's bytes
//! would be refused earlier): the generator's byte-level BPE must give the text back
//! but for the bytes its vocabulary lacks, and the embedder's token ends, which chunking
//! cuts passages at, must be character boundaries of the text. Models come from
//! `$PITH_MODELS` or `../models`.

use std::path::PathBuf;
use std::sync::LazyLock;

use crate::checks::check_chunks;
use pith_core::chunk::{self, ChunkSize};
use pith_core::device::{self, DeviceChoice};
use pith_core::model::bert::{Embedder, MAX_TOKENS};
use pith_core::model::gguf::Gguf;
use pith_core::model::tokenizer::{self, HfTokenizer};

fn models_dir() -> PathBuf {
    std::env::var_os("PITH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models"))
}

/// The generator's tokenizer, built as `Generator::load` builds it.
static GENERATOR: LazyLock<HfTokenizer> = LazyLock::new(|| {
    let gguf = Gguf::open(models_dir().join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .expect("run scripts/setup for the models, or set PITH_MODELS");
    tokenizer::from_gguf(&gguf).expect("SmolLM2 tokenizer")
});

/// GPT-2's byte-to-character map, in which byte-level BPE vocabularies are written:
/// printable bytes stand for themselves, the others for 256, 257... in order.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).expect("below U+0200")
}

/// The bytes with no token in the generator's vocabulary, which encoding drops (SmolLM2
/// lacks some control characters and bytes that rarely or never occur in UTF-8).
static DROPPED: LazyLock<Vec<bool>> = LazyLock::new(|| {
    (0..=255)
        .map(|b| GENERATOR.token_to_id(&byte_char(b).to_string()).is_none())
        .collect()
});

/// The embedder, loaded once on the CPU for its tokenizers and `token_ends`.
static EMBEDDER: LazyLock<Embedder> = LazyLock::new(|| {
    let device = device::open(DeviceChoice::Cpu).device;
    Embedder::load(&models_dir().join("minilm"), &device).expect("MiniLM embedder")
});

/// Runs one input; a failed check panics.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    // The generator: `Generator::encode` then `Generator::decode`.
    let ids = GENERATOR
        .encode_fast(&*text, false)
        .expect("encode")
        .get_ids()
        .to_vec();
    let back = GENERATOR.decode(&ids, false).expect("decode");
    let kept: Vec<u8> = text.bytes().filter(|&b| !DROPPED[usize::from(b)]).collect();
    assert_eq!(
        back,
        String::from_utf8_lossy(&kept),
        "byte-level BPE round trip, ids {ids:?}"
    );
    // Ids the model might sample that the text never makes, and some past the vocabulary.
    let raw: Vec<u32> = data
        .chunks_exact(2)
        .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        .collect();
    let _ = GENERATOR.decode(&raw, false);

    // The embedder: passage sizing, then the truncating tokenizer it embeds with (it pads
    // each pass itself).
    let ends = EMBEDDER.token_ends(&text);
    for &e in &ends {
        assert!(text.is_char_boundary(e), "token end {e} of {text:?}");
    }
    let size = ChunkSize {
        max_tokens: usize::from(data.first().copied().unwrap_or(0) % 8) + 1,
        overlap_tokens: usize::from(data.get(1).copied().unwrap_or(0) % 4),
    };
    check_chunks(
        &text,
        &chunk::chunk(&text, size, |s| EMBEDDER.token_ends(s)),
    );
    let batch = EMBEDDER
        .tokenizer()
        .encode_batch(vec![&*text, "short"], true)
        .expect("encode batch");
    for e in &batch {
        assert!(e.get_ids().len() <= MAX_TOKENS, "truncated to {MAX_TOKENS}");
    }
}
