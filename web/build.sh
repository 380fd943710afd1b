#!/usr/bin/env bash
# Builds the page's WebAssembly: the octconv library for wasm32 (WebGPU
# backend), then wasm-bindgen's JS glue into web/pkg, and the lab's editor from npm. No bundler.
# Installs the wasm32 target and the wasm-bindgen CLI matching Cargo.lock when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
    echo "build: installing wasm-bindgen-cli $version"
    cargo install --locked wasm-bindgen-cli --version "$version" || cargo install wasm-bindgen-cli --version "$version"
fi

# No debug info in the page's wasm: it only makes the download bigger.
CARGO_PROFILE_RELEASE_DEBUG=0 cargo build --lib --release --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir web/pkg target/wasm32-unknown-unknown/release/octconv.wasm
# The shader lab's editor (CodeMirror 6 from npm), served from web/node_modules; the lab falls back to a textarea without it.
if [ ! -f web/node_modules/codemirror/dist/index.js ]; then
    if command -v npm >/dev/null; then
        (cd web && npm install --no-audit --no-fund --silent --omit=dev)
    else
        echo "build: npm is missing, so the shader lab will use a plain textarea (install Node.js and run web/build.sh again for its editor)"
    fi
fi
echo "build: web/pkg/octconv_bg.wasm is $(stat -c %s web/pkg/octconv_bg.wasm) bytes"
