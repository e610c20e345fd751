#!/usr/bin/env bash
# Installs what building and testing need, and skips what is already there:
# the wasm target, cargo-leptos, wasm-bindgen-cli (the version in Cargo.lock), Debian's Chromium
# and redis-server, and the npm packages of end2end/ (Playwright, and binaryen for wasm-opt).
# Source it (`. scripts/setup.sh`) to also get end2end/node_modules/.bin on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")"

say() { printf '\033[1;34m[setup %s]\033[0m %s\n' "$(date +%T)" "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1
  fi
}

# What the machine brings: Node.js 20 or later with npm (Playwright 1.65 needs it; Debian 12's
# own nodejs is 18), and python3, make and perl (free ports; cargo-leptos builds OpenSSL), which
# Debian provides if they are missing.
MISSING=()
for tool in python3 make perl; do command -v "$tool" >/dev/null || MISSING+=("$tool"); done
if [ ${#MISSING[@]} -gt 0 ]; then
  say "installing Debian's ${MISSING[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}"
fi
NODE_MAJOR="$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')"
if [ -z "$NODE_MAJOR" ] || [ "$NODE_MAJOR" -lt 20 ] || ! command -v npm >/dev/null; then
  echo "Node.js 20 or later, with npm, is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The two cargo installs run in the background, beside each other and the apt and npm steps
# below, and are waited for at the end. cargo-leptos's own release profile (fat LTO, one codegen
# unit) spends minutes on one core for a build tool whose speed does not matter here: Cargo's
# profile settings in the environment override it (and the optimisation level of both tools),
# for these installs only.
TOOL_PROFILE=(CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1)
INSTALLS=()
if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (in the background, about 12 minutes on 2 cores)"
  env "${TOOL_PROFILE[@]}" cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --quiet &
  INSTALLS+=("$!:cargo-leptos")
fi

# cargo-leptos would download wasm-bindgen from GitHub; one on PATH with the right version wins.
# (Not --locked: its lock file names a webpki-roots that the registry here does not serve.)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (in the background)"
  env "${TOOL_PROFILE[@]}" cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --quiet &
  INSTALLS+=("$!:wasm-bindgen-cli")
fi

# A background job ignores Ctrl-C: the installs stop with this script, whatever stops it.
if [ ${#INSTALLS[@]} -gt 0 ]; then
  trap 'for install in "${INSTALLS[@]}"; do kill "${install%%:*}" 2>/dev/null || true; done' EXIT INT TERM
fi

if [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

# Redis (Debian's) for the tests of the shared session store; the tests start their own.
if ! command -v redis-server >/dev/null; then
  say "installing Debian's redis-server"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  # The package starts a system-wide Redis on :6379; the tests need none, so stop it.
  as_root systemctl disable --now redis-server >/dev/null 2>&1 || as_root service redis-server stop >/dev/null 2>&1 || true
fi

# Playwright must never download a browser: it drives /usr/bin/chromium.
if [ ! -d "$ROOT/end2end/node_modules/@playwright/test" ] || [ ! -x "$ROOT/end2end/node_modules/.bin/wasm-opt" ] \
  || [ "$ROOT/end2end/package-lock.json" -nt "$ROOT/end2end/node_modules/.package-lock.json" ]; then
  say "installing end2end npm packages"
  (cd "$ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# wasm-opt (release builds) from the npm package binaryen; Debian's binaryen 108 emits broken wasm.
export PATH="$ROOT/end2end/node_modules/.bin:$PATH"

for install in "${INSTALLS[@]}"; do
  if ! wait "${install%%:*}"; then
    echo "installing ${install#*:} failed" >&2
    exit 1
  fi
  say "${install#*:} installed"
done
trap - EXIT INT TERM

