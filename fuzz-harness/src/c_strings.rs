//! The C ABI's string arguments from arbitrary bytes: every call answers an error status
//! with a message, sets its out-pointer to NULL, and never panics or aborts.
//!
//! Input: one byte of flags (bit i makes string i NULL), then NUL-separated strings.
//! Nothing loads a model: paths are put under a directory that does not exist, so
//! `pith_engine_open` fails before it creates a database, and the device is never the
//! GPU, whose probe would dominate every run.

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use pith::{
    pith_ask, pith_engine, pith_engine_open, pith_engine_options, pith_hits, pith_ingest_file,
    pith_ingest_text, pith_last_error, pith_search, pith_status, pith_status_name, pith_version,
};
use pith_core::{DeviceChoice, Method};

const MISSING_DIR: &[u8] = b"/nonexistent-pith-fuzz/";

/// A non-NULL pointer that no call may leave in an out-parameter.
fn sentinel<T>() -> *mut T {
    ptr::NonNull::dangling().as_ptr()
}

/// The thread's last error: present, and UTF-8 because every message is a Rust string.
fn last_error() -> String {
    let message = pith_last_error();
    assert!(!message.is_null(), "a failed call left no message");
    // SAFETY: pith_last_error returns a NUL-terminated string that lives until the next
    // failing call on this thread.
    let message = unsafe { CStr::from_ptr(message) };
    message.to_str().expect("UTF-8 message").to_owned()
}

fn expect_error(status: pith_status, allowed: &[pith_status], call: &str) {
    assert!(allowed.contains(&status), "{call}: {status:?}");
    assert!(!last_error().is_empty(), "{call}: empty message");
}

fn under_missing_dir(s: &CString) -> CString {
    CString::new([MISSING_DIR, s.as_bytes()].concat()).expect("no NUL was added")
}

/// Runs one input; a failed check panics.
pub fn run(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut strings: Vec<CString> = rest
        .split(|&b| b == 0)
        .map(|s| CString::new(s).expect("split at NULs"))
        .collect();
    strings.resize(8, CString::default());
    let ptr_of = |i: usize, s: &CString| -> *const c_char {
        if flags & (1 << i) != 0 {
            ptr::null()
        } else {
            s.as_ptr()
        }
    };

    // What the C strings become inside pith.
    for s in &strings {
        if let Ok(s) = s.to_str() {
            let _ = s.parse::<Method>();
            let _ = s.parse::<DeviceChoice>();
        }
    }

    let models = under_missing_dir(&strings[0]);
    let db = under_missing_dir(&strings[1]);
    let embedder = under_missing_dir(&strings[2]);
    let generator = under_missing_dir(&strings[3]);
    let device = match strings[4].as_bytes() {
        b"gpu" | b"wgpu" => c"cpu".to_owned(),
        _ => strings[4].clone(),
    };
    let options = pith_engine_options {
        models_dir: ptr_of(0, &models),
        db_path: ptr_of(1, &db),
        embedder_dir: ptr_of(2, &embedder),
        generator_path: ptr_of(3, &generator),
        // NULL would mean the GPU.
        device: if flags & (1 << 4) != 0 {
            c"cpu".as_ptr()
        } else {
            device.as_ptr()
        },
        threads: 0,
        precision: ptr_of(7, &strings[7]),
    };
    let mut engine: *mut pith_engine = sentinel();
    // SAFETY: valid options and out-pointer; every string is NUL-terminated.
    let status = unsafe { pith_engine_open(&options, &mut engine) };
    expect_error(
        status,
        &[pith_status::PITH_INVALID_ARGUMENT, pith_status::PITH_IO],
        "pith_engine_open",
    );
    assert!(engine.is_null(), "engine_out not reset");

    // Entry points that need an engine refuse a NULL one whatever their strings.
    let invalid = [pith_status::PITH_INVALID_ARGUMENT];
    let mut hits: *mut pith_hits = sentinel();
    // SAFETY: NULL engine, NUL-terminated strings or NULL, valid out-pointer.
    let status = unsafe {
        pith_search(
            ptr::null(),
            ptr_of(5, &strings[5]),
            5,
            ptr_of(6, &strings[6]),
            &mut hits,
        )
    };
    expect_error(status, &invalid, "pith_search");
    assert!(hits.is_null(), "hits_out not reset");
    // SAFETY: as above; NULL callbacks and results are allowed.
    let status = unsafe {
        pith_ingest_text(
            ptr::null(),
            ptr_of(5, &strings[5]),
            ptr_of(6, &strings[6]),
            ptr_of(7, &strings[7]),
            None,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    expect_error(status, &invalid, "pith_ingest_text");
    // SAFETY: as above.
    let status = unsafe {
        pith_ingest_file(
            ptr::null(),
            ptr_of(5, &strings[5]),
            ptr_of(7, &strings[7]),
            None,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    expect_error(status, &invalid, "pith_ingest_file");
    let mut answer = sentinel();
    // SAFETY: as above.
    let status = unsafe {
        pith_ask(
            ptr::null(),
            ptr_of(5, &strings[5]),
            ptr::null(),
            None,
            ptr::null_mut(),
            ptr::null(),
            &mut answer,
        )
    };
    expect_error(status, &invalid, "pith_ask");
    assert!(answer.is_null(), "answer_out not reset");

    // Static strings stay valid.
    // SAFETY: both return static NUL-terminated strings.
    unsafe {
        assert!(!CStr::from_ptr(pith_version()).is_empty());
        assert!(!CStr::from_ptr(pith_status_name(status)).is_empty());
    }
}
