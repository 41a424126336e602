//! `cargo run -p uniffi-bindgen -- generate --library <libpith_uniffi.so> --language kotlin ...`
fn main() {
    uniffi::uniffi_bindgen_main()
}
