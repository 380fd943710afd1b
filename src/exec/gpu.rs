//! The model compiled for a wgpu device: every buffer, pipeline and bind
//! group is made once; a training step writes the batch and Adam's step
//! parameters, records every dispatch into one command buffer and submits it.

use std::rc::Rc;
use std::sync::Arc;

use super::{param_names, BufferPlan, Metrics, OptimizerState, Schedule};
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

pub struct GpuProgram {
    pub model: TrainGraph,
    gpu: Rc<Gpu>,
    plan: BufferPlan,
    buffers: Vec<wgpu::Buffer>,
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    adam: Vec<Dispatch>,
    metrics: Dispatch,
    /// Adam's per-step parameters, shared by every parameter's update.
    adam_uniform: wgpu::Buffer,
    /// (loss · samples, correct, samples) accumulated on the GPU.
    metrics_buffer: wgpu::Buffer,
    moments: Vec<(wgpu::Buffer, wgpu::Buffer)>,
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
        let plan = BufferPlan::new(&model, &schedule);
        let slot_shapes: Vec<[usize; 1]> = plan.slot_len.iter().map(|&len| [len]).collect();
        gpu.check_fits("compile", &slot_shapes.iter().map(|s| s.as_slice()).collect::<Vec<_>>())?;
        let buffers: Vec<wgpu::Buffer> = plan.slot_len.iter().map(|&len| gpu.storage_buffer(len, "value")).collect();
        let buffer_of = |id: NodeId| &buffers[plan.slot_of[id].expect("every scheduled value has a buffer")];

        let g = &model.graph;
        let mut record = Vec::new();
        for id in schedule.all() {
            let node = &g.nodes[id];
            let Source::Op(op) = &node.source else { continue };
            let shapes: Vec<&[usize]> = node.inputs.iter().map(|&i| g.shape(i)).collect();
            let Some(launch) = kernels::launch_for(op, &shapes, &node.shape, gpu.tiling) else { continue };
            let pipeline = gpu.pipeline(launch.kernel).await?;
            let inputs: Vec<&wgpu::Buffer> = node.inputs.iter().map(|&i| buffer_of(i)).collect();
            let bind_group = gpu.bind(&pipeline, &launch, &launch.buffers(&inputs, buffer_of(id)));
            let flops = op.flops(&shapes, &node.shape);
            record.push((id, Dispatch { pipeline, bind_group, launch, label: node.name.clone(), flops }));
        }
        let (forward, backward): (Vec<_>, Vec<_>) = record.into_iter().partition(|(id, _)| *id <= model.loss);
        let strip = |v: Vec<(NodeId, Dispatch)>| v.into_iter().map(|(_, d)| d).collect::<Vec<_>>();

        let adam_params = kernels::adam_params(&adam_config, 1);
        let adam_uniform = gpu.uniform_buffer(&adam_params);
        let adam_pipeline = gpu.pipeline(&kernels::ADAM_STEP).await?;
        let mut adam = Vec::new();
        let mut moments = Vec::new();
        for &(param, grad) in &model.grads {
            let len = g.shape(param).iter().product();
            let (m, v) = (gpu.storage_buffer(len, "adam m"), gpu.storage_buffer(len, "adam v"));
            let launch = kernels::adam_launch(&adam_config, 1, len);
            let bind_group =
                gpu.bind_with_uniform(&adam_pipeline, &adam_uniform, &[buffer_of(grad), buffer_of(param), &m, &v]);
            let label = format!("{}.adam", g.nodes[param].name);
            adam.push(Dispatch { pipeline: adam_pipeline.clone(), bind_group, launch, label, flops: 10 * len as u64 });
            moments.push((m, v));
        }

