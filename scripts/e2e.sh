#!/usr/bin/env bash
# Runs the Playwright suite against the app built by `cargo leptos build`. It starts, on
# 127.0.0.1, and stops by PID:
# - the app on :3000 with its embedded provider on :4000 (end2end/provider.toml: ten-second
#   access tokens), sessions in SQLite under target/e2e/;
# - a second app on :3100 with its own embedded provider on :4100, sessions in a Redis on a free
#   port (scripts/e2e-redis.sh), for the journey that takes Redis away and brings it back;
# - a third app on :3200 with its own embedded provider on :4200, renewing through the hidden
#   iframe only (RENEW_STRATEGY=iframe, no refresh token), for the silent renew journeys;
# - a fourth app on :3300 whose provider runs on its own at 127.0.0.1:4300, another site than
#   the app's localhost (end2end/provider-cross-site.toml), for the cross-site journey;
# - a fifth app on :3500 whose provider is panva's oidc-provider on :4500 (Node.js,
#   end2end/interop/provider.mjs), an independent implementation, for the interop journeys;
# - a sixth app on :3600 with its own embedded provider on :4600 (end2end/provider-faults.toml:
#   two-minute access tokens), for the fault panel's journeys.
# SERVER_BIN=target/release/server runs them against a `cargo leptos build --release` instead.
set -euo pipefail
cd "$(dirname "$0")/.."

for port in 3000 4000 3100 4100 3200 4200 3300 4300 3500 4500 3600 4600; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; stop what listens there first" >&2
    exit 1
  fi
done

SERVER="$(realpath "${SERVER_BIN:-target/debug/server}")"
# The standalone provider beside the server, or the debug one (a release build makes no idp).
IDP="$(dirname "$SERVER")/idp"
[ -x "$IDP" ] || IDP="$PWD/target/debug/idp"
for binary in "$SERVER" "$IDP"; do
  [ -x "$binary" ] || { echo "$binary is missing: run ./scripts/test.sh (or cargo leptos build; cargo build -p idp)" >&2; exit 1; }
done
# Waits until something listens on 127.0.0.1:$1, or fails after 120 s, as Playwright's global
# setup would (oidc-provider took more than 10 s to start from a fresh clone).
listening() {
  for _ in $(seq 1 2400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on 127.0.0.1:$1 after 120 s (see target/e2e-*.log)" >&2
  return 1
}
REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
rm -rf target/e2e target/e2e-redis target/e2e-iframe target/e2e-cross-site target/e2e-interop target/e2e-faults
mkdir -p target/e2e-redis/work target/e2e-iframe target/e2e-cross-site target/e2e-interop target/e2e-faults

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/e2e-redis.sh stop
}
trap cleanup EXIT

# Settings both apps share: the site, the suite's provider and renewal timing.
export LEPTOS_OUTPUT_NAME=oidc-session LEPTOS_SITE_ROOT="$PWD/target/site" LEPTOS_SITE_PKG_DIR=pkg \
  RUST_LOG="${RUST_LOG:-info,tower_http=warn}" EMBEDDED_IDP_CONFIG="$PWD/end2end/provider.toml" \
  RENEW_BEFORE_EXPIRY_SECS=3 RENEW_JITTER_SECS=1 CHECK_SESSION_INTERVAL_SECS=2

LEPTOS_SITE_ADDR=127.0.0.1:3000 SESSION_STORE=target/e2e/sessions.sqlite3 RENEW_STRATEGY=refresh_token \
  "$SERVER" >target/e2e-server.log 2>&1 &
PIDS+=($!)

(cd target/e2e-iframe && LEPTOS_SITE_ADDR=127.0.0.1:3200 APP_URL=http://localhost:3200 \
  EMBEDDED_IDP_ADDR=127.0.0.1:4200 SESSION_STORE=sessions.sqlite3 RENEW_STRATEGY=iframe \
  SILENT_RENEW_TIMEOUT_SECS=3 exec "$SERVER" >"$OLDPWD/target/e2e-server-iframe.log" 2>&1) &
PIDS+=($!)

(cd target/e2e-faults && LEPTOS_SITE_ADDR=127.0.0.1:3600 APP_URL=http://localhost:3600 \
  EMBEDDED_IDP_ADDR=127.0.0.1:4600 EMBEDDED_IDP_CONFIG="$OLDPWD/end2end/provider-faults.toml" \
  SESSION_STORE=sessions.sqlite3 exec "$SERVER" >"$OLDPWD/target/e2e-server-faults.log" 2>&1) &
PIDS+=($!)

RUST_LOG=info "$IDP" --config end2end/provider-cross-site.toml --addr 127.0.0.1:4300 \
  --state target/e2e-cross-site/provider.sqlite3 >target/e2e-idp-cross-site.log 2>&1 &
PIDS+=($!)
listening 4300
(cd target/e2e-cross-site && LEPTOS_SITE_ADDR=127.0.0.1:3300 APP_URL=http://localhost:3300 \
  OIDC_ISSUER=http://127.0.0.1:4300 OIDC_CLIENT_ID=demo-app OIDC_CLIENT_SECRET=demo-app-secret \
  SESSION_STORE=memory RENEW_STRATEGY=refresh_token exec "$SERVER" >"$OLDPWD/target/e2e-server-cross-site.log" 2>&1) &
PIDS+=($!)

# The independent provider first: the app discovers it at start.
INTEROP_ADDR=127.0.0.1:4500 INTEROP_APP_URL=http://localhost:3500 \
  node end2end/interop/provider.mjs >target/e2e-idp-interop.log 2>&1 &
PIDS+=($!)
listening 4500
(cd target/e2e-interop && LEPTOS_SITE_ADDR=127.0.0.1:3500 APP_URL=http://localhost:3500 \
  OIDC_ISSUER=http://localhost:4500 OIDC_CLIENT_ID=demo-app OIDC_CLIENT_SECRET=demo-app-secret \
  SESSION_STORE=memory RENEW_STRATEGY=refresh_token exec "$SERVER" >"$OLDPWD/target/e2e-server-interop.log" 2>&1) &
PIDS+=($!)

scripts/e2e-redis.sh start "$REDIS_PORT"
# From a directory of its own, so that its files (seal key, provider state) are its own too.
(cd target/e2e-redis/work && LEPTOS_SITE_ADDR=127.0.0.1:3100 APP_URL=http://localhost:3100 \
  EMBEDDED_IDP_ADDR=127.0.0.1:4100 SESSION_STORE="redis://127.0.0.1:$REDIS_PORT/0" \
  exec "$SERVER" >"$OLDPWD/target/e2e-server-redis.log" 2>&1) &
PIDS+=($!)

status=0
(cd end2end && npx --no-install playwright test "$@") 2>&1 | tee target/e2e-playwright.log || status=$?
if [ "$status" -ne 0 ]; then
  for log in target/e2e-server.log target/e2e-server-redis.log target/e2e-server-iframe.log \
    target/e2e-server-cross-site.log target/e2e-idp-cross-site.log target/e2e-server-interop.log \
    target/e2e-idp-interop.log target/e2e-server-faults.log; do
    echo "--- server log ($log) ---"
    tail -n 60 "$log"
  done
  # Last, so that a log cut to its end still names what failed: Playwright's own summary again.
  echo "--- Playwright's summary (target/e2e-playwright.log) ---"
  if grep -q '^  1) ' target/e2e-playwright.log; then
    sed -n '/^  1) /,$p' target/e2e-playwright.log | tail -n 200
  else
    tail -n 40 target/e2e-playwright.log
  fi
fi
exit "$status"
