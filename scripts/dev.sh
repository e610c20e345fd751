#!/usr/bin/env bash
# Command one: sets up what is missing, then serves the app on http://localhost:3000 with the
# embedded OpenID Provider on http://localhost:4000, rebuilding on every change.
# Set OIDC_ISSUER, OIDC_CLIENT_ID (and OIDC_CLIENT_SECRET) to use another provider instead.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
exec cargo leptos watch "$@"
