//! What a conversation keeps of the context it last ran, so that the next question
//! runs only what its context does not share with it.

use std::ops::Range;

use burn::tensor::Tensor;

use crate::error::Result;
use crate::model::generate::Generator;
use crate::model::llama::{KvCache, KvPrefix};

/// The cache of the last context run (its lowest layers, as many as that pass ran),
/// and its hidden states when the pass stopped short of the top: a later pass over a
/// context that starts with the same tokens (a follow-up retrieving the same passages
/// first) runs only the tokens after them. Kept in tensors sized to the context, not to
/// the cache; a context the memory holds whole (as a prefix of what it holds) is not
/// copied again.
#[derive(Clone, Default)]
pub struct ContextMemory(Option<Remembered>);

#[derive(Clone)]
struct Remembered {
    generator: u64,
    ids: Vec<u32>,
    cache: KvPrefix,
    hidden: Option<Tensor<2>>,
}

impl std::fmt::Debug for ContextMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens = self.0.as_ref().map_or(0, |r| r.ids.len());
        write!(f, "ContextMemory({tokens} tokens)")
    }
}

impl ContextMemory {
    /// A cache holding the longest prefix of `ids` remembered from a pass of
    /// `generator` through `depth` layers (with its hidden states, when `hidden`),
    /// those states and the prefix's length; a fresh cache and 0 when nothing is
    /// shared.
    fn resume(
        &self,
        generator: &Generator,
        depth: usize,
        ids: &[u32],
        hidden: bool,
    ) -> (KvCache, Option<Tensor<2>>, usize) {
        let mut cache = generator.new_cache();
        let remembered = self.0.as_ref().filter(|r| {
            r.generator == generator.id()
                && r.cache.layers() == depth
                && (r.hidden.is_some() || !hidden)
        });
        let shared = remembered.map_or(0, |r| {
            r.ids.iter().zip(ids).take_while(|(a, b)| a == b).count()
        });
        match remembered.filter(|_| shared > 0) {
            Some(r) => {
                cache.resume(&r.cache, shared);
                let states = r.hidden.as_ref().map(|h| h.clone().narrow(0, 0, shared));
                (cache, states, shared)
            }
            None => (cache, None, 0),
        }
    }

    /// Remembers the first `ids.len()` slots of `cache`'s lowest `depth` layers, which
    /// hold `ids`, with their hidden states after those layers when given.
    fn remember(
        &mut self,
        generator: &Generator,
        ids: &[u32],
        cache: &KvCache,
        depth: usize,
        hidden: Option<&Tensor<2>>,
    ) {
        self.0 = Some(Remembered {
            generator: generator.id(),
            ids: ids.to_vec(),
            cache: cache.prefix(ids.len(), depth),
            hidden: hidden.cloned(),
        });
    }
}

/// Runs the prompt `ids` up to the end of its `context` through the lowest `depth`
/// layers (a scoring pass's prefill) from the cache of what it shares with `memory`,
/// which then holds it. The cache, every token's hidden state after those layers, and
/// the context tokens reused.
pub fn prefill_lower(
    generator: &Generator,
    ids: &[u32],
    context: Range<usize>,
    depth: usize,
    memory: Option<&mut ContextMemory>,
) -> Result<(KvCache, Tensor<2>, usize)> {
    let ids = &ids[..context.end];
    let (mut cache, remembered, reused) = match &memory {
        Some(m) => m.resume(generator, depth, ids, true),
        None => (generator.new_cache(), None, 0),
    };
    let hidden = match remembered {
        Some(hidden) if reused == ids.len() => hidden,
        remembered => {
            let pass = generator
                .llama()
                .forward(&ids[reused..], &mut cache, None, Some(depth))?;
            let rest = pass
                .hidden
                .expect("a pass cut short returns its hidden states");
            match remembered {
                Some(hidden) => Tensor::cat(vec![hidden, rest], 0),
                None => rest,
            }
        }
    };
    if let Some(memory) = memory.filter(|_| reused < ids.len()) {
        memory.remember(generator, ids, &cache, depth, Some(&hidden));
    }
    Ok((cache, hidden, reused.saturating_sub(context.start)))
}

/// Runs the prompt `ids` through every layer (an unpruned answer's prefill) from
/// the cache of what it shares with `memory`, which then holds `ids[..context.end]`.
/// The cache, the last token's logits and the context tokens reused.
pub fn prefill(
    generator: &Generator,
    ids: &[u32],
    context: Range<usize>,
    memory: Option<&mut ContextMemory>,
) -> Result<(KvCache, Vec<f32>, usize)> {
    let layers = generator.llama().config.layers;
    let (mut cache, _, reused) = match &memory {
        Some(m) => m.resume(generator, layers, &ids[..context.end], false),
        None => (generator.new_cache(), None, 0),
    };
    let pass = generator
        .llama()
        .forward(&ids[reused..], &mut cache, None, None)?;
    if let Some(memory) = memory.filter(|_| reused < context.end) {
        memory.remember(generator, &ids[..context.end], &cache, layers, None);
    }
    let logits = pass.logits.expect("a full forward pass returns logits");
    Ok((cache, logits, reused.saturating_sub(context.start)))
}
