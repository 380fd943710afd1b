//! octconv: Octave-convolution networks trained and run on any GPU through
//! WebGPU (wgpu), natively and in the browser.
//!
//! Every tensor op is a WGSL compute shader (`shaders/`, driven by [`gpu`])
//! with a plain-Rust twin ([`cpu`]) that tests compare it against.

pub mod check;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod exec;
pub mod gpu;
pub mod graph;
pub mod nn;
pub mod ops;
pub mod tensor;
pub mod train;

pub use ops::Op;
pub use tensor::Tensor;

#[cfg(target_arch = "wasm32")]
pub mod web;
