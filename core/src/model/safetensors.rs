//! Reading f32/f16/bf16 tensors from a `.safetensors` file.

use std::fs::File;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// A memory-mapped safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    map: Mmap,
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only map of a model file pith never writes.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        parse(&map, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            map,
        })
    }

    /// A tensor converted to f32, with its shape.
    pub fn f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        tensor_f32(&self.map, &self.path, name)
    }
}

fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))
}

/// Tensor `name` of the safetensors file held in `bytes`, converted to f32, with its
/// shape; `path` only names the file in errors. Public so that the fuzz target
/// (`fuzz-harness/src/safetensors.rs`) runs the same code on bytes without a file.
pub fn tensor_f32(bytes: &[u8], path: &Path, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
    let tensors = parse(bytes, path)?;
    let view = tensors
        .tensor(name)
        .map_err(|_| Error::model(path, format!("tensor {name} is missing")))?;
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::Unsupported(format!(
                "tensor {name} of {} has dtype {other:?}",
                path.display()
            )));
        }
    };
    Ok((values, view.shape().to_vec()))
}
