//! Model files and the models that run on them.

pub mod bert;
pub mod chat;
pub mod flex;
pub mod generate;
pub mod gguf;
pub mod llama;
pub mod safetensors;
pub mod sampling;
pub mod tokenizer;
#[cfg(feature = "gpu")]
mod wgpu_blocks;

#[cfg(feature = "gpu")]
pub(crate) use wgpu_blocks::on_a_card;

/// GGML tensor types and their dequantisation, from the kernels crate.
pub use pith_kernels::quant;
