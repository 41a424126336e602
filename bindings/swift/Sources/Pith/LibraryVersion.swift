// Refuses a native library of another release than these bindings. uniffi's own
// checksums refuse a library with another API; a release that keeps the API would pass
// them, so scripts/gen-bindings makes the generated one-time initialisation call
// `checkLibraryVersion()`. It stops the app as uniffi's checksum mismatch does: nothing
// can be called on a library the bindings do not match.

#if canImport(PithFFI)
import PithFFI
#endif

/// The message for a library of another release than these bindings, or nil when they match.
public func libraryVersionMismatch(_ library: String, bindings: String = bindingsVersion) -> String? {
    if library == bindings {
        return nil
    }
    return "pith \(bindings): the native library (PithFFI) is version \(library); "
        + "use the xcframework built from the same release as these bindings"
}

func checkLibraryVersion() {
    if let message = libraryVersionMismatch(nativeLibraryVersion()) {
        fatalError(message)
    }
}

/// The library's version through its C functions: `version()` and the buffer's own
/// `deallocate()` go through the initialisation this check is part of.
private func nativeLibraryVersion() -> String {
    var status = RustCallStatus()
    let buffer = uniffi_pith_uniffi_fn_func_version(&status)
    let version = String(
        decoding: UnsafeBufferPointer(start: UnsafePointer(buffer.data), count: Int(buffer.len)),
        as: UTF8.self)
    ffi_pith_uniffi_rustbuffer_free(buffer, &status)
    return version
}
