#!/usr/bin/env bash
# A release build: `cargo leptos build --release` (the server with the default release profile,
# the wasm with `wasm-release`, then wasm-opt from the npm package binaryen, which setup.sh puts
# on PATH; without it cargo-leptos tries to download one). Prints the wasm's size, raw and gzip.
# Run the result with `target/release/server` from the repository root (it reads target/site).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
export LEPTOS_OUTPUT_NAME=oidc-session
# Components erased to views (as in the dev builds): fewer monomorphized view types, a wasm
# about 3% smaller.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg erase_components"
cargo leptos build --release "$@"
wasm=target/site/pkg/oidc-session.wasm
printf 'release wasm: %d bytes, %d bytes gzip -9 (%s)\n' "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)" "$wasm"
