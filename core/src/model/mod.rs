//! Model files and the models that run on them.

pub mod gguf;
pub mod quant;
pub mod tokenizer;
