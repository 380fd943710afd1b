//! What a GPU program records at compile time: one bound dispatch per op of
//! the schedule, the one Adam dispatch over every parameter, and the batch
//! metrics dispatch.

use std::sync::Arc;

use super::places::Place;
use super::{BufferPlan, ExecError, Schedule};
use crate::gpu::{Gpu, Pipeline};
use crate::graph::{NodeId, Source};
use crate::nn::TrainGraph;
use crate::ops::adam::{adam_launch, ADAM_STEP};
use crate::ops::loss::batch_metrics_launch;
use crate::ops::Launch;
use crate::optim::AdamConfig;

/// One recorded kernel launch with everything bound.
pub(super) struct Dispatch {
    pub pipeline: Arc<Pipeline>,
    pub bind_group: wgpu::BindGroup,
    pub launch: Launch,
    /// The graph node it computes (for profiles) and its floating-point operations.
    /// (Read by the native profile only.)
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub label: String,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub flops: u64,
}

/// What `compile` builds before the program exists.
pub(super) struct Compiled {
    pub plan: BufferPlan,
    pub buffers: Vec<wgpu::Buffer>,
    pub places: Vec<Place>,
    /// Values in the shared parameter buffer (and its gradient and moment twins).
    pub arena_len: usize,
}

impl Compiled {
    /// The range of a node's slot, for a bind group.
    fn binding(&self, id: NodeId) -> wgpu::BufferBinding<'_> {
        self.places[self.plan.slot_of[id].expect("every scheduled value has a buffer")].range(&self.buffers)
    }
}

/// One bound dispatch per scheduled op (a fused ReLU's op applies it), in schedule order.
pub(super) async fn record_ops(
    gpu: &Gpu,
    model: &TrainGraph,
    schedule: &Schedule,
    fused: &[Option<NodeId>],
    compiled: &Compiled,
) -> Result<Vec<(NodeId, Dispatch)>, ExecError> {
    let g = &model.graph;
    let mut record = Vec::new();
    for id in schedule.all() {
        let node = &g.nodes[id];
        let Source::Op(op) = &node.source else { continue };
        if fused[id].is_some() {
            continue; // computed by the op before it
        }
        let shapes: Vec<&[usize]> = node.inputs.iter().map(|&i| g.shape(i)).collect();
        let Some(mut launch) = op.launch(&shapes, &node.shape, gpu.tiling) else { continue };
        let mut label = node.name.clone();
        if fused.contains(&Some(id)) {
            assert!(launch.fuse_relu(), "absorbs_relu found a ReLU epilogue for {}", op.name());
            label.push_str(" + relu");
        }
        let pipeline = gpu.pipeline(launch.kernel).await?;
        let inputs: Vec<wgpu::BufferBinding> = node.inputs.iter().map(|&i| compiled.binding(i)).collect();
        let output = compiled.binding(id);
        let bound: Vec<wgpu::BufferBinding> =
            launch.buffers(&inputs.iter().collect::<Vec<_>>(), &output).into_iter().cloned().collect();
        let bind_group = gpu.bind_ranges(&pipeline, &gpu.uniform_buffer(&launch.params), &bound);
        let flops = op.flops(&shapes, &node.shape);
        record.push((id, Dispatch { pipeline, bind_group, launch, label, flops }));
    }
    Ok(record)
}

/// One Adam step over the whole parameter buffer (the alignment gaps between
/// parameters have zero gradients and moments, so stay unchanged), with the
/// moment buffers it updates; None for a model without gradients.
pub(super) async fn adam_dispatch(
    gpu: &Gpu,
    model: &TrainGraph,
    compiled: &Compiled,
    config: &AdamConfig,
    uniform: &wgpu::Buffer,
) -> Result<Option<(Dispatch, (wgpu::Buffer, wgpu::Buffer))>, ExecError> {
    let Some(&(param, grad)) = model.grads.first() else { return Ok(None) };
    let len = compiled.arena_len;
    let (m, v) = (gpu.storage_buffer(len, "adam m"), gpu.storage_buffer(len, "adam v"));
    let pipeline = gpu.pipeline(&ADAM_STEP).await?;
    let shared = |id: NodeId| {
        let place = compiled.places[compiled.plan.slot_of[id].expect("parameters have buffers")];
        &compiled.buffers[place.buffer]
    };
    let bind_group = gpu.bind_with_uniform(&pipeline, uniform, &[shared(grad), shared(param), &m, &v]);
    let launch = adam_launch(config, 1, len);
    let dispatch = Dispatch { pipeline, bind_group, launch, label: "every parameter".into(), flops: 10 * len as u64 };
    Ok(Some((dispatch, (m, v))))
}

/// The dispatch that adds a batch's loss and accuracy to `metrics_buffer`.
pub(super) async fn metrics_dispatch(
    gpu: &Gpu,
    model: &TrainGraph,
    compiled: &Compiled,
    metrics_buffer: &wgpu::Buffer,
) -> Result<Dispatch, ExecError> {
    let launch = batch_metrics_launch(model.batch(), model.graph.shape(model.logits)[1]);
    let pipeline = gpu.pipeline(launch.kernel).await?;
    let bound = [
        compiled.binding(model.logits),
        compiled.binding(model.labels),
        compiled.binding(model.loss),
        metrics_buffer.as_entire_buffer_binding(),
    ];
    let bind_group = gpu.bind_ranges(&pipeline, &gpu.uniform_buffer(&launch.params), &bound);
    Ok(Dispatch { pipeline, bind_group, launch, label: "metrics".into(), flops: 0 })
}
