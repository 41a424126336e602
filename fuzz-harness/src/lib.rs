//! The fuzz targets' bodies: each `run` takes one input and panics when pith breaks a
//! promise on it. cargo-fuzz drives them with coverage feedback (`scripts/fuzz`, the
//! crates in `fuzz/`); the `fuzz-smoke` binary drives them with random mutations of the
//! seed corpus in CI, where cargo-fuzz's instrumented build (40 minutes cold on two
//! cores) does not fit.

pub mod c_strings;
pub mod checks;
pub mod chunk;
pub mod documents;
pub mod gguf;
pub mod mutate;
pub mod safetensors;
pub mod tokenizer;

/// A target: its name (the folder of its seeds in `fuzz/corpus`), the longest input
/// worth trying, and its body.
pub struct Target {
    pub name: &'static str,
    pub max_len: usize,
    pub run: fn(&[u8]),
}

/// Every target. The lengths match `scripts/fuzz`: the gguf seeds include 4 KiB of the
/// real header, tokenizer and chunk inputs are a few sentences, C strings are short,
/// documents are the test fixtures (tens of KiB) and small hand-made files.
pub const TARGETS: [Target; 8] = [
    Target {
        name: "gguf",
        max_len: 8192,
        run: gguf::run,
    },
    Target {
        name: "safetensors",
        max_len: 4096,
        run: safetensors::run,
    },
    Target {
        name: "tokenizer",
        max_len: 2048,
        run: tokenizer::run,
    },
    Target {
        name: "chunk",
        max_len: 4096,
        run: chunk::run,
    },
    Target {
        name: "c_strings",
        max_len: 512,
        run: c_strings::run,
    },
    Target {
        name: "pdf",
        max_len: 65536,
        run: documents::pdf,
    },
    Target {
        name: "docx",
        max_len: 65536,
        run: documents::docx,
    },
    Target {
        name: "html",
        max_len: 16384,
        run: documents::html,
    },
];
