//! The model compiled for a wgpu device: every buffer, pipeline and bind
//! group is made once; a training step writes the batch and Adam's step
//! parameters, records every dispatch into one command buffer and submits it.

use std::rc::Rc;
use std::sync::Arc;

use super::{param_names, relu_fusions, BufferPlan, Metrics, OptimizerState, Schedule};
use crate::cpu::AdamConfig;
use crate::data::{Dataset, PIXELS};
use crate::gpu::kernels::{self, Launch};
use crate::gpu::{Gpu, GpuError, Pipeline};
use crate::graph::{NodeId, Source};
use crate::nn::{ParamSet, TrainGraph};
use crate::tensor::Tensor;

/// One recorded kernel launch with everything bound.
struct Dispatch {
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    launch: Launch,
    /// The graph node it computes (for profiles) and its floating-point operations.
    label: String,
    flops: u64,
}

/// The measured time of one dispatch of a training step.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    pub kernel: &'static str,
    pub node: String,
    pub seconds: f64,
    pub flops: u64,
}

/// Where a buffer slot of the plan lives: a range of one of the program's buffers.
#[derive(Clone, Copy, Debug)]
struct Place {
    buffer: usize,
    /// In f32 values.
    offset: usize,
    len: usize,
}

impl Place {
    /// This range of `buffers[self.buffer]`, for a bind group.
    fn range(self, buffers: &[wgpu::Buffer]) -> wgpu::BufferBinding<'_> {
        wgpu::BufferBinding {
            buffer: &buffers[self.buffer],
            offset: (self.offset * 4) as u64,
            size: wgpu::BufferSize::new((self.len * 4) as u64),
        }
    }
}

pub struct GpuProgram {
    pub model: TrainGraph,
    gpu: Rc<Gpu>,
    plan: BufferPlan,
    buffers: Vec<wgpu::Buffer>,
    /// Each slot's place. The parameters share one buffer, and so do their
    /// gradients and Adam's two moments, each at the same offsets, so that
    /// one Adam dispatch updates every parameter.
    places: Vec<Place>,
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    adam: Vec<Dispatch>,
    metrics: Dispatch,
    /// Adam's per-step parameters, shared by every parameter's update.
    adam_uniform: wgpu::Buffer,
    /// (loss · samples, correct, samples) accumulated on the GPU.
    metrics_buffer: wgpu::Buffer,
    /// Adam's first and second moments, laid out as the parameters.
    moments: Option<(wgpu::Buffer, wgpu::Buffer)>,
    adam_config: AdamConfig,
    step: u64,
    datasets: Vec<GpuDataset>,
    /// The dataset whose batch the next submission gathers first.
    pending_gather: Option<usize>,
}

/// A dataset kept on the GPU as bytes, with its current order and the
/// gather dispatch that writes a batch of it into the model's inputs.
struct GpuDataset {
    order: wgpu::Buffer,
    order_len: usize,
    len: usize,
    params: wgpu::Buffer,
    gather: Dispatch,
}

