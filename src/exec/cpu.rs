//! The model evaluated node by node on the CPU device (each op's `cpu_fast`).

use super::{
    check_batch, check_moments, check_order, check_sample, param_names, param_values, relu_fusions, DeviceData,
    ExecError, GpuProgram, Metrics, Pending, Program, Schedule,
};
#[cfg(not(target_arch = "wasm32"))]
use super::{median_seconds_and_cores, DispatchTime};
use crate::data::Dataset;
use crate::graph::{Node, NodeId, Source};
use crate::nn::{ParamSet, TrainGraph};
use crate::ops::elementwise::relu_in_place;
use crate::ops::fast_cpu::{flush_denormals_on_every_thread, recycle, release_free_buffers};
use crate::ops::loss::batch_metrics;
#[cfg(not(target_arch = "wasm32"))]
use crate::ops::shapes_of;
use crate::optim::{adam_step_parallel, AdamConfig, OptimizerState};
use crate::tensor::Tensor;

#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
mod helpers;
#[cfg(not(target_arch = "wasm32"))]
pub use helpers::spun_seconds;

pub struct CpuProgram {
    pub model: TrainGraph,
    schedule: Schedule,
    /// For each ReLU that only rectifies its input's value (nothing else
    /// reads it), that input: the ReLU runs in place on it, as the GPU's
    /// kernels apply it while they write (`relu_fusions`).
    fused_relu: Vec<Option<NodeId>>,
    values: Vec<Option<Tensor>>,
    moments: Vec<(Vec<f32>, Vec<f32>)>,
    adam: AdamConfig,
    step: u64,
    metrics: [f32; 3],
    /// Datasets handed to the program, each with its current order.
    datasets: Vec<(Dataset, Vec<usize>)>,
}

