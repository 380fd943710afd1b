//! The model evaluated node by node with the CPU twins.

use super::{param_names, Metrics, OptimizerState, Schedule};
use crate::cpu::{self, AdamConfig};
use crate::data::Dataset;
use crate::graph::{NodeId, Source};
use crate::nn::{ParamSet, TrainGraph};
use crate::tensor::Tensor;

pub struct CpuProgram {
    pub model: TrainGraph,
    schedule: Schedule,
    values: Vec<Option<Tensor>>,
    moments: Vec<(Vec<f32>, Vec<f32>)>,
    adam: AdamConfig,
    step: u64,
    metrics: [f32; 3],
    /// Datasets handed to the runner, each with its current order.
    datasets: Vec<(Dataset, Vec<usize>)>,
}

impl CpuProgram {
    pub fn new(model: TrainGraph, params: &ParamSet, adam: AdamConfig) -> Self {
        let schedule = Schedule::new(&model);
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
        let mut program =
            CpuProgram { model, schedule, values, moments, adam, step: 0, metrics: [0.0; 3], datasets: Vec::new() };
        program.load_params(params);
        program
    }

    pub fn write_batch(&mut self, images: &[f32], labels: &[f32]) {
        let (i, l) = (self.model.images, self.model.labels);
        self.values[i].as_mut().unwrap().data.copy_from_slice(images);
        self.values[l].as_mut().unwrap().data.copy_from_slice(labels);
    }

    /// Keeps a copy of `data`; returns its index.
    pub fn upload_dataset(&mut self, data: &Dataset) -> usize {
        self.datasets.push((data.clone(), Vec::new()));
        self.datasets.len() - 1
    }

    pub fn set_order(&mut self, index: usize, order: &[usize]) {
        self.datasets[index].1 = order.to_vec();
    }

    /// The batch at `first` of dataset `index`'s order (`Dataset::batch_at`).
    pub fn select_batch(&mut self, index: usize, first: usize) {
        let (data, order) = &self.datasets[index];
        let (images, labels) = data.batch_at(order, first, self.model.batch());
        self.write_batch(&images, &labels);
    }

    fn update_metrics(&mut self) {
        let value = |id: NodeId| self.values[id].as_ref().unwrap();
        let loss = value(self.model.loss).data[0];
        cpu::batch_metrics(value(self.model.logits), value(self.model.labels), loss, &mut self.metrics);
    }

    pub fn forward(&mut self) {
        run(&self.model, &mut self.values, &self.schedule.forward);
        self.update_metrics();
    }

    pub fn train_step(&mut self) {
        self.forward();
        run(&self.model, &mut self.values, &self.schedule.backward);
        self.step += 1;
        for (k, &(param, grad)) in self.model.grads.iter().enumerate() {
            // The gradient stays in place (readable after the step) while the parameter updates.
            let [Some(grad), Some(param)] = self.values.get_disjoint_mut([grad, param]).expect("distinct nodes") else {
                unreachable!("a training step computes every gradient and holds every parameter")
            };
            let (m, v) = &mut self.moments[k];
            cpu::adam_step(&self.adam, self.step, &grad.data, &mut param.data, m, v);
        }
    }

    pub fn metrics(&self) -> Metrics {
        Metrics::from_sums(&self.metrics)
    }

    pub fn reset_metrics(&mut self) {
        self.metrics = [0.0; 3];
    }

    pub fn read(&self, node: NodeId) -> Tensor {
        self.values[node].clone().unwrap_or_else(|| Tensor::zeros(self.model.graph.shape(node)))
    }

    pub fn params(&self) -> ParamSet {
        let tensors = param_names(&self.model).into_iter().map(|(id, name)| (name, self.read(id))).collect();
        ParamSet { tensors }
    }

    pub fn load_params(&mut self, params: &ParamSet) {
        for (id, name) in param_names(&self.model) {
            let value = params.get(&name).unwrap_or_else(|| panic!("no value for parameter {name}"));
            self.values[id] = Some(value.clone());
        }
    }

    pub fn optimizer_state(&self) -> OptimizerState {
        let moments = self.model.grads.iter().zip(&self.moments).map(|(&(p, _), (m, v))| {
            let shape = self.model.graph.shape(p);
            let name = self.model.graph.nodes[p].name.clone();
            (name, Tensor::new(shape, m.clone()), Tensor::new(shape, v.clone()))
        });
        OptimizerState { step: self.step, moments: moments.collect() }
    }

    pub fn load_optimizer_state(&mut self, state: &OptimizerState) {
        self.step = state.step;
        for ((m, v), (_, sm, sv)) in self.moments.iter_mut().zip(&state.moments) {
            m.copy_from_slice(&sm.data);
            v.copy_from_slice(&sv.data);
        }
    }
}

/// Evaluates `nodes` in order, each from values computed before it.
fn run(model: &TrainGraph, values: &mut [Option<Tensor>], nodes: &[NodeId]) {
    for &id in nodes {
        let node = &model.graph.nodes[id];
        let Source::Op(op) = &node.source else { continue };
        let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| values[i].as_ref().unwrap()).collect();
        let value = cpu::fast::eval(op, &inputs).expect("shapes were checked when the graph was built");
        values[id] = Some(value);
    }
}
