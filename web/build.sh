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
# The same library with relaxed SIMD (fused multiply-add in the CPU path's matrix products), in its
# own target folder so that neither build undoes the other's cache; web/wasm.js picks one in the browser.
relaxed=target/wasm-relaxed
CARGO_PROFILE_RELEASE_DEBUG=0 RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
    cargo build --lib --release --target wasm32-unknown-unknown --target-dir "$relaxed"
wasm-bindgen --target web --no-typescript --out-dir "$relaxed/pkg" "$relaxed/wasm32-unknown-unknown/release/octconv.wasm"
if ! cmp -s "$relaxed/pkg/octconv.js" web/pkg/octconv.js; then
    echo "build: the two builds' JS glue differs, so one octconv.js cannot load both; is RUSTFLAGS set in the environment?" >&2
    exit 1
fi
cp "$relaxed/pkg/octconv_bg.wasm" web/pkg/octconv_relaxed_bg.wasm
# The shader lab's editor (CodeMirror 6 from npm), served from web/node_modules; the lab falls back to a textarea without it.
if [ ! -f web/node_modules/codemirror/dist/index.js ]; then
    if command -v npm >/dev/null; then
        (cd web && npm install --no-audit --no-fund --silent --omit=dev)
    else
        echo "build: npm is missing, so the shader lab will use a plain textarea (install Node.js and run web/build.sh again for its editor)"
    fi
fi
echo "build: web/pkg/octconv_bg.wasm is $(stat -c %s web/pkg/octconv_bg.wasm) bytes (octconv_relaxed_bg.wasm $(stat -c %s web/pkg/octconv_relaxed_bg.wasm))"
