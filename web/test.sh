#!/usr/bin/env bash
# The page's end-to-end test: builds the wasm and the server, then drives
# Debian's headless Chromium (never a downloaded browser) with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
web/build.sh
cargo build --release --bin octconv
(cd web && npm install --no-audit --no-fund --silent)
cd web && node --test e2e.test.mjs
