//! pith's CPU kernels: GGUF's block formats and the kernels that compute with them as
//! stored, and the embedder's fused steps.
//!
//! A quantised model decodes each token by reading every weight once, so it runs at
//! the speed its weights can be read: kept in their stored blocks (4.5 to 8.5 bits a
//! value) they read three to seven times faster than as f32. This crate decodes blocks
//! inside the dot product, against f32 activations ([`dot`]) or activations rounded to
//! 8 bits ([`q8`], [`dot_q8`]), and runs matrix products over rows of blocks
//! ([`QMatrix`]), on scalar code, AVX2 and NEON. For the sentence embedder it has the
//! steps Burn's CPU device runs as several passes: a linear layer with its bias
//! ([`matmul::affine`]), self-attention over whole passages ([`self_attention`]),
//! `LayerNorm(x + residual)` ([`norm`]) and GELU ([`activation`]). It has no Burn
//! dependency, so its tests build and run quickly on every target, aarch64 under qemu
//! included; pith-core calls it on the CPU device (`core/src/model/flex.rs`).

pub mod activation;
pub mod attention;
#[macro_use]
pub mod dot;
pub mod dot_q8;
pub mod matmul;
pub mod norm;
pub mod q8;
pub mod quant;
mod reduce;
pub mod scan;
pub mod self_attention;

pub use dot::Isa;
pub use matmul::QMatrix;
pub use quant::GgmlType;
