package dev.pith

/**
 * Refuses a native library of another release than these bindings. uniffi's own
 * checksums, checked when the library is loaded, refuse a library with another API;
 * a release that keeps the API would pass them, so scripts/gen-bindings makes the
 * generated `UniffiLib` call this as soon as it has registered the library. Public so
 * that an app's own tests can see the message it gives.
 */
fun checkLibraryVersion(library: String, bindings: String = BINDINGS_VERSION) {
    if (library != bindings) {
        throw UnsatisfiedLinkError(
            "pith $bindings: the native library (libpith_uniffi.so) is version $library; " +
                "use the jar's own library, or bindings of the library's release",
        )
    }
}
