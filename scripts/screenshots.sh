#!/usr/bin/env bash
# Takes the README's screenshots again, in Debian's Chromium: builds the app, starts the apps of
# the Playwright run, and runs the tour of tests/faults.spec.ts with SCREENSHOTS_DIR pointing at
# docs/screenshots/ (home, sign-in at the provider, the form with its session panel, the
# dashboard mid-renewal, the signed-out notice).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
# The flags of scripts/test.sh, so that the two share one build.
export LEPTOS_OUTPUT_NAME=oidc-session RUSTFLAGS="--cfg erase_components"
cargo leptos build
cargo build -p idp --bin idp
SCREENSHOTS_DIR="$PWD/docs/screenshots" scripts/e2e.sh --project faults -g "a tour"
ls -l docs/screenshots
