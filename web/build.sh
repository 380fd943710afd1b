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

# bindgen_pair PLAIN-TARGET-DIR RELAXED-TARGET-DIR OUT-DIR: wasm-bindgen's glue and the SIMD128
# module into OUT-DIR, the relaxed-SIMD module beside it (octconv_relaxed_bg.wasm), which the same
# glue must load: web/wasm.js picks one of the two in the browser.
bindgen_pair() {
    local plain=$1 relaxed=$2 out=$3
    wasm-bindgen --target web --no-typescript --out-dir "$out" "$plain/wasm32-unknown-unknown/release/octconv.wasm"
    wasm-bindgen --target web --no-typescript --out-dir "$relaxed/pkg" "$relaxed/wasm32-unknown-unknown/release/octconv.wasm"
    if ! cmp -s "$relaxed/pkg/octconv.js" "$out/octconv.js"; then
        echo "build: the JS glue of $plain and $relaxed differs, so one octconv.js cannot load both; is RUSTFLAGS set in the environment?" >&2
        exit 1
    fi
    cp "$relaxed/pkg/octconv_bg.wasm" "$out/octconv_relaxed_bg.wasm"
    echo "build: $out/octconv_bg.wasm is $(stat -c %s "$out/octconv_bg.wasm") bytes (octconv_relaxed_bg.wasm $(stat -c %s "$out/octconv_relaxed_bg.wasm"))"
}

# No debug info in the page's wasm: it only makes the download bigger.
CARGO_PROFILE_RELEASE_DEBUG=0 cargo build --lib --release --target wasm32-unknown-unknown
# The same library with relaxed SIMD (fused multiply-add in the CPU path's matrix products), in its
# own target folder so that neither build undoes the other's cache.
CARGO_PROFILE_RELEASE_DEBUG=0 RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
    cargo build --lib --release --target wasm32-unknown-unknown --target-dir target/wasm-relaxed
bindgen_pair target target/wasm-relaxed web/pkg

# The threaded builds for cross-origin isolated pages (web/engine.js): atomics and a shared memory,
# rayon's threads on Web Workers; SIMD128 and relaxed SIMD again, one glue. The standard library is
# rebuilt with atomics (-Z build-std), from nightly's rust-src where rustup has it, else from
# Debian's rustc-web (web/rust-web.sh).
threads_link=""
for arg in --shared-memory --max-memory=2147483648 --import-memory \
    --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base; do
    threads_link+=" -C link-arg=$arg"
done
# build_threads SIMD-FEATURES TARGET-DIR [cargo's toolchain argument]
build_threads() {
    local features=$1 dir=$2
    shift 2
    CARGO_PROFILE_RELEASE_DEBUG=0 RUSTC_BOOTSTRAP=1 \
        RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,$features$threads_link" \
        cargo "$@" build --lib --release --target wasm32-unknown-unknown --target-dir "$dir" -Z build-std=panic_abort,std
}
threaded_builds() {
    build_threads +simd128 target/wasm-threads "$@"
    build_threads +simd128,+relaxed-simd target/wasm-threads-relaxed "$@"
    bindgen_pair target/wasm-threads target/wasm-threads-relaxed web/pkg-threads
}
rm -rf web/pkg-threads
if rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
    threaded_builds +nightly
elif rust_web=$(web/rust-web.sh); then
    LD_LIBRARY_PATH="$rust_web/usr/lib/x86_64-linux-gnu" RUSTC="$rust_web/usr/bin/rustc" \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$rust_web/wasm-ld" threaded_builds
else
    echo "build: no threaded build (it needs rustup's nightly rust-src, or Debian's rustc-web); pages get the single-threaded one"
fi
# The shader lab's editor (CodeMirror 6 from npm), served from web/node_modules; the lab falls back to a textarea without it.
if [ ! -f web/node_modules/codemirror/dist/index.js ]; then
    if command -v npm >/dev/null; then
        (cd web && npm install --no-audit --no-fund --silent --omit=dev)
    else
        echo "build: npm is missing, so the shader lab will use a plain textarea (install Node.js and run web/build.sh again for its editor)"
    fi
fi
