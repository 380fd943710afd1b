//! Runs a compiled model on a device: the GPU (one submission per training
//! step) or the CPU. Both are a [`Program`], so training, evaluation and the
//! web page are written once against `dyn Program`.

mod cpu;
mod gpu;
mod places;
mod plan;
mod record;

pub use cpu::CpuProgram;
pub use gpu::{DispatchTime, GpuProgram};
pub use plan::{relu_fusions, BufferPlan, Schedule};

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError};
use crate::graph::NodeId;
use crate::nn::{ConvLowering, ParamSet, TrainGraph};
use crate::optim::{AdamConfig, OptimizerState};
use crate::tensor::Tensor;

/// Where a model runs.
#[derive(Clone)]
pub enum Device {
    Gpu(Rc<Gpu>),
    Cpu,
}

impl Device {
    /// How models for this device lower their convolutions.
    pub fn conv_lowering(&self) -> ConvLowering {
        match self {
            Device::Gpu(gpu) => ConvLowering::for_gpu(gpu.tiling),
            Device::Cpu => ConvLowering::Direct,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(gpu) => gpu.adapter_name(),
            Device::Cpu if crate::ops::fast_cpu::avx512_in_use() => {
                "CPU (AVX-512: shift convolutions read in place, else im2col + GEMM)".to_string()
            }
            Device::Cpu => "CPU (im2col + GEMM)".to_string(),
        }
    }
}

/// What can go wrong running a compiled model.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error("a batch of this model holds {expected} {what}, but {got} were given")]
    BatchSize { what: &'static str, expected: usize, got: usize },
    #[error("the parameters have no {0}; they are not this model's")]
    MissingParam(String),
    #[error("the dataset's examples have {got} values each, but the model takes {expected}")]
    SampleSize { expected: usize, got: usize },
    #[error("an order of {len} examples lists example {index}, which is not in the dataset")]
    BadOrder { len: usize, index: usize },
}

/// A result the device may still be computing: awaited in the browser,
/// `pollster::block_on` natively.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, ExecError>> + 'a>>;

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

/// A dataset handed to a program once (`Program::upload_dataset`). On a GPU its
/// bytes stay in GPU memory and every batch is gathered there by a kernel, so
/// training uploads no images; the CPU program keeps a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceData {
    index: usize,
    /// Examples in the dataset.
    pub len: usize,
}

/// A compiled model on one device: buffers (and, on a GPU, pipelines and
/// bind groups) are made once when it is compiled.
pub trait Program {
    fn model(&self) -> &TrainGraph;
    /// Sets the next batch: the model's images (batch × sample values) and labels (−1 = padding).
    fn write_batch(&mut self, images: &[f32], labels: &[f32]) -> Result<(), ExecError>;
    /// Copies `data` to the device once; batches are then chosen with `set_order` and `select_batch`.
    fn upload_dataset<'a>(&'a mut self, data: &'a Dataset) -> Pending<'a, DeviceData>;
    /// The order in which `select_batch` walks `data` (a permutation of some of
    /// its examples); written to the device once, e.g. per epoch.
    fn set_order(&mut self, data: DeviceData, order: &[usize]) -> Result<(), ExecError>;
    /// The next step's batch: the examples at positions `first ..` of `data`'s
    /// order, padded past its end with label −1 (as `Dataset::batch_at`).
    fn select_batch(&mut self, data: DeviceData, first: usize);
    /// Forward, backward and one Adam step on the current batch; updates the metrics.
    fn train_step(&mut self);
    /// `count` training steps on the batches at positions `first`,
    /// `first + batch`, … of `data`'s order: the same as `select_batch` and
    /// `train_step` for each, but a GPU records them into one submission.
    fn train_steps(&mut self, data: DeviceData, first: usize, count: usize) {
        let batch = self.model().batch();
        for k in 0..count {
            self.select_batch(data, first + k * batch);
            self.train_step();
        }
    }
    /// Forward pass only (logits, loss, feature maps); updates the metrics.
    fn forward(&mut self);
    fn metrics(&self) -> Pending<'_, Metrics>;
    fn reset_metrics(&mut self);
    /// The current value of a node (logits, a feature map, …).
    fn read(&self, node: NodeId) -> Pending<'_, Tensor>;
    fn params(&self) -> Pending<'_, ParamSet>;
    fn load_params(&mut self, params: &ParamSet) -> Result<(), ExecError>;
    fn optimizer_state(&self) -> Pending<'_, OptimizerState>;
    fn load_optimizer_state(&mut self, state: &OptimizerState) -> Result<(), ExecError>;
    /// The GPU program, for what only it can report (kernel profiles, dispatch counts).
    fn as_gpu(&mut self) -> Option<&mut GpuProgram>;
    /// The CPU program, for its op profile.
    fn as_cpu(&mut self) -> Option<&mut CpuProgram>;
}

