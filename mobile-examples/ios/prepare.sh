#!/usr/bin/env bash
# Builds bindings/swift/PithFFI.xcframework and puts the model files and the sample
# document into PithExample/Bundled/, which the app bundles as a folder. Runs on macOS
# with Xcode; run it before `xcodegen generate`, and again after changing the Rust code.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
models="${PITH_MODELS:-$root/models}"
bundled="$here/PithExample/Bundled"

embedder=(config.json tokenizer.json model.safetensors)
generator=SmolLM2-135M-Instruct.Q4_1.gguf
for file in "${embedder[@]/#/minilm/}" "smollm2/$generator"; do
  if [ ! -f "$models/$file" ]; then
    echo "prepare: $models/$file is missing; run scripts/fetch-models first" >&2
    exit 1
  fi
done

"$root/bindings/swift/build-xcframework.sh"

# Only the files the engine reads: the rest of the downloaded model folders would
# just make the app bigger.
rm -rf "$bundled"
mkdir -p "$bundled/models/minilm" "$bundled/models/smollm2"
cp "${embedder[@]/#/$models/minilm/}" "$bundled/models/minilm/"
cp "$models/smollm2/$generator" "$bundled/models/smollm2/"
cp "$root/samples/honeybees.txt" "$bundled/"
echo "prepare: $bundled is ready; now run: xcodegen generate"
