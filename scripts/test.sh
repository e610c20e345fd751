#!/usr/bin/env bash
# Command two: sets up what is missing, then runs every check and test:
# rustfmt, clippy (server build and wasm build, warnings denied), the Rust unit and integration
# tests, and the Playwright suite in Debian's Chromium against the real app and provider.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

# A cold build of everything (server, wasm, tests) fills about 9.5 GB of target/ without
# incremental state (a fresh clone, as CI) and up to 13 GB with it: say so at once, not with a
# compiler's "No space left on device".
free_gb=$(( $(df -Pk . | awk 'NR==2 {print $4}') / 1048576 ))
if [ "$free_gb" -lt 15 ]; then
  printf 'warning: %s GB free on this disk; a cold build needs up to 13 GB (cargo clean frees target/)\n' "$free_gb" >&2
fi

step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

# The flags and variables cargo-leptos uses for its dev builds, so that `cargo test` and
# `cargo leptos build` share one set of compiled dependencies instead of building two.
export LEPTOS_OUTPUT_NAME=oidc-session
DEV_RUSTFLAGS="--cfg erase_components"

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy: server build (ssr)"
RUSTFLAGS="$DEV_RUSTFLAGS" cargo clippy -p idp -p app -p server --all-targets -- -D warnings

step "clippy: wasm build (hydrate)"
RUSTFLAGS="$DEV_RUSTFLAGS" cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

step "cargo test"
RUSTFLAGS="$DEV_RUSTFLAGS" cargo test -p idp -p app
# The server's integration tests each start an app in this process, and starting one generates
# its route list, which sets a process-global flag in leptos_server that makes any Resource first
# polled meanwhile, in another test's page, wait forever (leptos-rs/leptos#4773; about 3 runs in
# 20 of tests/callback.rs stalled). A server process generates its route list once, before it
# serves, so only tests see this. One test at a time: it costs seconds.
RUSTFLAGS="$DEV_RUSTFLAGS" cargo test -p server -- --test-threads=1

step "cargo leptos build"
cargo leptos build
# The stand-alone provider of the cross-site journey (already built by the tests above, in
# general; this makes sure).
RUSTFLAGS="$DEV_RUSTFLAGS" cargo build -p idp --bin idp

step "Playwright"
scripts/e2e.sh
