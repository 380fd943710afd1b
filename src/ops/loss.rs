//! Softmax cross-entropy (mean over the labelled rows), its gradient, and
//! argmax (plus the `batch_metrics` kernel that accumulates loss and
//! accuracy on the device). A negative label marks a padding row, which the
//! loss, its gradient and the metrics ignore (PyTorch's `ignore_index`).
//!
//! Gradient rule: the loss is the graph's root, so its own gradient is 1 and
//! dlogits = CrossEntropyBackward(logits, labels) = (softmax − onehot) / rows,
//! one kernel that needs no incoming gradient. Labels get none.

use super::cases::{
    dispatch_case, gradient_case, single, Buffer, Case, GradientCase, Seeds, Work, EXACT, SMALL_SUMS, TRANSCENDENTAL,
};
use super::kernel::{word, Kernel, KernelParams, Launch, ShaderFile, Tiling, WORKGROUP_SIZE};
use super::{elementwise_flops, Family, Gradient, GraphError, NodeId, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::Tensor;

const CROSS_ENTROPY: ShaderFile =
    ShaderFile { name: "cross_entropy.wgsl", source: include_str!("../../shaders/cross_entropy.wgsl") };
const ARGMAX_SHADER: ShaderFile = ShaderFile { name: "argmax.wgsl", source: include_str!("../../shaders/argmax.wgsl") };

kernel_params! {
    /// CrossEntropyParams in cross_entropy.wgsl.
    pub struct CrossEntropyParams {
        pub batch: u32,
        pub classes: u32,
    }
}

kernel_params! {
    /// ArgmaxParams in argmax.wgsl.
    pub struct ArgmaxParams {
        pub rows: u32,
        pub cols: u32,
    }
}

pub const CROSS_ENTROPY_FORWARD: Kernel =
    Kernel::new(CROSS_ENTROPY, "cross_entropy_forward", &CrossEntropyParams::LAYOUT, 2, 1);
pub const CROSS_ENTROPY_BACKWARD: Kernel =
    Kernel::new(CROSS_ENTROPY, "cross_entropy_backward", &CrossEntropyParams::LAYOUT, 2, 1);
pub const ARGMAX: Kernel = Kernel::new(ARGMAX_SHADER, "argmax_rows", &ArgmaxParams::LAYOUT, 1, 1);
/// metrics += (loss · labelled rows, correct rows, labelled rows); bindings: logits, labels, loss, metrics.
pub const BATCH_METRICS: Kernel = Kernel::new(ARGMAX_SHADER, "batch_metrics", &ArgmaxParams::LAYOUT, 3, 1);

pub const FAMILY: Family = Family {
    name: "loss",
    shaders: &[CROSS_ENTROPY, ARGMAX_SHADER],
    kernels: &[&CROSS_ENTROPY_FORWARD, &CROSS_ENTROPY_BACKWARD, &ARGMAX, &BATCH_METRICS],
    cases,
    gradients,
};

/// logits [N,K], labels [N] -> [1], mean softmax cross-entropy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CrossEntropy;

/// logits [N,K], labels [N] -> dlogits [N,K] = (softmax − onehot) / N.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CrossEntropyBackward;

/// x [N,K] -> [N], index of each row's maximum (first on ties).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Argmax;

fn logits_and_labels<'a>(s: &Shapes<'a>) -> Result<&'a [usize], String> {
    let (logits, labels) = (s.rank(0, 2, "logits")?, s.rank(1, 1, "labels")?);
    if labels[0] != logits[0] {
        return Err("one label per row of logits is needed".into());
    }
    Ok(logits)
}

fn loss_params(logits: &[usize]) -> CrossEntropyParams {
    CrossEntropyParams { batch: word(logits[0]), classes: word(logits[1]) }
}

impl OpDef for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        logits_and_labels(s).map(|_| vec![1])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (logits, labels) = (g.input(0), g.input(1));
        Ok(vec![g.apply(0, CrossEntropyBackward, &[logits, labels])?, None])
    }

    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        vec![cross_entropy(inputs[0], inputs[1])]
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        // One workgroup reduces the whole batch.
        Some(Launch::new(&CROSS_ENTROPY_FORWARD, &loss_params(inputs[0]), WORKGROUP_SIZE as usize))
    }
}

impl OpDef for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "cross_entropy_backward"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        logits_and_labels(s).map(<[usize]>::to_vec)
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// dz[n,k] = (softmax(z[n])[k] − [k = label_n]) / labelled rows, 0 on padding rows
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (logits, labels) = (inputs[0], inputs[1]);
        let classes = logits.shape[1];
        let batch = labelled_rows(labels);
        let mut dz = Vec::with_capacity(logits.len());
        for (row, &label) in logits.data.chunks(classes).zip(&labels.data) {
            if label < 0.0 {
                dz.extend(std::iter::repeat_n(0.0, classes));
                continue;
            }
            let lse = log_sum_exp(row);
            for (k, &z) in row.iter().enumerate() {
                let onehot = if k == label as usize { 1.0 } else { 0.0 };
                dz.push(((z - lse).exp() - onehot) / batch);
            }
        }
        dz
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&CROSS_ENTROPY_BACKWARD, &loss_params(inputs[0]), inputs[0][0]))
    }
}

