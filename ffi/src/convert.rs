//! Checked conversions of C arguments and results.

use std::ffi::{CStr, CString, c_char};
use std::path::PathBuf;

use pith_core::{Error, Result};

/// A required UTF-8 string argument.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    unsafe { opt_str_arg(ptr, name) }?
        .ok_or_else(|| Error::InvalidArgument(format!("{name} is NULL")))
}

/// An optional UTF-8 string argument: NULL is `None`.
pub(crate) unsafe fn opt_str_arg<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller promises a NUL-terminated string, as the header says.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("{name} is not UTF-8: {e}")))
}

pub(crate) unsafe fn opt_path_arg(ptr: *const c_char, name: &str) -> Result<Option<PathBuf>> {
    Ok(unsafe { opt_str_arg(ptr, name) }?.map(PathBuf::from))
}

/// A required object argument.
pub(crate) unsafe fn obj_arg<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: non-NULL pointers come from this library's constructors, as the header says.
    unsafe { ptr.as_ref() }.ok_or_else(|| Error::InvalidArgument(format!("{name} is NULL")))
}

/// A required out-pointer.
pub(crate) unsafe fn out_arg<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: the caller gives a writable location, as the header says.
    unsafe { ptr.as_mut() }.ok_or_else(|| Error::InvalidArgument(format!("{name} is NULL")))
}

/// Text for C: interior NULs (which a document may hold) become spaces.
pub(crate) fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Moves a Rust object onto the heap for C.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by `into_handle`; NULL is allowed.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: made by `into_handle` and, as the header says, freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Owns the C strings that the structs of a result point into.
#[derive(Default)]
pub(crate) struct CStrings(Vec<CString>);

impl CStrings {
    /// Keeps a copy of `text` and returns a pointer that lives as long as `self`
    /// (a CString's buffer does not move when the CString does).
    pub(crate) fn add(&mut self, text: &str) -> *const c_char {
        let s = c_string(text);
        let ptr = s.as_ptr();
        self.0.push(s);
        ptr
    }

    /// As [`CStrings::add`]; NULL for `None`.
    pub(crate) fn add_opt(&mut self, text: Option<&str>) -> *const c_char {
        text.map_or(std::ptr::null(), |t| self.add(t))
    }
}

/// The number of items of a list object; 0 for NULL.
pub(crate) unsafe fn count<L, T>(list: *const L, items: impl FnOnce(&L) -> &[T]) -> usize {
    unsafe { list.as_ref() }.map_or(0, |l| items(l).len())
}

/// The item at `index` of a list object, or NULL when out of range.
pub(crate) unsafe fn item<L, T>(
    list: *const L,
    index: usize,
    items: impl FnOnce(&L) -> &[T],
) -> *const T {
    unsafe { list.as_ref() }
        .and_then(|l| items(l).get(index))
        .map_or(std::ptr::null(), |t| t as *const T)
}
