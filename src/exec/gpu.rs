//! The model compiled for a wgpu device: every buffer, pipeline and bind
//! group is made once; a training step writes the batch and Adam's step
//! parameters, records every dispatch into one command buffer and submits it.

use std::rc::Rc;

use super::places::{place_slots, Place};
use super::record::{adam_dispatch, metrics_dispatch, record_ops, Compiled, Dispatch};
use super::{
    check_batch, check_moments, check_order, check_sample, median_seconds, param_names, param_values, relu_fusions,
    BufferPlan, CpuProgram, DeviceData, ExecError, Metrics, Pending, Program, Schedule,
};
use crate::data::Dataset;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::Clock;
use crate::gpu::{Gpu, GpuError};
use crate::graph::NodeId;
use crate::nn::{ParamSet, TrainGraph};
use crate::ops::adam::{adam_params, AdamParams};
use crate::ops::gather::{gather_launch, gather_params, GatherParams};
use crate::ops::kernel::KernelParams;
use crate::optim::{AdamConfig, OptimizerState};
use crate::tensor::Tensor;

/// The measured time of one dispatch of a training step.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    pub kernel: &'static str,
    pub node: String,
    pub seconds: f64,
    pub flops: u64,
    /// Cores busy on average while it ran (the CPU device; None on a GPU).
    pub cores: Option<f64>,
    /// Its mean time inside back-to-back passes, as training runs it, where
    /// its inputs come from the op before rather than from a warm cache (the CPU device).
    pub in_step: Option<f64>,
}

/// Training steps `train_steps` records into one submission at most.
const STEPS_PER_SUBMISSION: usize = 16;
const GATHER_BYTES: usize = std::mem::size_of::<GatherParams>();
const ADAM_BYTES: usize = std::mem::size_of::<AdamParams>();
/// One step's slot in `step_slots`: its gather parameters, then Adam's.
const SLOT_BYTES: usize = GATHER_BYTES + ADAM_BYTES;

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
    /// Each step's gather and Adam parameters for `train_steps`, copied into
    /// the uniforms between the steps of one submission.
    step_slots: wgpu::Buffer,
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
    params: wgpu::Buffer,
    gather: Dispatch,
}

impl GpuProgram {
    pub async fn compile(
        gpu: Rc<Gpu>,
        model: TrainGraph,
        params: &ParamSet,
        adam_config: AdamConfig,
    ) -> Result<Self, ExecError> {
        let schedule = Schedule::new(&model);
        let fused = relu_fusions(&model, &schedule, |op, inputs, output| op.absorbs_relu(inputs, output, gpu.tiling));
        let plan = BufferPlan::new(&model, &schedule, &fused);
        let (buffers, places, arena_len) = place_slots(&gpu, &model, &plan)?;
        let compiled = Compiled { plan, buffers, places, arena_len };

        let record = record_ops(&gpu, &model, &schedule, &fused, &compiled).await?;
        let (forward, backward): (Vec<_>, Vec<_>) = record.into_iter().partition(|(id, _)| *id <= model.loss);
        let strip = |v: Vec<(NodeId, Dispatch)>| v.into_iter().map(|(_, d)| d).collect::<Vec<_>>();
        let adam_uniform = gpu.uniform_buffer(&adam_params(&adam_config, 1).words());
        let (adam, moments) = match adam_dispatch(&gpu, &model, &compiled, &adam_config, &adam_uniform).await? {
            Some((dispatch, moments)) => (vec![dispatch], Some(moments)),
            None => (Vec::new(), None),
        };
        let step_slots = gpu.storage_buffer(STEPS_PER_SUBMISSION * SLOT_BYTES / 4, "per-step parameters");
        let metrics_buffer = gpu.storage_buffer(3, "metrics");
        let metrics = metrics_dispatch(&gpu, &model, &compiled, &metrics_buffer).await?;

        let Compiled { plan, buffers, places, .. } = compiled;
        let mut program = GpuProgram {
            forward: strip(forward),
            backward: strip(backward),
            adam,
            metrics,
            adam_uniform,
            step_slots,
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
        program.load_params(params)?;
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

    /// Records `groups` (after dataset `gather`'s batch gather, if any) into one command buffer and submits it.
    fn submit(&self, gather: Option<usize>, groups: &[&[Dispatch]]) {
        self.gpu.queue.submit([self.record(gather, groups)]);
    }

    fn record(&self, gather: Option<usize>, groups: &[&[Dispatch]]) -> wgpu::CommandBuffer {
        let gather = gather.map(|i| &self.datasets[i].gather);
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        dispatch_all(&mut encoder.begin_compute_pass(&Default::default()), gather, groups);
        encoder.finish()
    }

    /// Median seconds the host takes to record a whole training step's command
    /// buffer (not submitted): the part of a step no GPU can make faster.
    pub fn recording_seconds(&self, repeats: usize) -> f64 {
        let gather = (!self.datasets.is_empty()).then_some(0);
        median_seconds(repeats, || drop(self.record(gather, &self.step_groups())))
    }

    /// Times every dispatch of a training step on its own, the median of
    /// `repeats`: with GPU timestamps where the device has them (each dispatch
    /// in a pass of its own, the whole step in one submission), else the wall
    /// clock around each dispatch submitted alone and waited for. For
    /// benchmarks, not training (native: it blocks on the read-backs).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile(&mut self, repeats: usize) -> (Vec<DispatchTime>, Clock) {
        self.train_step();
        let _ = self.gpu.wait();
        let dispatches: Vec<&Dispatch> = self.step_groups().into_iter().flatten().collect();
        let mut samples = vec![Vec::new(); dispatches.len()];
        let clock = match self.gpu.pass_timer(dispatches.len()) {
            Some(timer) => {
                for _ in 0..repeats.max(1) {
                    // One pass per dispatch, each with its own timestamps.
                    let record = |encoder: &mut wgpu::CommandEncoder| {
                        for (k, d) in dispatches.iter().enumerate() {
                            let timestamp_writes = Some(timer.writes(k));
                            let mut pass = encoder
                                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
                            Gpu::dispatch(&mut pass, &d.pipeline, &d.bind_group, &d.launch);
                        }
                    };
                    let Ok(seconds) = pollster::block_on(timer.submit_timed(&self.gpu, record)) else { break };
                    samples.iter_mut().zip(seconds).for_each(|(s, t)| s.push(t));
                }
                Clock::Gpu
            }
            None => {
                for (k, d) in dispatches.iter().enumerate() {
                    samples[k].push(median_seconds(repeats, || {
                        self.submit(None, &[std::slice::from_ref(*d)]);
                        let _ = self.gpu.wait();
                    }));
                }
                Clock::Wall
            }
        };
        let times = dispatches.iter().zip(samples).map(|(d, s)| {
            let seconds = super::median(s);
            DispatchTime {
                kernel: d.launch.kernel.entry,
                node: d.label.clone(),
                seconds,
                flops: d.flops,
                cores: None,
                in_step: None,
            }
        });
        (times.collect(), clock)
    }

    /// The median GPU time of a whole training step (gather, forward, backward,
    /// Adam in one pass) from timestamps, or None without them (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_gpu_seconds(&mut self, repeats: usize) -> Option<f64> {
        let timer = self.gpu.pass_timer(1)?;
        let gather = (!self.datasets.is_empty()).then_some(0);
        let mut samples = Vec::new();
        for _ in 0..repeats.max(1) {
            // The whole step in one pass.
            let record = |encoder: &mut wgpu::CommandEncoder| {
                let timestamp_writes = Some(timer.writes(0));
                let mut pass =
                    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
                dispatch_all(&mut pass, gather.map(|i| &self.datasets[i].gather), &self.step_groups());
            };
            samples.push(pollster::block_on(timer.submit_timed(&self.gpu, record)).ok()?[0]);
        }
        Some(super::median(samples))
    }

