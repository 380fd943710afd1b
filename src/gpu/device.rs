//! Adapter choice, device creation, the pipeline cache, and the helpers that
//! upload, dispatch and read back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::kernels::{launch_for, Kernel, Launch, Shader, Tiling, COMMON_WGSL};
use super::{GpuError, GpuTensor};
use crate::ops::Op;
use crate::tensor::Tensor;

/// Which adapter to use. Empty fields mean "the best one available".
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Comma list of backends: vulkan, metal, dx12, gl, webgpu.
    pub backends: Option<String>,
    /// A case-insensitive part of the adapter's name, e.g. "llvmpipe".
    pub name: Option<String>,
}

impl AdapterChoice {
    /// Reads `OCTCONV_BACKEND` and `OCTCONV_ADAPTER` from the environment.
    pub fn from_env() -> Self {
        let var = |key| std::env::var(key).ok().filter(|v: &String| !v.is_empty());
        AdapterChoice { backends: var("OCTCONV_BACKEND"), name: var("OCTCONV_ADAPTER") }
    }

    /// The chosen backends; by default the primary ones (Vulkan, Metal, DX12,
    /// browser WebGPU), since GL lacks features and is tried only as a fallback.
    fn backends(&self) -> wgpu::Backends {
        match &self.backends {
            Some(list) => wgpu::Backends::from_comma_list(list),
            None => wgpu::Backends::PRIMARY,
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = &self.backends {
            parts.push(format!("backend {b}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name containing \"{n}\""));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" with {}", parts.join(" and "))
        }
    }
}

/// A compiled compute pipeline and the layout of its single bind group.
#[derive(Debug)]
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// A wgpu device with its queue and a cache of compiled kernels.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The variant of the heavy kernels used on this adapter.
    pub tiling: Tiling,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<&'static str, Arc<Pipeline>>>,
}

/// What `octconv info` prints about one adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
}

fn new_instance(choice: &AdapterChoice) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = choice.backends();
    wgpu::Instance::new(desc)
}

/// Every adapter the chosen backends offer.
#[cfg(not(target_arch = "wasm32"))]
pub async fn adapter_summaries(choice: &AdapterChoice) -> Vec<AdapterSummary> {
    let instance = new_instance(choice);
    instance
        .enumerate_adapters(choice.backends())
        .await
        .into_iter()
        .map(|a| AdapterSummary { info: a.get_info(), limits: a.limits() })
        .collect()
}

async fn pick_adapter(choice: &AdapterChoice) -> Result<wgpu::Adapter, GpuError> {
    let instance = new_instance(choice);
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(name) = &choice.name {
        let wanted = name.to_lowercase();
        let adapters = instance.enumerate_adapters(choice.backends()).await;
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
            .ok_or_else(|| GpuError::NoAdapter(choice.describe()));
    }
    let options =
        wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
    match instance.request_adapter(&options).await {
        Ok(adapter) => Ok(adapter),
        // Nothing on the chosen backends: try GL as a last resort unless the user chose.
        Err(_) if choice.backends.is_none() => {
            let gl = AdapterChoice { backends: Some("gl".into()), name: None };
            let fallback = new_instance(&gl);
            fallback.request_adapter(&options).await.map_err(|_| GpuError::NoAdapter(choice.describe()))
        }
        Err(_) => Err(GpuError::NoAdapter(choice.describe())),
    }
}

