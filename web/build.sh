#!/usr/bin/env bash
# Builds the page's WebAssembly: the octconv library for wasm32 (WebGPU
# backend), then wasm-bindgen's JS glue into web/pkg. No bundler.
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
echo "build: web/pkg/octconv_bg.wasm is $(stat -c %s web/pkg/octconv_bg.wasm) bytes"
