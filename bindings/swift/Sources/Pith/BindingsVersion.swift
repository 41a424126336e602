// The release these bindings were generated for (scripts/gen-bindings, from Cargo.toml).
let bindingsVersion = "0.2.0"
