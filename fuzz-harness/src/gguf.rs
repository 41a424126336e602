//! GGUF files from hostile bytes. `Header::parse` must answer an error, never panic, and
//! never allocate more than a small multiple of the input. A header it accepts is then
//! opened as a file, as the generator opens one: every tensor dequantises or is refused
//! as unsupported, and the tokenizer is built from its metadata or refused.

use std::path::PathBuf;
use std::sync::LazyLock;

use pith_core::Error;
use pith_core::model::gguf::{Gguf, Header};
use pith_core::model::tokenizer;

/// `Gguf::open` maps a file, so accepted inputs are written here (one file per process).
static SCRATCH: LazyLock<PathBuf> =
    LazyLock::new(|| std::env::temp_dir().join(format!("pith-fuzz-gguf-{}", std::process::id())));

/// Runs one input; a failed check panics.
pub fn run(data: &[u8]) {
    let Ok(header) = Header::parse(data) else {
        return;
    };
    for t in &header.tensors {
        assert!((1..=4).contains(&t.dims.len()), "rank of {}", t.name);
    }
    std::fs::write(&*SCRATCH, data).expect("scratch file");
    let gguf = Gguf::open(&*SCRATCH).expect("bytes that parse open as a file");
    for t in &header.tensors {
        match gguf.dequantize(&t.name) {
            Ok((values, shape)) => {
                assert_eq!(values.len(), shape.iter().product::<usize>(), "{}", t.name)
            }
            Err(Error::Unsupported(_)) => {}
            Err(e) => panic!("tensor {}: {e}", t.name),
        }
    }
    if let Ok(tokenizer) = tokenizer::from_gguf(&gguf) {
        let _ = tokenizer.encode_fast("Hi <|im_start|>user 42 ünï", false);
    }
}
