#!/usr/bin/env bash
# Two app instances sharing their sessions through one Redis, as behind a load balancer without
# sticky sessions: the development provider on http://localhost:4000 (run on its own), a Redis on
# a free port, and the app on http://localhost:3000 and http://localhost:3001. Sign in on one,
# open the other: the same session. Ctrl-C stops everything (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

for port in 3000 3001 4000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; stop what listens there first" >&2
    exit 1
  fi
done

DIR="$PWD/target/two-instances"
mkdir -p "$DIR"
# The flags of scripts/test.sh, so that the two share one build.
export RUSTFLAGS="--cfg erase_components" LEPTOS_OUTPUT_NAME=oidc-session
cargo leptos build
cargo build -p idp --bin idp

REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The built-in provider.toml registers only :3000's callback and home page; this one adds :3001's.
sed -e 's|redirect_uris = \["http://localhost:3000/auth/callback"\]|redirect_uris = ["http://localhost:3000/auth/callback", "http://localhost:3001/auth/callback"]|' \
  -e 's|post_logout_redirect_uris = \["http://localhost:3000/"\]|post_logout_redirect_uris = ["http://localhost:3000/", "http://localhost:3001/"]|' \
  idp/provider.toml >"$DIR/provider.toml"
# One seal key for both instances: either can open what the other sealed.
SEAL_KEY="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
target/debug/idp --config "$DIR/provider.toml" --addr 127.0.0.1:4000 --state "$DIR/provider.sqlite3" &
PIDS+=($!)
# The apps discover the provider at start, and use Redis at once.
for port in 4000 "$REDIS_PORT"; do
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nothing listens on 127.0.0.1:$port" >&2; exit 1; }
done

for port in 3000 3001; do
  LEPTOS_OUTPUT_NAME=oidc-session LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_SITE_ADDR="127.0.0.1:$port" APP_URL="http://localhost:$port" \
    OIDC_ISSUER=http://localhost:4000 OIDC_CLIENT_ID=demo-app OIDC_CLIENT_SECRET=demo-app-secret \
    SESSION_STORE="redis://127.0.0.1:$REDIS_PORT/0" SESSION_SEAL_KEYS="$SEAL_KEY" \
    target/debug/server &
  PIDS+=($!)
done

echo "Sign in on http://localhost:3000, then open http://localhost:3001. Ctrl-C stops all."
wait
