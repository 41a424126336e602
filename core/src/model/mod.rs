//! Model files and the models that run on them.

pub mod bert;
pub mod gguf;
pub mod quant;
pub mod safetensors;
pub mod tokenizer;
