//! The wgpu device: adapter choice (`adapter`), compiled kernels
//! (`pipelines`), memory and read-back (`buffers`), and running one op.

mod adapter;
mod buffers;
mod diagnose;
mod pipelines;
mod tensor;
mod timer;

#[cfg(not(target_arch = "wasm32"))]
pub use adapter::{adapter_summaries, tune_cache};
pub use adapter::{AdapterChoice, AdapterSummary};
#[cfg(not(target_arch = "wasm32"))]
pub use diagnose::{diagnose, diagnose_with};
pub use diagnose::{locate, Diagnostic};
pub use pipelines::Pipeline;
pub use tensor::GpuTensor;
pub use timer::{Clock, PassTimer};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ops::{Launch, Op, ShapeError, Tiling};

/// What can go wrong on the GPU side, each with the sentence a user sees.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found{0}; install a Vulkan, Metal, DX12 or GL driver (mesa-vulkan-drivers gives a software one) or use the CPU device")]
    NoAdapter(String),
    #[error("the adapter {adapter} refused to create a device: {message}; choose another with --adapter, or use --device cpu")]
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
    #[error("{context}: the device reported {message} (octconv's fault, not yours: `octconv check` shows whether this adapter runs every kernel)")]
    Validation { context: String, message: String },
    #[error("reading a result back from the GPU failed: {0}; run again, or use --device cpu")]
    Readback(String),
    #[error("the device did not finish within {0:?}: a kernel that never returns? (the device may need a restart)")]
    Timeout(std::time::Duration),
}

/// A wgpu device with its queue and a cache of compiled kernels.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The variant of the heavy kernels used on this adapter, and why.
    pub tiling: Tiling,
    pub tiling_reason: String,
    /// Shader modules by file name, pipelines by entry point.
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<&'static str, Arc<Pipeline>>>,
    /// How long a read-back waits for the device before giving up (None: as long as it takes).
    pub wait_limit: Option<std::time::Duration>,
    /// Shader texts used instead of the built-in ones (the shader lab's edits), by file name.
    sources: Mutex<HashMap<&'static str, String>>,
    /// Whether the shipped kernels are compiled without the run-time checks
    /// they do not need (`shipped_checks`). The shader lab turns it off on
    /// both its devices: an edited kernel keeps every check, and the shipped
    /// one it is timed against must run under the same rules.
    pub trust_shipped: bool,
}

impl Gpu {
    /// Opens a device on the chosen adapter with that adapter's full limits.
    pub async fn new(choice: &AdapterChoice) -> Result<Gpu, GpuError> {
        let adapter = adapter::pick_adapter(choice).await?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        // Timestamp queries where the adapter has them: kernel times measured on the device.
        let required_features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let desc = wgpu::DeviceDescriptor {
            label: Some("octconv"),
            required_limits: limits.clone(),
            required_features,
            ..Default::default()
        };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| GpuError::Device { adapter: info.name.clone(), message: e.to_string() })?;
        let (tiling, tiling_reason) = adapter::tiling_for(&info)?;
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(dir) = std::env::var("OCTCONV_SHADERS") {
            // A folder that is not there would silently mean the built-in kernels.
            if !std::path::Path::new(&dir).is_dir() {
                return Err(GpuError::BadSetting {
                    name: "OCTCONV_SHADERS",
                    value: dir,
                    expected: "a folder of .wgsl files (octconv lab --init DIR makes one)",
                });
            }
        }
        Ok(Gpu {
            device,
            queue,
            tiling,
            tiling_reason,
            info,
            limits,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            sources: Mutex::new(HashMap::new()),
            wait_limit: None,
            trust_shipped: true,
        })
    }

    /// Whether kernel times come from GPU timestamps (else from the wall clock).
    pub fn has_timestamps(&self) -> bool {
        self.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// "name (backend, device type)" of the adapter in use.
    pub fn adapter_name(&self) -> String {
        Gpu::describe(&self.info)
    }

    /// "name (backend, device type)" of an adapter.
    pub fn describe(info: &wgpu::AdapterInfo) -> String {
        // Browsers may hide the adapter's name; the driver string or the type is what is left.
        let name = [&info.name, &info.driver].into_iter().find(|n| !n.is_empty());
        let name = name.map_or_else(|| "unnamed adapter".to_string(), |n| n.to_string());
        format!("{name} ({:?}, {:?})", info.backend, info.device_type)
    }

    /// Evaluates one op on GPU tensors and returns the result as a new GPU tensor.
    pub async fn run(&self, op: &Op, inputs: &[&GpuTensor]) -> Result<GpuTensor, GpuError> {
        self.run_with(op, inputs, self.tiling, false).await
    }

    /// `run` with the heavy kernels in the given variant (to check or time each).
    /// With `relu_after`, the op's kernel also applies the ReLU that follows it (`Launch::fuse_relu`).
    pub async fn run_with(
        &self,
        op: &Op,
        inputs: &[&GpuTensor],
        tiling: Tiling,
        relu_after: bool,
    ) -> Result<GpuTensor, GpuError> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
        let out_shape = op.output_shape(&shapes)?;
        let mut all_shapes = shapes.clone();
        all_shapes.push(&out_shape);
        self.check_fits(op.name(), &all_shapes)?;
        let output = self.storage_buffer(out_shape.iter().product(), op.name());
        match op.launch(&shapes, &out_shape, tiling) {
            Some(mut launch) => {
                if relu_after && !launch.fuse_relu() {
                    let message = "its kernel cannot apply a following ReLU".to_string();
                    return Err(GpuError::Validation { context: op.name().to_string(), message });
                }
                let inputs: Vec<&wgpu::Buffer> = inputs.iter().map(|t| &t.buffer).collect();
                self.submit_one(&launch, &launch.buffers(&inputs, &output), op.name()).await?;
            }
            None => {
                // Reshape: copy the values into the new tensor.
                let mut encoder = self.device.create_command_encoder(&Default::default());
                encoder.copy_buffer_to_buffer(&inputs[0].buffer, 0, &output, 0, (inputs[0].len() * 4) as u64);
                self.queue.submit([encoder.finish()]);
            }
        }
        Ok(GpuTensor { buffer: output, shape: out_shape })
    }

    /// Records and submits a single dispatch, reporting validation errors as a `GpuError`.
    pub async fn submit_one(&self, launch: &Launch, buffers: &[&wgpu::Buffer], context: &str) -> Result<(), GpuError> {
        let pipeline = self.pipeline(launch.kernel).await?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group = self.bind(&pipeline, launch, buffers);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            Gpu::dispatch(&mut pass, &pipeline, &bind_group, launch);
        }
        self.queue.submit([encoder.finish()]);
        match scope.pop().await {
            Some(error) => Err(GpuError::Validation { context: context.to_string(), message: error.to_string() }),
            None => Ok(()),
        }
    }
}
