//! GPU memory: storage buffers, uploads (f32 tensors and packed bytes), the
//! binding-size limit, and asynchronous read-back.

use super::Clock;
use super::{Gpu, GpuError, GpuTensor};
use crate::ops::Launch;
use crate::tensor::Tensor;

/// Dispatches timed together as one sample by `time_dispatch`.
const DISPATCHES_PER_PASS: usize = if cfg!(target_arch = "wasm32") { 8 } else { 1 };

impl Gpu {
    /// Waits until the device has done what was submitted (at most `wait_limit`).
    pub fn wait(&self) -> Result<(), GpuError> {
        match self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: self.wait_limit }) {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(GpuError::Timeout(self.wait_limit.unwrap_or_default())),
            Err(e) => Err(GpuError::Readback(e.to_string())),
        }
    }

    /// Median seconds of `repeats` dispatches of `launch` on `buffers`, each
    /// submitted alone (after one warm-up): from GPU timestamps where the
    /// device has them, else the wall clock around submission and wait.
    /// Before each, `restore` copies (from, to) put back what a kernel that
    /// updates in place (Adam) changed. In the browser each sample is
    /// `DISPATCHES_PER_PASS` dispatches in one pass (Chrome rounds
    /// timestamps to 100 µs), and the wall clock waits for a read-back.
    pub async fn time_dispatch(
        &self,
        launch: &Launch,
        buffers: &[&wgpu::Buffer],
        restore: &[(&wgpu::Buffer, &wgpu::Buffer)],
        repeats: usize,
    ) -> Result<(f64, Clock), GpuError> {
        let pipeline = self.pipeline(launch.kernel).await?;
        let bind_group = self.bind(&pipeline, launch, buffers);
        let timer = self.pass_timer(1);
        let mut samples = Vec::new();
        for k in 0..=repeats.max(1) {
            let start = crate::exec::now();
            let record = |encoder: &mut wgpu::CommandEncoder| {
                for (from, to) in restore {
                    encoder.copy_buffer_to_buffer(from, 0, to, 0, from.size().min(to.size()));
                }
                let timestamp_writes = timer.as_ref().map(|t| t.writes(0));
                let mut pass =
                    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
                for _ in 0..DISPATCHES_PER_PASS {
                    Gpu::dispatch(&mut pass, &pipeline, &bind_group, launch);
                }
            };
            let seconds = match &timer {
                Some(timer) => timer.submit_timed(self, record).await?[0],
                None => {
                    let mut encoder = self.device.create_command_encoder(&Default::default());
                    record(&mut encoder);
                    self.queue.submit([encoder.finish()]);
                    self.finished(buffers).await?;
                    crate::exec::now() - start
                }
            } / DISPATCHES_PER_PASS as f64;
            if k > 0 {
                samples.push(seconds);
            }
        }
        let clock = if timer.is_some() { Clock::Gpu } else { Clock::Wall };
        Ok((crate::exec::median(samples), clock))
    }

    /// Waits for what was submitted: natively by polling the device, in the
    /// browser (which cannot block) by reading back a word of `buffers[0]`.
    async fn finished(&self, buffers: &[&wgpu::Buffer]) -> Result<(), GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = buffers;
            self.wait()
        }
        #[cfg(target_arch = "wasm32")]
        match buffers.first() {
            Some(buffer) => self.read_bytes(buffer, 0, 4).await.map(|_| ()),
            None => Ok(()),
        }
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
        let bytes = self.read_bytes(buffer, (offset * 4) as u64, (len.max(1) * 4) as u64).await?;
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(values[..len].to_vec())
    }

    /// Copies `size` bytes of `buffer` from byte `offset` on back to the host.
    pub async fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>, GpuError> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        // Natively the device must be polled for the map to finish; in the
        // browser the event loop does it and this returns at once.
        self.wait()?;
        receiver
            .await
            .map_err(|_| GpuError::Readback("the device was lost".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let view = staging.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
        let bytes = view.to_vec();
        drop(view);
        staging.unmap();
        Ok(bytes)
    }
}
