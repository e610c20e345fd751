#!/usr/bin/env bash
# Runs the Playwright suite against the app built by `cargo leptos build`: starts the server
# (which starts the embedded provider, configured by end2end/provider.toml: ten-second access
# tokens) on 127.0.0.1, runs the tests, and stops it by its PID.
# SERVER_BIN=target/release/server runs them against a `cargo leptos build --release` instead.
set -euo pipefail
cd "$(dirname "$0")/.."

for port in 3000 4000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; stop what listens there first" >&2
    exit 1
  fi
done

LOG="target/e2e-server.log"
LEPTOS_OUTPUT_NAME=oidc-session LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
  LEPTOS_SITE_ADDR=127.0.0.1:3000 RUST_LOG="${RUST_LOG:-info,tower_http=warn}" \
  EMBEDDED_IDP_CONFIG=end2end/provider.toml RENEW_BEFORE_EXPIRY_SECS=3 RENEW_JITTER_SECS=1 \
  "${SERVER_BIN:-target/debug/server}" >"$LOG" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT

status=0
(cd end2end && npx --no-install playwright test "$@") || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log ($LOG) ---"
  tail -n 80 "$LOG"
fi
exit "$status"