/// A value already computed, as a `Pending` result.
fn ready<'a, T: 'a>(value: T) -> Pending<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl CpuProgram {
    pub fn new(model: TrainGraph, params: &ParamSet, adam: AdamConfig) -> Result<Self, ExecError> {
        flush_denormals_on_every_thread();
        let schedule = Schedule::new(&model);
        let fused_relu = relu_fusions(&model, &schedule, |_, _, _| true);
        let mut values = vec![None; model.graph.nodes.len()];
        for (id, node) in model.graph.nodes.iter().enumerate() {
            if node.source == Source::Input {
                values[id] = Some(Tensor::zeros(&node.shape));
            }
        }
        let moments = model.grads.iter().map(|&(p, _)| {
            let len = model.graph.shape(p).iter().product();
            (vec![0.0; len], vec![0.0; len])
        });
        let moments = moments.collect();
        let mut program = CpuProgram {
            model,
            schedule,
            fused_relu,
            values,
            moments,
            adam,
            step: 0,
            metrics: [0.0; 3],
            datasets: Vec::new(),
        };
        program.load_params(params)?;
        Ok(program)
    }

    fn set_inputs(&mut self, images: &[f32], labels: &[f32]) {
        let (i, l) = (self.model.images, self.model.labels);
        self.values[i].as_mut().expect("inputs have values").data.copy_from_slice(images);
        self.values[l].as_mut().expect("inputs have values").data.copy_from_slice(labels);
    }

    fn update_metrics(&mut self) {
        let value = |id: NodeId| self.values[id].as_ref().expect("the forward pass computed it");
        let loss = value(self.model.loss).data[0];
        batch_metrics(value(self.model.logits), value(self.model.labels), loss, &mut self.metrics);
    }

    /// Times every op of a training step on its own (each node evaluated
    /// again from the step's values), the median of `repeats`, and inside
    /// `repeats` back-to-back forward and backward passes, then Adam over
    /// all parameters: where a step's time goes on the CPU device.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile(&mut self, repeats: usize) -> Vec<DispatchTime> {
        self.train_step();
        let in_step = self.in_step_seconds(repeats);
        let nodes = self.schedule.forward.iter().chain(&self.schedule.backward);
        let mut times = Vec::new();
        for &id in nodes {
            let node = &self.model.graph.nodes[id];
            let Source::Op(op) = &node.source else { continue };
            let (name, seconds, cores, flops);
            if self.fused_relu[id].is_some() {
                // Its input's value became its own: time the ReLU in place on a copy.
                let mut copy = self.values[id].clone().expect("computed in the step");
                (seconds, cores) = median_seconds_and_cores(repeats, || relu_in_place(&mut copy.data));
                flops = op.flops(&[&node.shape], &node.shape);
                name = format!("{} (in place)", node.name);
            } else {
                let inputs = inputs_of(&self.values, node);
                // Each run's output goes back for the next, as a step's outputs do.
                let run = || recycle(op.eval_fast(&inputs).expect("computed in the step").data);
                (seconds, cores) = median_seconds_and_cores(repeats, run);
                release_free_buffers();
                flops = op.flops(&shapes_of(&inputs), &node.shape);
                name = node.name.clone();
            }
            let (kernel, cores, in_step) = (op.name(), Some(cores), Some(in_step[id]));
            times.push(DispatchTime { kernel, node: name, seconds, flops, cores, in_step });
        }
        let (adam, cores) = median_seconds_and_cores(repeats, || {
            self.step -= 1;
            self.update_params();
        });
        let params: usize = self.moments.iter().map(|(m, _)| m.len()).sum();
        times.push(DispatchTime {
            kernel: "adam",
            node: "every parameter".into(),
            seconds: adam,
            flops: 10 * params as u64,
            cores: Some(cores),
            in_step: None,
        });
        times
    }

    /// Each node's mean time over `repeats` forward and backward passes run
    /// as `train_step` runs them (Adam left out, so the parameters stay).
    #[cfg(not(target_arch = "wasm32"))]
    fn in_step_seconds(&mut self, repeats: usize) -> Vec<f64> {
        let mut seconds = vec![0.0; self.model.graph.nodes.len()];
        let CpuProgram { model, schedule, fused_relu, values, .. } = self;
        on_worker(|| {
            for _ in 0..repeats {
                for pass in [&schedule.forward, &schedule.backward] {
                    for &id in pass {
                        let start = std::time::Instant::now();
                        run_node(model, fused_relu, values, id);
                        seconds[id] += start.elapsed().as_secs_f64() / repeats as f64;
                    }
                    release_free_buffers();
                }
            }
        });
        seconds
    }

    fn update_params(&mut self) {
        self.step += 1;
        for (k, &(param, grad)) in self.model.grads.iter().enumerate() {
            // The gradient stays in place (readable after the step) while the parameter updates.
            let [Some(grad), Some(param)] = self.values.get_disjoint_mut([grad, param]).expect("distinct nodes") else {
                unreachable!("a training step computes every gradient and holds every parameter")
            };
            let (m, v) = &mut self.moments[k];
            adam_step_parallel(&self.adam, self.step, &grad.data, &mut param.data, m, v);
        }
    }

    fn value(&self, node: NodeId) -> Tensor {
        self.values[node].clone().unwrap_or_else(|| Tensor::zeros(self.model.graph.shape(node)))
    }
}

impl Program for CpuProgram {
    fn model(&self) -> &TrainGraph {
        &self.model
    }

    fn write_batch(&mut self, images: &[f32], labels: &[f32]) -> Result<(), ExecError> {
        check_batch(&self.model, images, labels)?;
        self.set_inputs(images, labels);
        Ok(())
    }

    /// Keeps a copy of `data`.
    fn upload_dataset<'a>(&'a mut self, data: &'a Dataset) -> Pending<'a, DeviceData> {
        if let Err(e) = check_sample(&self.model, data) {
            return Box::pin(std::future::ready(Err(e)));
        }
        self.datasets.push((data.clone(), Vec::new()));
        ready(DeviceData { index: self.datasets.len() - 1, len: data.len() })
    }

    fn set_order(&mut self, data: DeviceData, order: &[usize]) -> Result<(), ExecError> {
        check_order(data, order)?;
        self.datasets[data.index].1 = order.to_vec();
        Ok(())
    }