impl OpDef for Argmax {
    fn name(&self) -> &'static str {
        "argmax"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        Ok(vec![s.rank(0, 2, "x")?[0]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name()) // piecewise constant
    }

    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        argmax(inputs[0])
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let x = inputs[0];
        Some(Launch::new(&ARGMAX, &ArgmaxParams { rows: word(x[0]), cols: word(x[1]) }, x[0]))
    }
}

/// log Σ_k exp(z_k), computed stably around the maximum.
fn log_sum_exp(row: &[f32]) -> f32 {
    let largest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    largest + row.iter().map(|&z| (z - largest).exp()).sum::<f32>().ln()
}

/// Rows that carry a label, at least 1 (an all-padding batch has loss 0).
fn labelled_rows(labels: &Tensor) -> f32 {
    labels.data.iter().filter(|&&l| l >= 0.0).count().max(1) as f32
}

/// mean over labelled rows of (log Σ_k exp z[n,k] − z[n, label_n])
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> f32 {
    let classes = logits.shape[1];
    let total: f32 = logits
        .data
        .chunks(classes)
        .zip(&labels.data)
        .filter(|(_, &label)| label >= 0.0)
        .map(|(row, &label)| log_sum_exp(row) - row[label as usize])
        .sum();
    total / labelled_rows(labels)
}

fn row_argmax(row: &[f32]) -> usize {
    (1..row.len()).fold(0, |best, k| if row[k] > row[best] { k } else { best })
}

/// Index of each row's maximum (the first on ties), as f32.
pub fn argmax(x: &Tensor) -> Vec<f32> {
    x.data.chunks(x.shape[1]).map(|row| row_argmax(row) as f32).collect()
}

/// metrics += (loss · labelled rows, rows whose argmax is the label, labelled
/// rows): the twin of the `batch_metrics` kernel.
pub fn batch_metrics(logits: &Tensor, labels: &Tensor, loss: f32, metrics: &mut [f32; 3]) {
    let mut correct = 0;
    let mut labelled = 0;
    for (row, &label) in logits.data.chunks(logits.shape[1]).zip(&labels.data) {
        if label >= 0.0 {
            labelled += 1;
            correct += (row_argmax(row) == label as usize) as usize;
        }
    }
    metrics[0] += loss * labelled as f32;
    metrics[1] += correct as f32;
    metrics[2] += labelled as f32;
}

/// Accumulates the batch metrics of logits [rows, cols] (one workgroup reduces the whole batch).
pub fn batch_metrics_launch(rows: usize, cols: usize) -> Launch {
    Launch::new(&BATCH_METRICS, &ArgmaxParams { rows: word(rows), cols: word(cols) }, WORKGROUP_SIZE as usize)
}

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for [n, k] in [[1, 1], [1, 10], [5, 3], [64, 10], [130, 17]] {
        let logits = Tensor::uniform(&[n, k], -8.0, 8.0, seeds.seed());
        let mut labels = Tensor::labels(n, k, seeds.seed());
        if n > 64 {
            // Padding rows (label −1) are ignored by the loss and the metrics.
            labels.data[n - 7..].iter_mut().for_each(|l| *l = -1.0);
        }
        // Two accumulations of the metrics onto a non-zero start.
        let loss = cross_entropy(&logits, &labels);
        let coarse = seeds.coarse(&[n, k]);
        let mut expected = [0.5, 1.0, 2.0];
        let start = expected.to_vec();
        for _ in 0..2 {
            batch_metrics(&coarse, &labels, loss, &mut expected);
        }
        let launch = batch_metrics_launch(n, k);
        let work = Work::Dispatches {
            buffers: vec![
                Buffer::Floats(coarse.data),
                Buffer::Floats(labels.data.clone()),
                Buffer::Floats(vec![loss]),
                Buffer::Floats(start),
            ],
            dispatches: vec![(launch.clone(), vec![0, 1, 2, 3]), (launch, vec![0, 1, 2, 3])],
            read: vec![3],
            expected: expected.to_vec(),
        };
        cases.push(dispatch_case("batch_metrics", format!("[{n}, {k}] [{n}]"), SMALL_SUMS, work));
        cases.push(single(CrossEntropy, vec![logits.clone(), labels.clone()], TRANSCENDENTAL));
        cases.push(single(CrossEntropyBackward, vec![logits, labels], TRANSCENDENTAL));
        cases.push(single(Argmax, vec![seeds.coarse(&[n, k])], EXACT));
    }
    cases
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    let mut cases = Vec::new();
    for [n, k] in [[1, 1], [1, 10], [5, 3], [16, 10]] {
        let logits = Tensor::uniform(&[n, k], -3.0, 3.0, seeds.seed());
        let mut labels = Tensor::labels(n, k, seeds.seed());
        if n > 4 {
            labels.data[1] = -1.0; // a padding row: no loss, no gradient
        }
        // Labels are not differentiable.
        cases.push(GradientCase {
            differentiable: vec![true, false],
            ..gradient_case(CrossEntropy, vec![logits, labels])
        });
    }
    cases
}