impl GpuProgram {
    pub async fn compile(
        gpu: Rc<Gpu>,
        model: TrainGraph,
        params: &ParamSet,
        adam_config: AdamConfig,
    ) -> Result<Self, GpuError> {
        let schedule = Schedule::new(&model);
        let fused =
            relu_fusions(&model, &schedule, |op, inputs, output| kernels::absorbs_relu(op, inputs, output, gpu.tiling));
        let plan = BufferPlan::new(&model, &schedule, &fused);
        let (buffers, places, arena_len) = place_slots(&gpu, &model, &plan)?;
        let binding =
            |id: NodeId| places[plan.slot_of[id].expect("every scheduled value has a buffer")].range(&buffers);

        let g = &model.graph;
        let mut record = Vec::new();
        for id in schedule.all() {
            let node = &g.nodes[id];
            let Source::Op(op) = &node.source else { continue };
            if fused[id].is_some() {
                continue; // computed by the op before it
            }
            let shapes: Vec<&[usize]> = node.inputs.iter().map(|&i| g.shape(i)).collect();
            let Some(mut launch) = kernels::launch_for(op, &shapes, &node.shape, gpu.tiling) else { continue };
            let mut label = node.name.clone();
            if fused.contains(&Some(id)) {
                assert!(launch.fuse_relu(), "absorbs_relu found a ReLU epilogue for {}", op.name());
                label.push_str(" + relu");
            }
            let pipeline = gpu.pipeline(launch.kernel).await?;
            let inputs: Vec<wgpu::BufferBinding> = node.inputs.iter().map(|&i| binding(i)).collect();
            let bound: Vec<wgpu::BufferBinding> =
                launch.buffers(&inputs.iter().collect::<Vec<_>>(), &binding(id)).into_iter().cloned().collect();
            let bind_group = gpu.bind_ranges(&pipeline, &gpu.uniform_buffer(&launch.params), &bound);
            let flops = op.flops(&shapes, &node.shape);
            record.push((id, Dispatch { pipeline, bind_group, launch, label, flops }));
        }
        let (forward, backward): (Vec<_>, Vec<_>) = record.into_iter().partition(|(id, _)| *id <= model.loss);
        let strip = |v: Vec<(NodeId, Dispatch)>| v.into_iter().map(|(_, d)| d).collect::<Vec<_>>();

        // One Adam step over the whole parameter buffer (the alignment gaps
        // between parameters have zero gradients and moments, so stay unchanged).
        let adam_uniform = gpu.uniform_buffer(&kernels::adam_params(&adam_config, 1));
        let (mut adam, mut moments) = (Vec::new(), None);
        if let Some(&(param, grad)) = model.grads.first() {
            let (m, v) = (gpu.storage_buffer(arena_len, "adam m"), gpu.storage_buffer(arena_len, "adam v"));
            let pipeline = gpu.pipeline(&kernels::ADAM_STEP).await?;
            let arena = |id: NodeId| &buffers[places[plan.slot_of[id].expect("parameters have buffers")].buffer];
            let bind_group = gpu.bind_with_uniform(&pipeline, &adam_uniform, &[arena(grad), arena(param), &m, &v]);
            let launch = kernels::adam_launch(&adam_config, 1, arena_len);
            let flops = 10 * arena_len as u64;
            adam.push(Dispatch { pipeline, bind_group, launch, label: "every parameter".into(), flops });
            moments = Some((m, v));
        }

        let metrics_buffer = gpu.storage_buffer(3, "metrics");
        let launch = kernels::batch_metrics_launch(model.batch(), g.shape(model.logits)[1]);
        let pipeline = gpu.pipeline(launch.kernel).await?;
        let bound = [
            binding(model.logits),
            binding(model.labels),
            binding(model.loss),
            metrics_buffer.as_entire_buffer_binding(),
        ];
        let bind_group = gpu.bind_ranges(&pipeline, &gpu.uniform_buffer(&launch.params), &bound);
        let metrics = Dispatch { pipeline, bind_group, launch, label: "metrics".into(), flops: 0 };

        let mut program = GpuProgram {
            forward: strip(forward),
            backward: strip(backward),
            adam,
            metrics,
            adam_uniform,
            metrics_buffer,
            moments,
            adam_config,
            step: 0,
            datasets: Vec::new(),
            pending_gather: None,
            model,
            gpu,
            plan,
            buffers,
            places,
        };
        program.load_params(params);
        Ok(program)
    }

    fn place(&self, id: NodeId) -> Place {
        self.places[self.plan.slot_of[id].expect("node has no buffer: it is not computed by this program")]
    }

    fn write(&self, id: NodeId, values: &[f32]) {
        let place = self.place(id);
        self.gpu.queue.write_buffer(
            &self.buffers[place.buffer],
            (place.offset * 4) as u64,
            bytemuck::cast_slice(values),
        );
    }

    /// A training step's dispatches after the batch gather, in order.
    fn step_groups(&self) -> [&[Dispatch]; 4] {
        [&self.forward, std::slice::from_ref(&self.metrics), &self.backward, &self.adam]
    }