    /// The batch at `first` of the dataset's order (`Dataset::batch_at`).
    fn select_batch(&mut self, data: DeviceData, first: usize) {
        let (dataset, order) = &self.datasets[data.index];
        let (images, labels) = dataset.batch_at(order, first, self.model.batch());
        self.set_inputs(&images, &labels);
    }

    fn train_step(&mut self) {
        on_worker(|| {
            self.forward();
            run(&self.model, &self.fused_relu, &mut self.values, &self.schedule.backward);
            self.update_params();
        })
    }

    fn forward(&mut self) {
        run(&self.model, &self.fused_relu, &mut self.values, &self.schedule.forward);
        self.update_metrics();
    }

    fn metrics(&self) -> Pending<'_, Metrics> {
        ready(Metrics::from_sums(&self.metrics))
    }

    fn reset_metrics(&mut self) {
        self.metrics = [0.0; 3];
    }

    fn read(&self, node: NodeId) -> Pending<'_, Tensor> {
        ready(self.value(node))
    }

    fn params(&self) -> Pending<'_, ParamSet> {
        ready(ParamSet {
            tensors: param_names(&self.model).into_iter().map(|(id, name)| (name, self.value(id))).collect(),
        })
    }

    fn load_params(&mut self, params: &ParamSet) -> Result<(), ExecError> {
        for (id, value) in param_values(&self.model, params)? {
            self.values[id] = Some(value.clone());
        }
        Ok(())
    }

    fn optimizer_state(&self) -> Pending<'_, OptimizerState> {
        let moments = self.model.grads.iter().zip(&self.moments).map(|(&(p, _), (m, v))| {
            let shape = self.model.graph.shape(p);
            let name = self.model.graph.nodes[p].name.clone();
            (name, Tensor::new(shape, m.clone()), Tensor::new(shape, v.clone()))
        });
        ready(OptimizerState { step: self.step, moments: moments.collect() })
    }

    fn load_optimizer_state(&mut self, state: &OptimizerState) -> Result<(), ExecError> {
        check_moments(&self.model, state)?;
        self.step = state.step;
        for ((m, v), (_, sm, sv)) in self.moments.iter_mut().zip(&state.moments) {
            m.copy_from_slice(&sm.data);
            v.copy_from_slice(&sv.data);
        }
        Ok(())
    }

    fn as_gpu(&mut self) -> Option<&mut GpuProgram> {
        None
    }

    fn as_cpu(&mut self) -> Option<&mut CpuProgram> {
        Some(self)
    }
}

/// Evaluates `nodes` in order, each from values computed before it.
fn run(model: &TrainGraph, fused_relu: &[Option<NodeId>], values: &mut [Option<Tensor>], nodes: &[NodeId]) {
    for &id in nodes {
        run_node(model, fused_relu, values, id);
    }
    release_free_buffers();
}

/// Computes node `id`'s value from its inputs' (nothing for inputs and parameters).
fn run_node(model: &TrainGraph, fused_relu: &[Option<NodeId>], values: &mut [Option<Tensor>], id: NodeId) {
    let node = &model.graph.nodes[id];
    let Source::Op(op) = &node.source else { return };
    // Last step's value of this node: the buffer for some op's output now.
    if let Some(old) = values[id].take() {
        recycle(old.data);
    }
    if let Some(input) = fused_relu[id] {
        let mut value = values[input].take().expect("computed before");
        relu_in_place(&mut value.data);
        values[id] = Some(value);
        return;
    }
    let value = op.eval_fast(&inputs_of(values, node)).expect("shapes were checked when the graph was built");
    values[id] = Some(value);
}

/// The values of `node`'s inputs, computed before it.
fn inputs_of<'a>(values: &'a [Option<Tensor>], node: &Node) -> Vec<&'a Tensor> {
    node.inputs.iter().map(|&i| values[i].as_ref().expect("computed before")).collect()
}

/// Runs `f` on one of the worker threads, the others helping
/// (`helpers::run_helped`), where there are threads; else here.
fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    return helpers::run_helped(f);
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    return f();
}