impl Gpu {
    /// Opens a device on the chosen adapter with that adapter's full limits.
    pub async fn new(choice: &AdapterChoice) -> Result<Gpu, GpuError> {
        let adapter = pick_adapter(choice).await?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let desc =
            wgpu::DeviceDescriptor { label: Some("octconv"), required_limits: limits.clone(), ..Default::default() };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| GpuError::Device { adapter: info.name.clone(), message: e.to_string() })?;
        Ok(Gpu {
            device,
            queue,
            tiling: Tiling::for_adapter(&info)?,
            info,
            limits,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// "name (backend, device type)" of the adapter in use.
    pub fn adapter_name(&self) -> String {
        // Browsers may hide the adapter's name; the driver string or the type is what is left.
        let name = [&self.info.name, &self.info.driver].into_iter().find(|n| !n.is_empty());
        let name = name.map_or_else(|| "unnamed adapter".to_string(), |n| n.to_string());
        format!("{name} ({:?}, {:?})", self.info.backend, self.info.device_type)
    }

    /// The compiled pipeline of `kernel`, compiling and caching it on first use.
    pub async fn pipeline(&self, kernel: &'static Kernel) -> Result<Arc<Pipeline>, GpuError> {
        if let Some(p) = self.pipelines.lock().unwrap().get(kernel.entry) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.module(kernel.shader);
        let layout = self.bind_group_layout(kernel);
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(error) = scope.pop().await {
            // Forget the broken module so a fixed shader file is picked up next time.
            self.modules.lock().unwrap().remove(&kernel.shader);
            return Err(GpuError::Shader {
                file: kernel.shader.file_name().to_string(),
                entry: kernel.entry.to_string(),
                message: error.to_string(),
            });
        }
        let compiled = Arc::new(Pipeline { pipeline, layout });
        self.pipelines.lock().unwrap().insert(kernel.entry, compiled.clone());
        Ok(compiled)
    }

    fn module(&self, shader: Shader) -> wgpu::ShaderModule {
        let mut modules = self.modules.lock().unwrap();
        modules
            .entry(shader)
            .or_insert_with(|| {
                let common = source_from_folder("common.wgsl").unwrap_or_else(|| COMMON_WGSL.to_string());
                let source = format!("{common}\n{}", shader_source(shader));
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.file_name()),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                })
            })
            .clone()
    }

    fn bind_group_layout(&self, kernel: &Kernel) -> wgpu::BindGroupLayout {
        let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        };
        let mut entries = vec![entry(0, wgpu::BufferBindingType::Uniform)];
        for i in 0..kernel.reads + kernel.writes {
            let read_only = i < kernel.reads;
            entries.push(entry(1 + i, wgpu::BufferBindingType::Storage { read_only }));
        }
        self.device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(kernel.entry), entries: &entries })
    }

    /// A bind group for `launch`: its parameters, then `buffers` in binding order.
    pub fn bind(&self, pipeline: &Pipeline, launch: &Launch, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let params = self.uniform_buffer(&launch.params);
        self.bind_with_uniform(pipeline, &params, buffers)
    }

    /// A uniform buffer holding `words` (padded to 16 bytes), writable later.
    pub fn uniform_buffer(&self, words: &[u32]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        let mut padded = words.to_vec();
        padded.resize(words.len().div_ceil(4).max(1) * 4, 0);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(&padded),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// A bind group of `uniform` at binding 0, then `buffers` in binding order.
    pub fn bind_with_uniform(
        &self,
        pipeline: &Pipeline,
        uniform: &wgpu::Buffer,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let whole: Vec<wgpu::BufferBinding> = buffers.iter().map(|b| b.as_entire_buffer_binding()).collect();
        self.bind_ranges(pipeline, uniform, &whole)
    }

    /// A bind group of `uniform` at binding 0, then buffer ranges in binding order.
    pub fn bind_ranges(
        &self,
        pipeline: &Pipeline,
        uniform: &wgpu::Buffer,
        ranges: &[wgpu::BufferBinding<'_>],
    ) -> wgpu::BindGroup {
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (i, range) in ranges.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: 1 + i as u32,
                resource: wgpu::BindingResource::Buffer(range.clone()),
            });
        }
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.layout,
            entries: &entries,
        })
    }

    /// Records one dispatch of `launch` into `pass`.
    pub fn dispatch(
        pass: &mut wgpu::ComputePass<'_>,
        pipeline: &Pipeline,
        bind_group: &wgpu::BindGroup,
        launch: &Launch,
    ) {
        let [x, y, z] = launch.workgroups();
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// A storage buffer for `len` f32 values (at least one, as wgpu wants).
    pub fn storage_buffer(&self, len: usize, label: &str) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The largest buffer one storage binding can take, in bytes.
    fn binding_limit(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// A storage buffer holding `bytes` packed four to a 32-bit word (the last
    /// one zero-padded), for kernels that unpack them; `what` names it in errors.
    pub fn upload_bytes(&self, bytes: &[u8], what: &str) -> Result<wgpu::Buffer, GpuError> {
        let words = bytes.len().div_ceil(4);
        let limit = self.binding_limit();
        if words as u64 * 4 > limit {
            return Err(GpuError::DataTooLarge { what: what.to_string(), bytes: words as u64 * 4, limit });
        }
        let buffer = self.storage_buffer(words, what);
        let aligned = bytes.len() / 4 * 4;
        if aligned > 0 {
            self.queue.write_buffer(&buffer, 0, &bytes[..aligned]);
        }
        if aligned < bytes.len() {
            let mut tail = [0u8; 4];
            tail[..bytes.len() - aligned].copy_from_slice(&bytes[aligned..]);
            self.queue.write_buffer(&buffer, aligned as u64, &tail);
        }
        Ok(buffer)
    }

    /// Fails with a sentence naming `op` when a tensor of `shape` would not fit one storage binding.
    pub fn check_fits(&self, op: &str, shapes: &[&[usize]]) -> Result<(), GpuError> {
        let limit = self.binding_limit();
        for shape in shapes {
            let bytes = shape.iter().product::<usize>() as u64 * 4;
            if bytes > limit {
                let shapes = shapes.iter().map(|s| s.to_vec()).collect();
                return Err(GpuError::TooLarge { op: op.to_string(), shapes, bytes, limit });
            }
        }
        Ok(())
    }

    /// Copies a host tensor into a new storage buffer.
    pub fn upload(&self, tensor: &Tensor) -> Result<GpuTensor, GpuError> {
        self.check_fits("upload", &[&tensor.shape])?;
        let buffer = self.storage_buffer(tensor.len(), "tensor");
        self.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&tensor.data));
        Ok(GpuTensor { buffer, shape: tensor.shape.clone() })
    }

    /// Copies a GPU tensor back to the host. Awaitable in the browser; native
    /// callers wrap it in `pollster::block_on`.
    pub async fn read(&self, tensor: &GpuTensor) -> Result<Tensor, GpuError> {
        let values = self.read_buffer(&tensor.buffer, tensor.len()).await?;
        Ok(Tensor::new(&tensor.shape, values))
    }

    /// Copies the first `len` f32 values of `buffer` back to the host.
    pub async fn read_buffer(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
        self.read_buffer_at(buffer, 0, len).await
    }

    /// Copies `len` f32 values of `buffer` from value `offset` on back to the host.
    pub async fn read_buffer_at(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>, GpuError> {
        let size = (len.max(1) * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, (offset * 4) as u64, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        // Natively the device must be polled for the map to finish; in the
        // browser the event loop does it and this returns at once.
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        receiver
            .await
            .map_err(|_| GpuError::Readback("the device was lost".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let view = staging.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
        let values: Vec<f32> = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(values[..len].to_vec())
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
        match launch_for(op, &shapes, &out_shape, tiling) {
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

/// The WGSL text of `shader`: from `$OCTCONV_SHADERS/<file>` when that variable
/// names a folder (edit a kernel and re-run without rebuilding), else built in.
fn shader_source(shader: Shader) -> String {
    source_from_folder(shader.file_name()).unwrap_or_else(|| shader.built_in_source().to_string())
}

/// `$OCTCONV_SHADERS/<file_name>`, if that variable is set and the file readable.
fn source_from_folder(file_name: &str) -> Option<String> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let dir = std::env::var("OCTCONV_SHADERS").ok()?;
        std::fs::read_to_string(std::path::Path::new(&dir).join(file_name)).ok()
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = file_name; // the browser has no folder to read
        None
    }
}
