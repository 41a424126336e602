//! Model files and the models that run on them.

pub mod bert;
pub mod chat;
pub mod generate;
pub mod gguf;
pub mod llama;
pub mod quant;
pub mod safetensors;
pub mod sampling;
pub mod tokenizer;
