// Which build of the engine's WebAssembly to load. Both come from the same
// source (web/build.sh); the relaxed-SIMD one lets the CPU path's matrix
// products use fused multiply-adds (f32x4.relaxed_madd), about 15 % faster a
// training step in Chromium here. A browser without relaxed SIMD rejects that
// module outright, so it gets the plain SIMD128 build instead.

// The smallest module that uses relaxed SIMD: () -> v128 { f32x4.relaxed_madd(0, 0, 0) }.
const V128_ZERO = [0xfd, 0x0c, ...new Array(16).fill(0)];
const RELAXED_MADD_MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // functions: one of type 0
  0x0a, 0x3d, 0x01, 0x3b, 0x00, // code: one body of 59 bytes, no locals
  ...V128_ZERO, ...V128_ZERO, ...V128_ZERO,
  0xfd, 0x85, 0x02, // f32x4.relaxed_madd
  0x0b, // end
]);

export const relaxedSimd = WebAssembly.validate(RELAXED_MADD_MODULE);
const build = relaxedSimd ? 'octconv_relaxed_bg.wasm' : 'octconv_bg.wasm';
export const wasmUrl = new URL(`./pkg/${build}`, import.meta.url);
// The same choice among the threaded builds (web/engine-worker.js loads it).
export const threadedWasmUrl = new URL(`./pkg-threads/${build}`, import.meta.url);
