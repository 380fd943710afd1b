#!/usr/bin/env bash
# The page's end-to-end test: builds the wasm and the server, then drives
# Debian's headless Chromium (never a downloaded browser) with node's test runner.
# Installs Chromium (as root, with apt) and fetches MNIST (octconv fetch) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
web/build.sh
cargo build --release --bin octconv

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "test: installing Debian's chromium"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "test: /usr/bin/chromium is missing; install Debian's chromium (sudo apt-get install chromium) and run again" >&2
        exit 1
    fi
fi
# The digits it draws are real MNIST test images: the folder the test looks in first, else data/mnist, fetched.
if [ -z "${OCTCONV_MNIST:-}" ] && [ ! -f ../shared/data/mnist/t10k-images-idx3-ubyte.gz ]; then
    target/release/octconv fetch --data data/mnist
fi

(cd web && npm install --no-audit --no-fund --silent)
cd web && node --test e2e.test.mjs