    /// Dispatches recorded for one training step (the batch gather included).
    pub fn dispatches_per_step(&self) -> usize {
        1 + self.step_groups().iter().map(|g| g.len()).sum::<usize>()
    }

    /// Bytes of GPU memory the values take (after buffer reuse).
    pub fn value_bytes(&self) -> usize {
        self.plan.bytes()
    }

    pub fn write_batch(&mut self, images: &[f32], labels: &[f32]) {
        self.pending_gather = None;
        self.write(self.model.images, images);
        self.write(self.model.labels, labels);
    }

    /// Copies `data` to the GPU once (bytes, four to a word); returns its index.
    pub async fn upload_dataset(&mut self, data: &Dataset) -> Result<usize, GpuError> {
        let images = self.gpu.upload_bytes(&data.images, &format!("the images of {} examples", data.len()))?;
        let labels = self.gpu.upload_bytes(&data.labels, "their labels")?;
        let order = self.gpu.storage_buffer(data.len(), "order");
        let launch = kernels::gather_launch(self.model.batch(), PIXELS, 0, 0);
        let params = self.gpu.uniform_buffer(&launch.params);
        let pipeline = self.gpu.pipeline(launch.kernel).await?;
        let ranges = [
            order.as_entire_buffer_binding(),
            images.as_entire_buffer_binding(),
            labels.as_entire_buffer_binding(),
            self.place(self.model.images).range(&self.buffers),
            self.place(self.model.labels).range(&self.buffers),
        ];
        let bind_group = self.gpu.bind_ranges(&pipeline, &params, &ranges);
        let gather = Dispatch { pipeline, bind_group, launch, label: "gather".into(), flops: 0 };
        self.datasets.push(GpuDataset { order, order_len: 0, len: data.len(), params, gather });
        Ok(self.datasets.len() - 1)
    }

    /// Sets the order in which `select_batch` walks dataset `index` (written once per epoch).
    pub fn set_order(&mut self, index: usize, order: &[usize]) {
        let d = &mut self.datasets[index];
        assert!(order.len() <= d.len && order.iter().all(|&i| i < d.len), "an order of the dataset's examples");
        let words: Vec<u32> = order.iter().map(|&i| i as u32).collect();
        self.gpu.queue.write_buffer(&d.order, 0, bytemuck::cast_slice(&words));
        d.order_len = order.len();
    }

    /// Makes the next submission start by gathering the batch at `first` of dataset `index`'s order.
    pub fn select_batch(&mut self, index: usize, first: usize) {
        let d = &self.datasets[index];
        let params = kernels::gather_params(self.model.batch(), PIXELS, first, d.order_len);
        self.gpu.queue.write_buffer(&d.params, 0, bytemuck::cast_slice(&params));
        self.pending_gather = Some(index);
    }

    /// Records `groups` (after dataset `gather`'s batch gather, if any) into one command buffer and submits it.
    fn submit(&self, gather: Option<usize>, groups: &[&[Dispatch]]) {
        self.gpu.queue.submit([self.record(gather, groups)]);
    }

