//! The one place tokenizers are made: from a `tokenizer.json` (the embedder) or from
//! the gpt2-style BPE stored in a GGUF file (the generator).

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::gguf::Gguf;
use crate::error::{Error, Result};

pub use tokenizers::Tokenizer as HfTokenizer;

/// Loads a Hugging Face `tokenizer.json`.
pub fn from_json_file(path: &Path) -> Result<Tokenizer> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Tokenizer::from_bytes(&bytes)
        .map_err(|e| Error::model(path, format!("bad tokenizer.json: {e}")))
}

/// GGUF token types (llama.cpp's `llama_token_type`): 3 is a control token such as `<|im_end|>`.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// The regex of llama.cpp's `llama-bpe` / Llama 3 pre-tokenizer, also used by Qwen2.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Builds the generator's tokenizer from `tokenizer.ggml.*` metadata.
pub fn from_gguf(gguf: &Gguf) -> Result<Tokenizer> {
    let bad = |reason: String| Error::model(gguf.path(), reason);
    let model = gguf.str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(Error::Unsupported(format!(
            "tokenizer model {model:?} (only gpt2-style byte-level BPE is supported)"
        )));
    }
    let tokens = gguf.strings("tokenizer.ggml.tokens")?;
    let merges = gguf
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| bad(format!("merge {m:?} is not two tokens")))
        })
        .collect::<Result<Vec<_>>>()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| bad(format!("cannot build BPE: {e}")))?;

    let mut tokenizer = Tokenizer::new(bpe);
    let pre = gguf.str("tokenizer.ggml.pre").unwrap_or("gpt2");
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(pre)?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let types: Vec<i32> = match gguf
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.as_array())
    {
        Some(types) => types
            .iter()
            .map(|t| t.as_u64().map_or(1, |t| t as i32))
            .collect(),
        None => vec![],
    };
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|&(_, &ty)| ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(t, _)| AddedToken::from(t.to_string(), true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

/// The pre-tokenizer named by `tokenizer.ggml.pre`, as llama.cpp defines it.
fn pre_tokenizer(name: &str) -> Result<PreTokenizerWrapper> {
    let byte_level = |use_regex| ByteLevel::new(false, true, use_regex).into();
    Ok(match name {
        "gpt2" | "default" => byte_level(true),
        // SmolLM and StarCoder split every digit before the gpt2 byte-level split.
        "smollm" | "starcoder" | "refact" => {
            Sequence::new(vec![Digits::new(true).into(), byte_level(true)]).into()
        }
        "llama-bpe" | "llama3" | "qwen2" | "smaug-bpe" => {
            let split = Split::new(
                SplitPattern::Regex(LLAMA3_SPLIT.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
            Sequence::new(vec![split.into(), byte_level(false)]).into()
        }
        other => {
            return Err(Error::Unsupported(format!("pre-tokenizer {other:?}")));
        }
    })
}
