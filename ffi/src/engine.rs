//! Opening and closing an engine, and deleting documents.

use std::ffi::c_char;

use pith_core::model::llama::Precision;
use pith_core::{DeviceChoice, Engine, EngineOptions};

use crate::convert::{
    free_handle, into_handle, obj_arg, opt_path_arg, opt_str_arg, out_arg, str_arg,
};
use crate::status::{guard, guard_value, pith_status};

/// An open engine: the embedder, the database and (loaded on the first question) the
/// generator. Shared by threads; freed with pith_engine_free.
pub struct pith_engine(Engine);

/// How to open an engine. Start from pith_engine_options_default() and set what you need.
#[repr(C)]
pub struct pith_engine_options {
    /// Directory holding minilm/ and smollm2/ as scripts/fetch-models lays them out.
    pub models_dir: *const c_char,
    /// The SQLite database file; created when missing. Required.
    pub db_path: *const c_char,
    /// The embedder's directory; NULL for models_dir/minilm.
    pub embedder_dir: *const c_char,
    /// The generator's GGUF file; NULL for the SmolLM2 file in models_dir.
    pub generator_path: *const c_char,
    /// "auto" (a graphics card when there is one, else the CPU; also when wgpu's only
    /// adapter is a software rasterizer), "gpu" (any wgpu adapter, software ones too;
    /// the CPU when there is none) or "cpu"; NULL for auto.
    pub device: *const c_char,
    /// CPU threads for the CPU device, process-wide; 0 uses every core.
    pub threads: u32,
    /// The generator's weights: "q" (as stored in the GGUF), "f16" or "f32"; NULL for q.
    pub precision: *const c_char,
}

/// Options with every field at its default: models in "models", no database yet.
#[unsafe(no_mangle)]
pub extern "C" fn pith_engine_options_default() -> pith_engine_options {
    pith_engine_options {
        models_dir: c"models".as_ptr(),
        db_path: std::ptr::null(),
        embedder_dir: std::ptr::null(),
        generator_path: std::ptr::null(),
        device: std::ptr::null(),
        threads: 0,
        precision: std::ptr::null(),
    }
}

unsafe fn engine_options(o: &pith_engine_options) -> pith_core::Result<EngineOptions> {
    let models = unsafe { str_arg(o.models_dir, "models_dir") }?;
    let db = unsafe { str_arg(o.db_path, "db_path") }?;
    let mut options = EngineOptions::new(models, db);
    options.embedder = unsafe { opt_path_arg(o.embedder_dir, "embedder_dir") }?;
    options.generator = unsafe { opt_path_arg(o.generator_path, "generator_path") }?;
    if let Some(device) = unsafe { opt_str_arg(o.device, "device") }? {
        options.device = device.parse::<DeviceChoice>()?;
    }
    options.threads = o.threads as usize;
    if let Some(precision) = unsafe { opt_str_arg(o.precision, "precision") }? {
        options.precision = Some(precision.parse::<Precision>()?);
    }
    Ok(options)
}

/// Opens an engine: loads the embedder and opens (or creates) the database.
/// On success *engine_out owns the engine; on failure it is set to NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_engine_open(
    options: *const pith_engine_options,
    engine_out: *mut *mut pith_engine,
) -> pith_status {
    guard(|| {
        let out = unsafe { out_arg(engine_out, "engine_out") }?;
        *out = std::ptr::null_mut();
        let options = unsafe { engine_options(obj_arg(options, "options")?) }?;
        *out = into_handle(pith_engine(Engine::open(options)?));
        Ok(())
    })
}

/// Closes an engine. NULL is allowed. No other call on it may be running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_engine_free(engine: *mut pith_engine) {
    guard_value((), || unsafe { free_handle(engine) })
}

/// "gpu" or "cpu": the device the engine runs on (a static string).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_engine_device(engine: *const pith_engine) -> *const c_char {
    guard_value(std::ptr::null(), || match unsafe { engine.as_ref() } {
        Some(e) if e.0.device().kind == DeviceChoice::Gpu => c"gpu".as_ptr(),
        Some(_) => c"cpu".as_ptr(),
        None => std::ptr::null(),
    })
}

pub(crate) unsafe fn engine<'a>(ptr: *const pith_engine) -> pith_core::Result<&'a Engine> {
    Ok(&unsafe { obj_arg(ptr, "engine") }?.0)
}

/// Deletes a document with all its passages; PITH_NOT_FOUND when there is none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_delete_document(
    engine: *const pith_engine,
    document_id: i64,
) -> pith_status {
    guard(|| unsafe { self::engine(engine) }?.delete_document(document_id))
}