/// A compiled model on some device.
pub type Runner = Box<dyn Program>;

/// Compiles `model` with initial `params` for `device`.
pub async fn compile(
    device: &Device,
    model: TrainGraph,
    params: &ParamSet,
    adam: AdamConfig,
) -> Result<Runner, ExecError> {
    Ok(match device {
        Device::Gpu(gpu) => Box::new(GpuProgram::compile(gpu.clone(), model, params, adam).await?),
        Device::Cpu => Box::new(CpuProgram::new(model, params, adam)?),
    })
}

/// The middle of timing samples (the upper middle for an even count; NaN
/// for none): robust to the odd slow run a busy machine adds.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
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

/// Each parameter node of `model` with its value in `params`, or the first one missing.
fn param_values<'a>(model: &TrainGraph, params: &'a ParamSet) -> Result<Vec<(NodeId, &'a Tensor)>, ExecError> {
    param_names(model)
        .into_iter()
        .map(|(id, name)| match params.get(&name) {
            Some(value) if value.shape == model.graph.shape(id) => Ok((id, value)),
            _ => Err(ExecError::MissingParam(format!("{name} of shape {:?}", model.graph.shape(id)))),
        })
        .collect()
}

/// Checks a batch written by the host against the model's input shapes.
fn check_batch(model: &TrainGraph, images: &[f32], labels: &[f32]) -> Result<(), ExecError> {
    let batch = model.batch();
    if labels.len() != batch {
        return Err(ExecError::BatchSize { what: "labels", expected: batch, got: labels.len() });
    }
    let values = batch * model.sample_len();
    if images.len() != values {
        return Err(ExecError::BatchSize { what: "image values", expected: values, got: images.len() });
    }
    Ok(())
}

/// Checks that `data` fits the model's input and `order` lists only its examples.
fn check_order(data: DeviceData, order: &[usize]) -> Result<(), ExecError> {
    match order.iter().find(|&&i| i >= data.len) {
        Some(&index) => Err(ExecError::BadOrder { len: data.len, index }),
        None if order.len() > data.len => Err(ExecError::BadOrder { len: data.len, index: data.len }),
        None => Ok(()),
    }
}

/// Checks that a dataset's examples have the model's sample size.
fn check_sample(model: &TrainGraph, data: &Dataset) -> Result<(), ExecError> {
    let (expected, got) = (model.sample_len(), data.sample_len());
    if expected != got {
        return Err(ExecError::SampleSize { expected, got });
    }
    Ok(())
}

/// Checks Adam's state against the model's parameters.
fn check_moments(model: &TrainGraph, state: &OptimizerState) -> Result<(), ExecError> {
    for (&(param, _), (name, m, v)) in model.grads.iter().zip(&state.moments) {
        let shape = model.graph.shape(param);
        if m.shape != shape || v.shape != shape || name != &model.graph.nodes[param].name {
            return Err(ExecError::MissingParam(format!("Adam moments for {name} of shape {shape:?}")));
        }
    }
    if state.moments.len() != model.grads.len() {
        return Err(ExecError::MissingParam(format!("Adam moments for all {} parameters", model.grads.len())));
    }
    Ok(())
}

/// CPU time this process has used so far, all threads together (native).
#[cfg(not(target_arch = "wasm32"))]
fn process_cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    if ok {
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    } else {
        f64::NAN
    }
}

/// What `f` returns, and how many cores were busy on average while it ran
/// (process CPU time over wall time, less the CPU device's helper threads'
/// spinning for work): below the thread count, some sat idle, waiting for
/// the others or for work.
#[cfg(not(target_arch = "wasm32"))]
pub fn with_cores_busy<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let (wall, cpu) = (now(), process_cpu_seconds() - cpu::spun_seconds());
    let result = f();
    (result, (process_cpu_seconds() - cpu::spun_seconds() - cpu) / (now() - wall))
}

/// `median_seconds`, and the cores busy on average over all the repeats.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn median_seconds_and_cores(repeats: usize, f: impl FnMut()) -> (f64, f64) {
    with_cores_busy(|| median_seconds(repeats, f))
}

/// Median seconds of `repeats` (at least one) runs of `f`.
pub(crate) fn median_seconds(repeats: usize, mut f: impl FnMut()) -> f64 {
    let samples = (0..repeats.max(1))
        .map(|_| {
            let start = crate::exec::now();
            f();
            crate::exec::now() - start
        })
        .collect();
    median(samples)
}
