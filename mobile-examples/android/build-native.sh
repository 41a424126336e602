#!/usr/bin/env bash
# Cross-builds libpith_uniffi.so for the app's ABIs into app/src/main/jniLibs/ and puts the
# model files and the sample document into app/src/main/assets/. Run it before
# ./gradlew installDebug, and again after changing the Rust code.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
main="$here/app/src/main"
models="${PITH_MODELS:-$root/models}"

embedder=(config.json tokenizer.json model.safetensors)
generator=SmolLM2-135M-Instruct.Q4_1.gguf
for file in "${embedder[@]/#/minilm/}" "smollm2/$generator"; do
  if [ ! -f "$models/$file" ]; then
    echo "build-native: $models/$file is missing; run scripts/fetch-models first" >&2
    exit 1
  fi
done

# cargo-ndk finds the NDK through ANDROID_NDK_HOME, or the newest under $ANDROID_HOME/ndk.
# PITH_GPU=0 builds the CPU-only library (no wgpu: about a third of the size,
# docs/size.md); the engine then runs on the CPU whatever device it is asked for.
features=()
[ "${PITH_GPU:-1}" = 0 ] && features=(--no-default-features)
cd "$root"
cargo ndk -t arm64-v8a -t x86_64 -o "$main/jniLibs" build --release -p pith-uniffi "${features[@]}"

# Only the files the engine reads: the rest of the downloaded model folders would
# just make the APK bigger.
rm -rf "$main/assets/models"
mkdir -p "$main/assets/models/minilm" "$main/assets/models/smollm2" "$main/assets/samples"
cp "${embedder[@]/#/$models/minilm/}" "$main/assets/models/minilm/"
cp "$models/smollm2/$generator" "$main/assets/models/smollm2/"
cp "$root/samples/honeybees.txt" "$main/assets/samples/"
echo "build-native: $main/jniLibs and $main/assets are ready"