        let metrics_buffer = gpu.storage_buffer(3, "metrics");
        let launch = kernels::batch_metrics_launch(model.batch(), g.shape(model.logits)[1]);
        let pipeline = gpu.pipeline(launch.kernel).await?;
        let bound = [buffer_of(model.logits), buffer_of(model.labels), buffer_of(model.loss), &metrics_buffer];
        let bind_group = gpu.bind(&pipeline, &launch, &bound);
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
        };
        program.load_params(params);
        Ok(program)
    }

    fn buffer(&self, id: NodeId) -> &wgpu::Buffer {
        &self.buffers[self.plan.slot_of[id].expect("node has no buffer: it is not computed by this program")]
    }

    /// Dispatches recorded for one training step (the batch gather included).
    pub fn dispatches_per_step(&self) -> usize {
        1 + self.forward.len() + 1 + self.backward.len() + self.adam.len()
    }

    /// Bytes of GPU memory the values take (after buffer reuse).
    pub fn value_bytes(&self) -> usize {
        self.plan.bytes()
    }

    pub fn write_batch(&mut self, images: &[f32], labels: &[f32]) {
        self.pending_gather = None;
        self.gpu.queue.write_buffer(self.buffer(self.model.images), 0, bytemuck::cast_slice(images));
        self.gpu.queue.write_buffer(self.buffer(self.model.labels), 0, bytemuck::cast_slice(labels));
    }

    /// Copies `data` to the GPU once (bytes, four to a word); returns its index.
    pub async fn upload_dataset(&mut self, data: &Dataset) -> Result<usize, GpuError> {
        let images = self.gpu.upload_bytes(&data.images, "training images")?;
        let labels = self.gpu.upload_bytes(&data.labels, "training labels")?;
        let order = self.gpu.storage_buffer(data.len(), "order");
        let launch = kernels::gather_launch(self.model.batch(), PIXELS, 0, 0);
        let params = self.gpu.uniform_buffer(&launch.params);
        let pipeline = self.gpu.pipeline(launch.kernel).await?;
        let (inputs, labels_out) = (self.buffer(self.model.images), self.buffer(self.model.labels));
        let bind_group =
            self.gpu.bind_with_uniform(&pipeline, &params, &[&order, &images, &labels, inputs, labels_out]);
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
        let groups: [&[Dispatch]; 4] = [&self.forward, std::slice::from_ref(&self.metrics), &self.backward, &self.adam];
        let mut samples: Vec<f64> = (0..repeats.max(1))
            .map(|_| {
                let start = crate::exec::now();
                drop(self.record((!self.datasets.is_empty()).then_some(0), &groups));
                crate::exec::now() - start
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
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
        self.submit(gather, &[&self.forward, std::slice::from_ref(&self.metrics), &self.backward, &self.adam]);
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
        let all = self.forward.iter().chain([&self.metrics]).chain(&self.backward).chain(&self.adam);
        for d in all {
            let mut samples: Vec<f64> = (0..repeats.max(1))
                .map(|_| {
                    let start = crate::exec::now();
                    self.submit(None, &[std::slice::from_ref(d)]);
                    wait(&self.gpu);
                    crate::exec::now() - start
                })
                .collect();
            samples.sort_by(f64::total_cmp);
            let seconds = samples[samples.len() / 2];
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
        let values = self.gpu.read_buffer(self.buffer(node), shape.iter().product()).await?;
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
            self.gpu.queue.write_buffer(self.buffer(id), 0, bytemuck::cast_slice(&value.data));
        }
    }

    pub async fn optimizer_state(&self) -> Result<OptimizerState, GpuError> {
        let mut moments = Vec::new();
        for (&(param, _), (m, v)) in self.model.grads.iter().zip(&self.moments) {
            let shape = self.model.graph.shape(param);
            let len = shape.iter().product();
            let m = Tensor::new(shape, self.gpu.read_buffer(m, len).await?);
            let v = Tensor::new(shape, self.gpu.read_buffer(v, len).await?);
            moments.push((self.model.graph.nodes[param].name.clone(), m, v));
        }
        Ok(OptimizerState { step: self.step, moments })
    }

    pub fn load_optimizer_state(&mut self, state: &OptimizerState) {
        self.step = state.step;
        for ((m, v), (_, sm, sv)) in self.moments.iter().zip(&state.moments) {
            self.gpu.queue.write_buffer(m, 0, bytemuck::cast_slice(&sm.data));
            self.gpu.queue.write_buffer(v, 0, bytemuck::cast_slice(&sv.data));
        }
    }
}
