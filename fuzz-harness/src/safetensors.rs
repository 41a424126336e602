//! Safetensors files from hostile bytes, through the function `SafetensorsFile` uses:
//! every tensor converts to f32 or fails with an error, never a panic.

use std::path::Path;

use pith_core::model::safetensors::tensor_f32;
use safetensors::SafeTensors;

/// Runs one input; a failed check panics.
pub fn run(data: &[u8]) {
    let path = Path::new("fuzz.safetensors");
    // The names come from the safetensors crate; a file it refuses still goes through
    // pith's error path once.
    let names = match SafeTensors::deserialize(data) {
        Ok(tensors) => tensors.names().into_iter().map(str::to_owned).collect(),
        Err(_) => vec!["missing".to_string()],
    };
    for name in names {
        if let Ok((values, shape)) = tensor_f32(data, path, &name) {
            assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
        }
    }
}
