//! GGUF v2/v3 reader: metadata, tensor infos and memory-mapped tensor data.
//!
//! The parser works on a byte slice and checks every length against what is left of
//! the file before allocating, so a hostile header cannot make it allocate more
//! than the file's size.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::quant::GgmlType;
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// Any integer value that fits, as u64.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// Where one tensor lives in the file and how it is stored.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: `dims[0]` varies fastest (the reverse of row-major shape).
    pub dims: Vec<u64>,
    pub type_id: u32,
    /// Offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Row-major shape (outermost first), as Burn and PyTorch write it.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// The parsed header of a GGUF file.
#[derive(Debug, Clone)]
pub struct Header {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the aligned tensor data section.
    pub data_offset: u64,
}

/// Why a header could not be parsed (turned into [`Error::Model`] with the path).
type ParseResult<T> = std::result::Result<T, String>;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> ParseResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated while reading {what} at byte {}", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn array<const N: usize>(&mut self, what: &str) -> ParseResult<[u8; N]> {
        Ok(self
            .take(N, what)?
            .try_into()
            .expect("take returns N bytes"))
    }

    fn u32(&mut self, what: &str) -> ParseResult<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> ParseResult<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A count of items each at least `min_size` bytes long, checked against what is left.
    fn count(&mut self, min_size: usize, what: &str) -> ParseResult<usize> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_size) <= self.remaining());
        fits.ok_or_else(|| format!("{what} of {n} does not fit in the file"))
    }

    fn string(&mut self, what: &str) -> ParseResult<String> {
        let len = self.count(1, what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
    }

    fn value(&mut self, type_id: u32, depth: u32) -> ParseResult<Value> {
        Ok(match type_id {
            0 => Value::U8(self.array::<1>("u8")?[0]),
            1 => Value::I8(self.array::<1>("i8")?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array("u16")?)),
            3 => Value::I16(i16::from_le_bytes(self.array("i16")?)),
            4 => Value::U32(self.u32("u32")?),
            5 => Value::I32(i32::from_le_bytes(self.array("i32")?)),
            6 => Value::F32(f32::from_le_bytes(self.array("f32")?)),
            7 => match self.array::<1>("bool")?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("bool value {b} is neither 0 nor 1")),
            },
            8 => Value::String(self.string("string value")?),
            9 => {
                if depth > 2 {
                    return Err("arrays nested too deeply".into());
                }
                let item_type = self.u32("array type")?;
                let len = self.count(min_value_size(item_type)?, "array length")?;
                let items = (0..len)
                    .map(|_| self.value(item_type, depth + 1))
                    .collect::<ParseResult<_>>()?;
                Value::Array(items)
            }
            10 => Value::U64(self.u64("u64")?),
            11 => Value::I64(i64::from_le_bytes(self.array("i64")?)),
            12 => Value::F64(f64::from_le_bytes(self.array("f64")?)),
            t => return Err(format!("unknown metadata value type {t}")),
        })
    }
}

fn min_value_size(type_id: u32) -> ParseResult<usize> {
    Ok(match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8..=12 => 8,
        t => return Err(format!("unknown array item type {t}")),
    })
}

impl Header {
    /// Parses the header of a GGUF file held in `bytes` and checks that every tensor's
    /// data lies inside it.
    pub fn parse(bytes: &[u8]) -> ParseResult<Self> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.take(4, "magic")? != MAGIC {
            return Err("not a GGUF file (bad magic)".into());
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(format!(
                "GGUF version {version} is not supported (2 and 3 are)"
            ));
        }
        // A tensor info takes at least 8 (name) + 4 + 8 (one dim) + 4 + 8 bytes.
        let tensor_count = c.count(32, "tensor count")?;
        let kv_count = c.count(12, "metadata count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = c.string("metadata key")?;
            let type_id = c.u32("metadata type")?;
            let value = c
                .value(type_id, 0)
                .map_err(|e| format!("metadata {key}: {e}"))?;
            metadata.insert(key, value);
        }
        let tensors = (0..tensor_count)
            .map(|_| tensor_info(&mut c))
            .collect::<ParseResult<Vec<_>>>()?;

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => v
                .as_u64()
                .filter(|a| a.is_power_of_two())
                .ok_or("general.alignment is not a power of two")?,
        };
        let data_offset = (c.pos as u64).next_multiple_of(alignment);
        let header = Header {
            version,
            metadata,
            tensors,
            data_offset,
        };
        header.check_bounds(bytes.len() as u64)?;
        Ok(header)
    }

    fn check_bounds(&self, file_len: u64) -> ParseResult<()> {
        for t in &self.tensors {
            let ty = GgmlType::from_id(t.type_id);
            let size = match ty {
                Some(ty) => ty.bytes_for(t.elements()).ok_or_else(|| {
                    format!(
                        "tensor {}: {} elements do not fill whole blocks",
                        t.name,
                        t.elements()
                    )
                })?,
                None => 0, // reported when the tensor is loaded
            };
            let end = self
                .data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(size));
            if end.is_none_or(|e| e > file_len) {
                return Err(format!(
                    "tensor {} lies beyond the end of the file (truncated?)",
                    t.name
                ));
            }
        }
        Ok(())
    }
}

