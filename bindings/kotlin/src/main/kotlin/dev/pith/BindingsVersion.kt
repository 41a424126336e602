package dev.pith

// The release these bindings were generated for (scripts/gen-bindings, from Cargo.toml).
internal const val BINDINGS_VERSION = "0.2.0"
