//! Compiled kernels: the shader modules and pipelines (compiled once per
//! device and cached), their bind groups, and recording a dispatch.

use std::sync::Arc;

use super::{Gpu, GpuError};
use crate::ops::kernel::{ShaderFile, COMMON};
use crate::ops::{Kernel, Launch};

/// A compiled compute pipeline and the layout of its single bind group.
#[derive(Debug)]
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

impl Gpu {
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
            self.modules.lock().unwrap().remove(kernel.shader.name);
            return Err(GpuError::Shader {
                file: kernel.shader.name.to_string(),
                entry: kernel.entry.to_string(),
                message: self.located(kernel).await.unwrap_or_else(|| error.to_string()),
            });
        }
        let compiled = Arc::new(Pipeline { pipeline, layout });
        self.pipelines.lock().unwrap().insert(kernel.entry, compiled.clone());
        Ok(compiled)
    }

    /// The compile error of `kernel`'s shader as it is in use, located in
    /// its own file (the device's message counts lines from common.wgsl's start).
    async fn located(&self, kernel: &Kernel) -> Option<String> {
        let (common, text) = (self.shader_source(COMMON), self.shader_source(kernel.shader));
        #[cfg(not(target_arch = "wasm32"))]
        let diagnostic = super::diagnose_with(&common, kernel.shader.name, &text, &[kernel.entry]);
        #[cfg(target_arch = "wasm32")]
        let diagnostic = self.diagnose_on_device(&common, kernel.shader.name, &text).await;
        diagnostic.map(|d| d.to_string())
    }

    fn module(&self, shader: ShaderFile) -> wgpu::ShaderModule {
        let mut modules = self.modules.lock().unwrap();
        modules
            .entry(shader.name)
            .or_insert_with(|| {
                let (common, text) = (self.shader_source(COMMON), self.shader_source(shader));
                let shipped = self.trust_shipped && common == COMMON.source && text == shader.source;
                let source = wgpu::ShaderSource::Wgsl(format!("{common}\n{text}").into());
                let descriptor = wgpu::ShaderModuleDescriptor { label: Some(shader.name), source };
                #[cfg(not(target_arch = "wasm32"))]
                if shipped {
                    // SAFETY: see `shipped_checks`; an edited kernel keeps every check.
                    return unsafe { self.device.create_shader_module_trusted(descriptor, self.shipped_checks()) };
                }
                let _ = shipped; // in the browser, its WebGPU implementation applies its own checks
                self.device.create_shader_module(descriptor)
            })
            .clone()
    }

    /// The run-time checks naga adds to the shipped kernels (native only; a
    /// browser adds its own). On llvmpipe they cost about a third of the
    /// convolutions' time: a counter in every loop, a guard on every
    /// division, a clamp on every index. Shipped kernels go without what they
    /// do not need: every loop runs to a bound taken from its parameters,
    /// every divisor is a tensor extent (never 0), and on Vulkan buffer accesses
    /// are bounds-checked by the driver itself (robust buffer access, which wgpu
    /// enables), while local-array indices run below their loops' constant
    /// bounds. Elsewhere (GL, Metal, DX12) naga's bounds checks stay.
    /// `octconv check` runs every shipped kernel on odd shapes against its twin.
    #[cfg(not(target_arch = "wasm32"))]
    fn shipped_checks(&self) -> wgpu::ShaderRuntimeChecks {
        wgpu::ShaderRuntimeChecks {
            bounds_checks: self.info.backend != wgpu::Backend::Vulkan,
            force_loop_bounding: false,
            int_div_checks: false,
            ..wgpu::ShaderRuntimeChecks::checked()
        }
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
}

impl Gpu {
    /// Uses `text` for the shader file `name` from now on (None: the built-in
    /// one again), forgetting the modules and pipelines compiled from the old one.
    pub fn set_source(&self, name: &'static str, text: Option<String>) {
        match text {
            Some(text) => self.sources.lock().unwrap().insert(name, text),
            None => self.sources.lock().unwrap().remove(name),
        };
        let mut modules = self.modules.lock().unwrap();
        let mut pipelines = self.pipelines.lock().unwrap();
        if name == COMMON.name {
            // Every module starts with common.wgsl.
            modules.clear();
            pipelines.clear();
        } else {
            modules.remove(name);
            let entries: Vec<&str> =
                crate::ops::all_kernels().filter(|k| k.shader.name == name).map(|k| k.entry).collect();
            pipelines.retain(|entry, _| !entries.contains(entry));
        }
    }

    /// The WGSL text of `shader`: the one set with `set_source`, else
    /// `$OCTCONV_SHADERS/<file>` when that variable names a folder holding it
    /// (edit a kernel and re-run without rebuilding), else built in.
    fn shader_source(&self, shader: ShaderFile) -> String {
        if let Some(text) = self.sources.lock().unwrap().get(shader.name) {
            return text.clone();
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(dir) = std::env::var("OCTCONV_SHADERS") {
            if let Ok(text) = std::fs::read_to_string(std::path::Path::new(&dir).join(shader.name)) {
                return text;
            }
        }
        shader.source.to_string()
    }
}
