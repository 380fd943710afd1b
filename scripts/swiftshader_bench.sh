#!/usr/bin/env bash
# The page's software GPU, measured natively: `octconv bench --device gpu`
# on Chromium's own SwiftShader Vulkan driver, with every kernel's time in
# a table (the page itself can only time the whole step). The kernels are
# read from a copy of shaders/ so they keep naga's run-time checks, as the
# browser keeps its own; shipped kernels would otherwise run without them.
#
#   scripts/swiftshader_bench.sh [REPEATS]     # default 1; runs/swiftshader.json
#
# Needs Debian's chromium (its libvk_swiftshader.so and ICD file).
set -euo pipefail
cd "$(dirname "$0")/.."

icd=/usr/lib/chromium/vk_swiftshader_icd.json
if [ ! -f "$icd" ]; then
    echo "swiftshader_bench: $icd is missing; install Debian's chromium (apt-get install chromium) and run again" >&2
    exit 1
fi
cargo build --release --quiet
shaders=$(mktemp -d)
trap 'rm -rf "$shaders"' EXIT
for f in shaders/*.wgsl; do
    # One trailing comment makes each file differ from the built-in text: an edited kernel keeps every check.
    { cat "$f"; echo "// copied by scripts/swiftshader_bench.sh"; } > "$shaders/$(basename "$f")"
done
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/octconv-xdg}"
mkdir -p "$XDG_RUNTIME_DIR" runs
VK_ICD_FILENAMES="$icd" OCTCONV_SHADERS="$shaders" \
    target/release/octconv bench --device gpu --synthetic --repeats "${1:-1}" --json runs/swiftshader.json
