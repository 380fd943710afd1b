//! GPU time of compute passes, from timestamp queries where the adapter has
//! them (`TIMESTAMP_QUERY`): what the kernels took on the device, without the
//! host's submission and wait around them, which is what a wall clock
//! around one dispatch mostly measures on a fast GPU.

use super::{Gpu, GpuError};

/// Where a time was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// GPU timestamps around the pass: the kernels alone.
    Gpu,
    /// The host's clock around submission and wait.
    Wall,
}

impl Clock {
    pub fn name(self) -> &'static str {
        match self {
            Clock::Gpu => "GPU timestamps",
            Clock::Wall => "wall clock",
        }
    }
}

/// Timestamps at the start and end of each of `passes` compute passes.
pub struct PassTimer {
    query_set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    passes: u32,
}

impl Gpu {
    /// A timer for `passes` passes, or None when the device has no timestamp queries.
    pub fn pass_timer(&self, passes: usize) -> Option<PassTimer> {
        if !self.has_timestamps() || passes == 0 {
            return None;
        }
        let count = 2 * passes as u32;
        let query_set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass times"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pass times"),
            size: 8 * count as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Some(PassTimer { query_set, resolved, passes: passes as u32 })
    }
}

impl PassTimer {
    /// The timestamp writes of pass `k`, for its `ComputePassDescriptor`.
    pub fn writes(&self, k: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(2 * k as u32),
            end_of_pass_write_index: Some(2 * k as u32 + 1),
        }
    }

    /// Copies the timestamps out of the query set; record after the passes.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.query_set, 0..2 * self.passes, &self.resolved, 0);
    }

    /// Submits what `record` puts in a new encoder (its passes begun with
    /// `self.writes(k)`) with the timestamps resolved after it, and returns
    /// the seconds each pass took on the device.
    pub async fn submit_timed(
        &self,
        gpu: &Gpu,
        record: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<Vec<f64>, GpuError> {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        record(&mut encoder);
        self.resolve(&mut encoder);
        gpu.queue.submit([encoder.finish()]);
        self.seconds(gpu).await
    }

    /// Seconds each pass took on the device (after the submission that resolved them).
    pub async fn seconds(&self, gpu: &Gpu) -> Result<Vec<f64>, GpuError> {
        let bytes = gpu.read_bytes(&self.resolved, 0, 16 * self.passes as u64).await?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let period = gpu.queue.get_timestamp_period() as f64 * 1e-9;
        Ok(ticks.chunks(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period).collect())
    }
}
