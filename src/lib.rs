//! octconv: Octave-convolution networks trained and run on any GPU through
//! WebGPU (wgpu), natively and in the browser.
//!
//! Every tensor op is a WGSL compute shader (`shaders/`) with a plain-Rust
//! twin that the tests hold it to; both live in the op's family module in
//! [`ops`]. Modules depend only on those listed before them:
//!
//! 1. [`tensor`], [`files`], [`optim`]: values, atomic writes, Adam's rule.
//! 2. [`data`]: IDX files, datasets, MNIST-style preprocessing.
//! 3. [`ops`]: every op (shape rule, FLOPs, gradient rule, CPU twins, kernel launch, check cases).
//! 4. [`gpu`]: the wgpu device that compiles and runs the ops' kernels.
//! 5. [`graph`], [`nn`]: models as graphs, autodiff, the octave layer and the seed net.
//! 6. [`exec`]: compiled models on a device (GPU or CPU), one submission per step.
//! 7. [`checkpoint`], [`check`], [`train`]: files of weights, kernel checks, training loops;
//!    `lab`: an edited kernel file compiled, checked and timed;
//!    `http` (native): one request of `octconv serve` answered.
//! 8. `web` (the browser API) and the `octconv` command line.

pub mod files;
pub mod optim;
pub mod tensor;

pub mod data;

pub mod ops;

pub mod gpu;

pub mod graph;
pub mod nn;

pub mod exec;

pub mod check;
pub mod checkpoint;
pub mod train;

#[cfg(not(target_arch = "wasm32"))]
pub mod http;
pub mod lab;

pub use ops::Op;
pub use tensor::Tensor;

#[cfg(target_arch = "wasm32")]
pub mod web;
