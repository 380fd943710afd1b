//! Where the GPU program's values live: the plan's slots placed in buffers,
//! the parameters and their gradients each sharing one buffer so that one
//! Adam dispatch updates them all.

use crate::gpu::{Gpu, GpuError};
use crate::nn::TrainGraph;

use super::BufferPlan;

/// Where a buffer slot of the plan lives: a range of one of the program's buffers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Place {
    pub buffer: usize,
    /// In f32 values.
    pub offset: usize,
    pub len: usize,
}

impl Place {
    /// This range of `buffers[self.buffer]`, for a bind group.
    pub fn range(self, buffers: &[wgpu::Buffer]) -> wgpu::BufferBinding<'_> {
        wgpu::BufferBinding {
            buffer: &buffers[self.buffer],
            offset: (self.offset * 4) as u64,
            size: wgpu::BufferSize::new((self.len * 4) as u64),
        }
    }
}

/// Gives every slot of `plan` a place: the parameters of `model.grads` in one
/// shared buffer and their gradients in another, at the same offsets aligned
/// for binding; every other slot in a buffer of its own. Returns the buffers,
/// the places and the shared buffers' length.
pub(super) fn place_slots(
    gpu: &Gpu,
    model: &TrainGraph,
    plan: &BufferPlan,
) -> Result<(Vec<wgpu::Buffer>, Vec<Place>, usize), GpuError> {
    let align = (gpu.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let mut shared = vec![None; plan.slot_len.len()];
    let mut arena_len = 0;
    for &(param, grad) in &model.grads {
        let len = plan.slot_len[plan.slot_of[param].expect("parameters have slots")];
        for (buffer, id) in [(0, param), (1, grad)] {
            shared[plan.slot_of[id].expect("gradients have slots")] = Some(Place { buffer, offset: arena_len, len });
        }
        arena_len = (arena_len + len).div_ceil(align) * align;
    }
    let mut lengths: Vec<[usize; 1]> = plan.slot_len.iter().map(|&len| [len]).collect();
    lengths.push([arena_len]);
    gpu.check_fits("compile", &lengths.iter().map(|s| s.as_slice()).collect::<Vec<_>>())?;

    let mut buffers = Vec::new();
    if arena_len > 0 {
        buffers.push(gpu.storage_buffer(arena_len, "parameters"));
        buffers.push(gpu.storage_buffer(arena_len, "gradients"));
    }
    let mut places = Vec::new();
    for (slot, &len) in plan.slot_len.iter().enumerate() {
        places.push(match shared[slot] {
            Some(place) => place,
            None => {
                buffers.push(gpu.storage_buffer(len, "value"));
                Place { buffer: buffers.len() - 1, offset: 0, len }
            }
        });
    }
    Ok((buffers, places, arena_len))
}
