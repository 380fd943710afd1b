#!/usr/bin/env bash
# Unpacks Debian's rustc-web toolchain (rustc, the standard library's source,
# LLVM's wasm-ld) into target/rust-web and prints that folder. The page's
# threaded build rebuilds the standard library with atomics (-Z build-std),
# which needs the library's source: rustup's rust-src component where it can
# be downloaded, else this (Debian's packages, unpacked with dpkg -x, so no
# root is needed and nothing is installed system-wide).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/target/rust-web
if [ -x "$root/usr/bin/rustc" ] && [ -x "$root/wasm-ld" ]; then
    echo "$root"
    exit 0
fi
command -v apt-get >/dev/null || { echo "rust-web: apt-get is missing (not a Debian system)" >&2; exit 1; }
if ! apt-cache show rustc-web >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "rust-web: apt knows no rustc-web package; run apt-get update as root" >&2; exit 1; }
    apt-get update -qq
fi
downloads=$(mktemp -d)
trap 'rm -rf "$downloads"' EXIT
packages() { (cd "$downloads" && apt-get download "$@" >/dev/null 2>&1) || { echo "rust-web: apt-get download $* failed" >&2; exit 1; }; }
std=$(apt-cache depends libstd-rust-web-dev | awk '/Depends: libstd-rust-web-[0-9]/ { print $2; exit }')
packages rustc-web rust-web-src libstd-rust-web-dev "$std"
rm -rf "$root" && mkdir -p "$root"
for deb in "$downloads"/*.deb; do dpkg -x "$deb" "$root"; done
# The LLVM the compiler was linked against, and its wasm-ld (from lld-<major>).
llvm=$(readelf -d "$root"/usr/lib/x86_64-linux-gnu/librustc_driver-*.so | sed -n 's/.*\[libLLVM\.so\.\([0-9]*\).*/\1/p')
rm -f "$downloads"/*.deb
packages "libllvm$llvm" "lld-$llvm"
for deb in "$downloads"/*.deb; do dpkg -x "$deb" "$root"; done
ln -sf "usr/lib/llvm-$llvm/bin/wasm-ld" "$root/wasm-ld"
echo "$root"