    fn record(&self, gather: Option<usize>, groups: &[&[Dispatch]]) -> wgpu::CommandBuffer {
        let gather = gather.map(|i| &self.datasets[i].gather);
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in gather.into_iter().chain(groups.iter().flat_map(|g| g.iter())) {
                Gpu::dispatch(&mut pass, &d.pipeline, &d.bind_group, &d.launch);
            }
        }
        encoder.finish()
    }

    /// Median seconds the host takes to record a whole training step's command
    /// buffer (not submitted): the part of a step no GPU can make faster.
    pub fn recording_seconds(&self, repeats: usize) -> f64 {
        let gather = (!self.datasets.is_empty()).then_some(0);
        median_seconds(repeats, || drop(self.record(gather, &self.step_groups())))
    }

    pub fn forward(&mut self) {
        let gather = self.pending_gather.take();
        self.submit(gather, &[&self.forward, std::slice::from_ref(&self.metrics)]);
    }

    pub fn train_step(&mut self) {
        self.step += 1;
        let params = kernels::adam_params(&self.adam_config, self.step);
        self.gpu.queue.write_buffer(&self.adam_uniform, 0, bytemuck::cast_slice(&params));
        let gather = self.pending_gather.take();
        self.submit(gather, &self.step_groups());
    }

    /// Times every dispatch of a training step on its own: the median of
    /// `repeats` submissions, each waited for. For benchmarks, not training.
    pub fn profile(&mut self, repeats: usize) -> Vec<DispatchTime> {
        let wait = |gpu: &Gpu| {
            let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
        };
        self.train_step();
        wait(&self.gpu);
        let mut times = Vec::new();
        for d in self.step_groups().into_iter().flatten() {
            let seconds = median_seconds(repeats, || {
                self.submit(None, &[std::slice::from_ref(d)]);
                wait(&self.gpu);
            });
            times.push(DispatchTime { kernel: d.launch.kernel.entry, node: d.label.clone(), seconds, flops: d.flops });
        }
        times
    }

    pub async fn metrics(&self) -> Result<Metrics, GpuError> {
        Ok(Metrics::from_sums(&self.gpu.read_buffer(&self.metrics_buffer, 3).await?))
    }

    pub fn reset_metrics(&mut self) {
        self.gpu.queue.write_buffer(&self.metrics_buffer, 0, bytemuck::cast_slice(&[0.0f32; 3]));
    }

    pub async fn read(&self, node: NodeId) -> Result<Tensor, GpuError> {
        let shape = self.model.graph.shape(node).to_vec();
        let place = self.place(node);
        let values = self.gpu.read_buffer_at(&self.buffers[place.buffer], place.offset, shape.iter().product()).await?;
        Ok(Tensor::new(&shape, values))
    }

    pub async fn params(&self) -> Result<ParamSet, GpuError> {
        let mut tensors = Vec::new();
        for (id, name) in param_names(&self.model) {
            tensors.push((name, self.read(id).await?));
        }
        Ok(ParamSet { tensors })
    }

    pub fn load_params(&mut self, params: &ParamSet) {
        for (id, name) in param_names(&self.model) {
            let value = params.get(&name).unwrap_or_else(|| panic!("no value for parameter {name}"));
            self.write(id, &value.data);
        }
    }

    pub async fn optimizer_state(&self) -> Result<OptimizerState, GpuError> {
        let mut moments = Vec::new();
        if let Some((m, v)) = &self.moments {
            for &(param, _) in &self.model.grads {
                let (shape, place) = (self.model.graph.shape(param), self.place(param));
                let m = Tensor::new(shape, self.gpu.read_buffer_at(m, place.offset, place.len).await?);
                let v = Tensor::new(shape, self.gpu.read_buffer_at(v, place.offset, place.len).await?);
                moments.push((self.model.graph.nodes[param].name.clone(), m, v));
            }
        }
        Ok(OptimizerState { step: self.step, moments })
    }

    pub fn load_optimizer_state(&mut self, state: &OptimizerState) {
        self.step = state.step;
        let Some((m, v)) = &self.moments else { return };
        for (&(param, _), (_, sm, sv)) in self.model.grads.iter().zip(&state.moments) {
            let offset = (self.place(param).offset * 4) as u64;
            self.gpu.queue.write_buffer(m, offset, bytemuck::cast_slice(&sm.data));
            self.gpu.queue.write_buffer(v, offset, bytemuck::cast_slice(&sv.data));
        }
    }
}

/// Gives every slot of `plan` a place: the parameters of `model.grads` in one
/// shared buffer and their gradients in another, at the same offsets aligned
/// for binding; every other slot in a buffer of its own. Returns the buffers,
/// the places and the shared buffers' length.
fn place_slots(
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

/// Median seconds of `repeats` (at least one) runs of `f`.
fn median_seconds(repeats: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = crate::exec::now();
            f();
            crate::exec::now() - start
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
