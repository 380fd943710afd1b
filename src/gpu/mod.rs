//! The wgpu device: adapter choice, the pipeline cache, buffers, dispatch and
//! asynchronous read-back.

mod device;
pub mod kernels;
mod tensor;

#[cfg(not(target_arch = "wasm32"))]
pub use device::adapter_summaries;
pub use device::{AdapterChoice, AdapterSummary, Gpu, Pipeline};
pub use kernels::{Kernel, Launch, Shader};
pub use tensor::GpuTensor;

use crate::ops::ShapeError;

/// What can go wrong on the GPU side, each with the sentence a user sees.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found{0}; install a Vulkan, Metal, DX12 or GL driver (mesa-vulkan-drivers gives a software one) or use the CPU device")]
    NoAdapter(String),
    #[error("the adapter {adapter} refused to create a device: {message}")]
    Device { adapter: String, message: String },
    #[error("shader {file}, entry point {entry}, does not compile: {message}")]
    Shader { file: String, entry: String, message: String },
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("{op} on shapes {shapes:?} needs a buffer of {bytes} bytes, over this device's limit of {limit} bytes per storage binding; use a smaller batch")]
    TooLarge { op: String, shapes: Vec<Vec<usize>>, bytes: u64, limit: u64 },
    #[error("{what} take {bytes} bytes, over this device's limit of {limit} bytes per storage binding; use fewer examples (train --limit N) or the CPU device (--device cpu)")]
    DataTooLarge { what: String, bytes: u64, limit: u64 },
    #[error("{name} is \"{value}\"; set it to {expected}, or unset it")]
    BadSetting { name: &'static str, value: String, expected: &'static str },
    #[error("{context}: the device reported {message}")]
    Validation { context: String, message: String },
    #[error("reading a result back from the GPU failed: {0}")]
    Readback(String),
}
