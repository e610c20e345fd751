#!/usr/bin/env bash
# What the wasm budget can hold: builds the app's wasm and the smallest app of the same kind
# (scripts/wasm-floor: the router with two pages, a title, one Resource, one ServerAction) the
# same way (the wasm-release profile, components erased, wasm-bindgen, then wasm-opt -Oz from the
# npm package binaryen), and prints both sizes, raw and gzip -9. The difference is what the app
# itself adds to what Leptos costs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
export RUSTFLAGS="--cfg erase_components"
target="$PWD/target/wasm-floor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The floor from a copy, with the workspace's lock file: the same crate versions as the app.
cp -r scripts/wasm-floor/. "$work/floor"
cp Cargo.lock "$work/floor/"
build() { cargo build --lib --target wasm32-unknown-unknown --profile wasm-release --target-dir "$target" "$@"; }
build -p frontend --no-default-features
build --manifest-path "$work/floor/Cargo.toml"

measure() {
  local name="$1" wasm="$2"
  wasm-bindgen --target web --no-typescript --out-dir "$work/$name" --out-name "$name" "$wasm"
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types "$work/$name/${name}_bg.wasm" -o "$work/$name.wasm"
  local raw gzip
  raw="$(stat -c %s "$work/$name.wasm")"
  gzip="$(gzip -9c "$work/$name.wasm" | wc -c)"
  printf '%-28s %9d bytes raw %9d bytes gzip -9\n' "$name" "$raw" "$gzip"
  echo "$gzip" >"$work/$name.gzip"
}
echo
measure floor "$target/wasm32-unknown-unknown/wasm-release/wasm_floor.wasm"
measure app "$target/wasm32-unknown-unknown/wasm-release/frontend.wasm"
printf '%-28s %9s %19d bytes gzip -9\n' "the app over the floor" "" "$(( $(cat "$work/app.gzip") - $(cat "$work/floor.gzip") ))"