    /// Copies `data` to the GPU once (bytes, four to a word), with its gather dispatch.
    async fn add_dataset(&mut self, data: &Dataset) -> Result<DeviceData, ExecError> {
        check_sample(&self.model, data)?;
        let images = self.gpu.upload_bytes(&data.images, &format!("the images of {} examples", data.len()))?;
        let labels = self.gpu.upload_bytes(&data.labels, "their labels")?;
        let order = self.gpu.storage_buffer(data.len(), "order");
        let launch = gather_launch(self.model.batch(), self.model.sample_len(), 0, 0);
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
        self.datasets.push(GpuDataset { order, order_len: 0, params, gather });
        Ok(DeviceData { index: self.datasets.len() - 1, len: data.len() })
    }

    async fn read_node(&self, node: NodeId) -> Result<Tensor, GpuError> {
        let shape = self.model.graph.shape(node).to_vec();
        let place = self.place(node);
        let values = self.gpu.read_buffer_at(&self.buffers[place.buffer], place.offset, shape.iter().product()).await?;
        Ok(Tensor::new(&shape, values))
    }
}

impl Program for GpuProgram {
    fn model(&self) -> &TrainGraph {
        &self.model
    }

    fn write_batch(&mut self, images: &[f32], labels: &[f32]) -> Result<(), ExecError> {
        check_batch(&self.model, images, labels)?;
        self.pending_gather = None;
        self.write(self.model.images, images);
        self.write(self.model.labels, labels);
        Ok(())
    }

    fn upload_dataset<'a>(&'a mut self, data: &'a Dataset) -> Pending<'a, DeviceData> {
        Box::pin(self.add_dataset(data))
    }

    /// Writes the order once (e.g. per epoch); each step's gather reads it.
    fn set_order(&mut self, data: DeviceData, order: &[usize]) -> Result<(), ExecError> {
        check_order(data, order)?;
        let d = &mut self.datasets[data.index];
        let words: Vec<u32> = order.iter().map(|&i| i as u32).collect();
        self.gpu.queue.write_buffer(&d.order, 0, bytemuck::cast_slice(&words));
        d.order_len = order.len();
        Ok(())
    }