fn tensor_info(c: &mut Cursor) -> ParseResult<TensorInfo> {
    let name = c.string("tensor name")?;
    let n_dims = c.u32("tensor rank")?;
    if n_dims == 0 || n_dims > 4 {
        return Err(format!("tensor {name}: rank {n_dims} is not 1 to 4"));
    }
    let dims = (0..n_dims)
        .map(|_| c.u64("tensor dimension"))
        .collect::<ParseResult<Vec<_>>>()?;
    if dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .is_none()
    {
        return Err(format!("tensor {name}: dimensions {dims:?} overflow"));
    }
    let type_id = c.u32("tensor type")?;
    let offset = c.u64("tensor offset")?;
    Ok(TensorInfo {
        name,
        dims,
        type_id,
        offset,
    })
}

/// An open, memory-mapped GGUF file.
pub struct Gguf {
    path: PathBuf,
    map: Mmap,
    pub header: Header,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Gguf {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the map is read-only; pith never writes model files, and a file
        // truncated underneath a running process is outside what any mmap user can guard.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let header = Header::parse(&map).map_err(|r| Error::model(&path, r))?;
        Ok(Self { path, map, header })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header.metadata.get(key)
    }

    fn missing(&self, key: &str, what: &str) -> Error {
        Error::model(
            &self.path,
            format!("metadata {key} is missing or not {what}"),
        )
    }

    pub fn u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.missing(key, "an integer"))
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        self.u64(key).map(|v| v as usize)
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        self.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| self.missing(key, "a number"))
    }

    pub fn str(&self, key: &str) -> Result<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| self.missing(key, "a string"))
    }

    /// A string array such as the tokenizer's vocabulary.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>> {
        self.get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_str).collect())
            .ok_or_else(|| self.missing(key, "an array of strings"))
    }

    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo> {
        self.header
            .tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::model(&self.path, format!("tensor {name} is missing")))
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.header.tensors.iter().any(|t| t.name == name)
    }

    /// The stored bytes of a tensor and its type.
    pub fn raw(&self, name: &str) -> Result<(&TensorInfo, GgmlType, &[u8])> {
        let (info, ty, range) = self.locate(name)?;
        Ok((info, ty, &self.map[range]))
    }

    /// The bytes of the mapped file in `range` (from [`Gguf::locate`]).
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.map[range]
    }

    /// Where a tensor's stored bytes lie in the file, and its type.
    pub fn locate(&self, name: &str) -> Result<(&TensorInfo, GgmlType, Range<usize>)> {
        let info = self.tensor_info(name)?;
        let ty = GgmlType::from_id(info.type_id).ok_or_else(|| {
            Error::Unsupported(format!(
                "tensor {name} of {} is stored as {}, which pith cannot read",
                self.path.display(),
                GgmlType::name_of(info.type_id)
            ))
        })?;
        let size = ty.bytes_for(info.elements()).expect("checked when parsed");
        let start = (self.header.data_offset + info.offset) as usize;
        Ok((info, ty, start..start + size as usize))
    }

    /// A tensor dequantised to f32, with its row-major shape.
    pub fn dequantize(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let (info, ty, bytes) = self.raw(name)?;
        Ok((ty.dequantize(bytes), info.shape()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend(version.to_le_bytes());
        b.extend(tensors.to_le_bytes());
        b.extend(kvs.to_le_bytes());
        b
    }

    #[test]
    fn rejects_bad_magic_and_version() {
        assert!(Header::parse(b"GGML").unwrap_err().contains("magic"));
        assert!(
            Header::parse(&header_bytes(1, 0, 0))
                .unwrap_err()
                .contains("version 1")
        );
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        let err = Header::parse(&header_bytes(3, u64::MAX, 0)).unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
        let err = Header::parse(&header_bytes(3, 0, 1 << 40)).unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn reads_metadata_of_every_type() {
        let mut b = header_bytes(3, 0, 3);
        let key = |b: &mut Vec<u8>, k: &str| {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
        };
        key(&mut b, "a");
        b.extend(6u32.to_le_bytes());
        b.extend(1.5f32.to_le_bytes());
        key(&mut b, "b");
        b.extend(9u32.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend([7u8, 0, 9, 0]);
        key(&mut b, "c");
        b.extend(7u32.to_le_bytes());
        b.push(1);
        let h = Header::parse(&b).unwrap();
        assert_eq!(h.metadata["a"], Value::F32(1.5));
        assert_eq!(
            h.metadata["b"],
            Value::Array(vec![Value::U16(7), Value::U16(9)])
        );
        assert_eq!(h.metadata["c"], Value::Bool(true));
        assert_eq!(h.data_offset, (b.len() as u64).next_multiple_of(32));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut b = header_bytes(3, 0, 1);
        b.extend(1u64.to_le_bytes());
        b.push(b'k');
        b.extend(8u32.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend(b"abc");
        assert!(Header::parse(&b).is_ok());
        for len in 0..b.len() {
            assert!(
                Header::parse(&b[..len]).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
    }
}
