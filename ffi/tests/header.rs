//! The committed include/pith.h must be what cbindgen makes of the current sources.
//! `PITH_BLESS=1 cargo test -p pith-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = crate_dir.join("include/pith.h");
    if std::env::var_os("PITH_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi/include/pith.h is stale: run `PITH_BLESS=1 cargo test -p pith-ffi --test header` and commit it"
    );
}

#[test]
fn header_version_is_the_crates() {
    let version = [
        pith::PITH_VERSION_MAJOR,
        pith::PITH_VERSION_MINOR,
        pith::PITH_VERSION_PATCH,
    ]
    .map(|n| n.to_string())
    .join(".");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let library = unsafe { std::ffi::CStr::from_ptr(pith::pith_version()) };
    assert_eq!(library.to_str().unwrap(), version);
}
