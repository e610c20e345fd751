#!/usr/bin/env bash
# Measures README command one from cold: a throwaway clone, an empty CARGO_HOME (so no
# cargo-leptos, no wasm-bindgen-cli, no crate cache) and an empty target dir, with PATH hiding
# what this machine already has. Only Chromium stays installed (command one does not need it).
# Prints the time from start until the app answers on http://127.0.0.1:3000.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/cold-setup.XXXXXX)"
git clone -q "$ROOT" "$WORK/repo"
mkdir -p "$WORK/shim"
for tool in cargo rustc rustup rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  ln -s "$(command -v "$tool")" "$WORK/shim/$tool"
done
export CARGO_HOME="$WORK/cargo"
export PATH="$WORK/cargo/bin:$WORK/shim:/usr/local/bin:/usr/bin:/bin"

cd "$WORK/repo"
if (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null; then
  echo "port 3000 is already in use: the measure would time another app" >&2
  exit 1
fi
start=$(date +%s)
scripts/dev.sh >"$WORK/dev.log" 2>&1 &
DEV=$!
# However this script ends: the app (cargo-leptos, which dev.sh and cargo exec into, stops its
# server and itself on SIGINT) and the installs stop, and the crate cache and target dir (several
# GB) go; the log stays.
finish() {
  kill -INT "$DEV" 2>/dev/null || true
  wait || true
  rm -rf "$WORK/cargo" "$WORK/repo/target"
}
trap finish EXIT
until curl -sf -o /dev/null http://127.0.0.1:3000/auth/session; do
  sleep 5
  if ! jobs %1 >/dev/null 2>&1; then tail -n 40 "$WORK/dev.log"; exit 1; fi
done
elapsed=$(($(date +%s) - start))
grep -E '\[setup' "$WORK/dev.log" || true
printf 'command one from cold: %dm%02ds until the app answered (log: %s)\n' $((elapsed / 60)) $((elapsed % 60)) "$WORK/dev.log"