    /// Makes the next submission start by gathering the batch at `first` of the dataset's order.
    fn select_batch(&mut self, data: DeviceData, first: usize) {
        let d = &self.datasets[data.index];
        let params = gather_params(self.model.batch(), self.model.sample_len(), first, d.order_len);
        self.gpu.queue.write_buffer(&d.params, 0, bytemuck::bytes_of(&params));
        self.pending_gather = Some(data.index);
    }

    fn train_step(&mut self) {
        self.step += 1;
        let params = adam_params(&self.adam_config, self.step);
        self.gpu.queue.write_buffer(&self.adam_uniform, 0, bytemuck::bytes_of(&params));
        let gather = self.pending_gather.take();
        self.submit(gather, &self.step_groups());
    }

    /// Records up to 16 steps per submission: each step's uniforms are
    /// written to `step_slots` beforehand and copied into place between the
    /// steps, so the host records and submits once for all of them.
    fn train_steps(&mut self, data: DeviceData, first: usize, count: usize) {
        let (batch, sample_len) = (self.model.batch(), self.model.sample_len());
        self.pending_gather = None;
        for start in (0..count).step_by(STEPS_PER_SUBMISSION) {
            let steps = (count - start).min(STEPS_PER_SUBMISSION);
            let dataset = &self.datasets[data.index];
            let mut slots = Vec::with_capacity(steps * SLOT_BYTES);
            for k in 0..steps {
                let position = first + (start + k) * batch;
                let gather = gather_params(batch, sample_len, position, dataset.order_len);
                slots.extend_from_slice(bytemuck::bytes_of(&gather));
                let adam = adam_params(&self.adam_config, self.step + 1 + k as u64);
                slots.extend_from_slice(bytemuck::bytes_of(&adam));
            }
            self.gpu.queue.write_buffer(&self.step_slots, 0, &slots);
            self.step += steps as u64;
            let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
            for k in 0..steps {
                let slot = (k * SLOT_BYTES) as u64;
                encoder.copy_buffer_to_buffer(&self.step_slots, slot, &dataset.params, 0, GATHER_BYTES as u64);
                let adam_slot = slot + GATHER_BYTES as u64;
                encoder.copy_buffer_to_buffer(&self.step_slots, adam_slot, &self.adam_uniform, 0, ADAM_BYTES as u64);
                let mut pass = encoder.begin_compute_pass(&Default::default());
                dispatch_all(&mut pass, Some(&dataset.gather), &self.step_groups());
            }
            self.gpu.queue.submit([encoder.finish()]);
        }
    }

    fn forward(&mut self) {
        let gather = self.pending_gather.take();
        self.submit(gather, &[&self.forward, std::slice::from_ref(&self.metrics)]);
    }

    fn metrics(&self) -> Pending<'_, Metrics> {
        Box::pin(async { Ok(Metrics::from_sums(&self.gpu.read_buffer(&self.metrics_buffer, 3).await?)) })
    }

    fn reset_metrics(&mut self) {
        self.gpu.queue.write_buffer(&self.metrics_buffer, 0, bytemuck::cast_slice(&[0.0f32; 3]));
    }

    fn read(&self, node: NodeId) -> Pending<'_, Tensor> {
        Box::pin(async move { Ok(self.read_node(node).await?) })
    }

    fn params(&self) -> Pending<'_, ParamSet> {
        Box::pin(async {
            let mut tensors = Vec::new();
            for (id, name) in param_names(&self.model) {
                tensors.push((name, self.read_node(id).await?));
            }
            Ok(ParamSet { tensors })
        })
    }

    fn load_params(&mut self, params: &ParamSet) -> Result<(), ExecError> {
        for (id, value) in param_values(&self.model, params)? {
            self.write(id, &value.data);
        }
        Ok(())
    }

    fn optimizer_state(&self) -> Pending<'_, OptimizerState> {
        Box::pin(async {
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
        })
    }

    fn load_optimizer_state(&mut self, state: &OptimizerState) -> Result<(), ExecError> {
        check_moments(&self.model, state)?;
        self.step = state.step;
        let Some((m, v)) = &self.moments else { return Ok(()) };
        for (&(param, _), (_, sm, sv)) in self.model.grads.iter().zip(&state.moments) {
            let offset = (self.place(param).offset * 4) as u64;
            self.gpu.queue.write_buffer(m, offset, bytemuck::cast_slice(&sm.data));
            self.gpu.queue.write_buffer(v, offset, bytemuck::cast_slice(&sv.data));
        }
        Ok(())
    }

    fn as_gpu(&mut self) -> Option<&mut GpuProgram> {
        Some(self)
    }

    fn as_cpu(&mut self) -> Option<&mut CpuProgram> {
        None
    }
}

/// Records `gather` (a dataset's batch gather, if any), then `groups` in order, into `pass`.
fn dispatch_all(pass: &mut wgpu::ComputePass, gather: Option<&Dispatch>, groups: &[&[Dispatch]]) {
    for d in gather.into_iter().chain(groups.iter().flat_map(|g| g.iter())) {
        Gpu::dispatch(pass, &d.pipeline, &d.bind_group, &d.launch);
    }
}
