//! Runs a compiled model on a device: the GPU (one submission per training
//! step) or the CPU twins. Both runners take the same calls, so training,
//! evaluation and the web page are written once.

mod cpu;
mod gpu;
mod plan;

pub use cpu::CpuProgram;
pub use gpu::{DispatchTime, GpuProgram};
pub use plan::{relu_fusions, BufferPlan, Schedule};

use std::rc::Rc;

use crate::cpu::AdamConfig;
use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError};
use crate::graph::NodeId;
use crate::nn::{ParamSet, TrainGraph};
use crate::tensor::Tensor;

/// Where a model runs.
#[derive(Clone)]
pub enum Device {
    Gpu(Rc<Gpu>),
    Cpu,
}

impl Device {
    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(gpu) => gpu.adapter_name(),
            Device::Cpu => "CPU (im2col + GEMM)".to_string(),
        }
    }
}

/// Sums since the last reset: loss · samples, correct predictions, samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    pub loss_sum: f64,
    pub correct: f64,
    pub samples: f64,
}

impl Metrics {
    pub fn from_sums(sums: &[f32]) -> Self {
        Metrics { loss_sum: sums[0] as f64, correct: sums[1] as f64, samples: sums[2] as f64 }
    }

    pub fn loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1.0)
    }

    pub fn accuracy(&self) -> f64 {
        self.correct / self.samples.max(1.0)
    }
}

/// Adam's state: the step count and each parameter's first and second moments.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    pub step: u64,
    /// (parameter name, m, v) in parameter order.
    pub moments: Vec<(String, Tensor, Tensor)>,
}

/// A dataset handed to a runner once (`Runner::upload_dataset`). On a GPU its
/// bytes stay in GPU memory and every batch is gathered there by a kernel, so
/// training uploads no images; the CPU runner keeps a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceData {
    index: usize,
    /// Examples in the dataset.
    pub len: usize,
}

/// A compiled model on one device.
#[allow(clippy::large_enum_variant)] // one runner per model; never moved in a hot path
pub enum Runner {
    Gpu(GpuProgram),
    Cpu(CpuProgram),
}

impl Runner {
    /// Compiles `model` with initial `params`: buffers, pipelines and bind groups are made once here.
    pub async fn compile(
        device: &Device,
        model: TrainGraph,
        params: &ParamSet,
        adam: AdamConfig,
    ) -> Result<Runner, GpuError> {
        Ok(match device {
            Device::Gpu(gpu) => Runner::Gpu(GpuProgram::compile(gpu.clone(), model, params, adam).await?),
            Device::Cpu => Runner::Cpu(CpuProgram::new(model, params, adam)),
        })
    }

    pub fn model(&self) -> &TrainGraph {
        match self {
            Runner::Gpu(p) => &p.model,
            Runner::Cpu(p) => &p.model,
        }
    }

    /// Sets the next batch: images [batch, 1, 28, 28] and labels [batch] (−1 = padding).
    pub fn write_batch(&mut self, images: &[f32], labels: &[f32]) {
        let batch = self.model().batch();
        assert_eq!(labels.len(), batch, "one label per batch row");
        assert_eq!(images.len(), batch * 28 * 28, "28×28 pixels per batch row");
        match self {
            Runner::Gpu(p) => p.write_batch(images, labels),
            Runner::Cpu(p) => p.write_batch(images, labels),
        }
    }

    /// Copies `data` to the device once; batches are then chosen with `set_order` and `select_batch`.
    pub async fn upload_dataset(&mut self, data: &Dataset) -> Result<DeviceData, GpuError> {
        let index = match self {
            Runner::Gpu(p) => p.upload_dataset(data).await?,
            Runner::Cpu(p) => p.upload_dataset(data),
        };
        Ok(DeviceData { index, len: data.len() })
    }

    /// The order in which `select_batch` walks `data` (a permutation of some of
    /// its examples); written to the device once, e.g. per epoch.
    pub fn set_order(&mut self, data: DeviceData, order: &[usize]) {
        match self {
            Runner::Gpu(p) => p.set_order(data.index, order),
            Runner::Cpu(p) => p.set_order(data.index, order),
        }
    }

    /// The next step's batch: the examples at positions `first ..` of `data`'s
    /// order, padded past its end with label −1 (as `Dataset::batch`).
    pub fn select_batch(&mut self, data: DeviceData, first: usize) {
        match self {
            Runner::Gpu(p) => p.select_batch(data.index, first),
            Runner::Cpu(p) => p.select_batch(data.index, first),
        }
    }

    /// Forward, backward and one Adam step on the current batch; updates the metrics.
    pub fn train_step(&mut self) {
        match self {
            Runner::Gpu(p) => p.train_step(),
            Runner::Cpu(p) => p.train_step(),
        }
    }

    /// Forward pass only (logits, loss, feature maps); updates the metrics.
    pub fn forward(&mut self) {
        match self {
            Runner::Gpu(p) => p.forward(),
            Runner::Cpu(p) => p.forward(),
        }
    }

    pub async fn metrics(&self) -> Result<Metrics, GpuError> {
        match self {
            Runner::Gpu(p) => p.metrics().await,
            Runner::Cpu(p) => Ok(p.metrics()),
        }
    }

    pub fn reset_metrics(&mut self) {
        match self {
            Runner::Gpu(p) => p.reset_metrics(),
            Runner::Cpu(p) => p.reset_metrics(),
        }
    }

    /// The current value of a node (logits, a feature map, …).
    pub async fn read(&self, node: NodeId) -> Result<Tensor, GpuError> {
        match self {
            Runner::Gpu(p) => p.read(node).await,
            Runner::Cpu(p) => Ok(p.read(node)),
        }
    }

    pub async fn params(&self) -> Result<ParamSet, GpuError> {
        match self {
            Runner::Gpu(p) => p.params().await,
            Runner::Cpu(p) => Ok(p.params()),
        }
    }

    pub fn load_params(&mut self, params: &ParamSet) {
        match self {
            Runner::Gpu(p) => p.load_params(params),
            Runner::Cpu(p) => p.load_params(params),
        }
    }

    pub async fn optimizer_state(&self) -> Result<OptimizerState, GpuError> {
        match self {
            Runner::Gpu(p) => p.optimizer_state().await,
            Runner::Cpu(p) => Ok(p.optimizer_state()),
        }
    }

    pub fn load_optimizer_state(&mut self, state: &OptimizerState) {
        match self {
            Runner::Gpu(p) => p.load_optimizer_state(state),
            Runner::Cpu(p) => p.load_optimizer_state(state),
        }
    }
}

/// Seconds since an arbitrary start, for timing on native and in the browser.
pub fn now() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() / 1000.0
    }
}

/// Parameter names of a model in declaration order.
fn param_names(model: &TrainGraph) -> Vec<(NodeId, String)> {
    model.graph.params().into_iter().map(|id| (id, model.graph.nodes[id].name.clone())).collect()
}
