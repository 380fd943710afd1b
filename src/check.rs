//! Every kernel against its CPU twin on random inputs: the cases, the
//! tolerances and the comparison. `octconv check` and the test suite both run
//! these, so what a user checks on their GPU is exactly what CI checks.

use crate::cpu::{self, AdamConfig};
use crate::data::{epoch_order, Dataset, PIXELS};
use crate::gpu::kernels::{self, Tiling};
use crate::gpu::{Gpu, GpuError};
use crate::ops::Op;
use crate::tensor::Tensor;

/// Allowed difference: |gpu − cpu| ≤ abs + rel · |cpu| for every element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
}

/// Ops that only move, pick or compare values are exact; sums of a few
/// hundred products match to float rounding (the GPU may fuse multiply-adds).
const EXACT: Tolerance = Tolerance { abs: 0.0, rel: 0.0 };
const SMALL_SUMS: Tolerance = Tolerance { abs: 1e-5, rel: 1e-5 };
/// Long sums (weight gradients over batch × height × width, conv input
/// gradients, which the CPU scatters and the GPU gathers in another order):
/// float rounding grows with the number of terms and their order.
const LONG_SUMS: Tolerance = Tolerance { abs: 1e-4, rel: 1e-4 };
/// exp and log differ in the last bits between drivers.
const TRANSCENDENTAL: Tolerance = Tolerance { abs: 1e-6, rel: 1e-5 };

/// What one case computes.
pub enum Work {
    Op {
        op: Op,
        inputs: Vec<Tensor>,
        /// The op's kernel also applies the ReLU that follows it (`Launch::fuse_relu`).
        relu_after: bool,
    },
    /// acc += x
    Accumulate { acc: Tensor, x: Tensor },
    /// Three Adam steps on one parameter tensor.
    Adam { param: Tensor, grads: Vec<Tensor> },
    /// A batch gathered from a dataset held as bytes, at `first` of a shuffled order.
    Gather { data: Dataset, order: Vec<usize>, first: usize, batch: usize },
    /// Two accumulations of the batch metrics.
    Metrics { logits: Tensor, labels: Tensor, loss: Tensor },
}

/// One kernel on one set of inputs.
pub struct Case {
    /// The op computed (an op may run on another op's kernel, e.g. a stride-1
    /// conv input gradient on the forward conv kernel).
    pub op: &'static str,
    pub kernel: &'static str,
    pub shape: String,
    pub tolerance: Tolerance,
    /// The variant of the heavy kernels the case runs (both are checked).
    pub tiling: Tiling,
    pub work: Work,
}

/// The measured difference of one case.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub op: &'static str,
    pub kernel: &'static str,
    pub shape: String,
    pub max_abs: f32,
    pub max_rel: f32,
    pub passed: bool,
}

/// Largest absolute and relative difference, and whether every element is within `tol`.
pub fn compare(gpu: &[f32], cpu: &[f32], tol: Tolerance) -> (f32, f32, bool) {
    let mut max_abs = 0.0f32;
    let mut max_rel = 0.0f32;
    let mut passed = gpu.len() == cpu.len();
    for (&g, &c) in gpu.iter().zip(cpu) {
        let diff = (g - c).abs();
        max_abs = max_abs.max(diff);
        if c != 0.0 {
            max_rel = max_rel.max(diff / c.abs());
        }
        // NaN fails this test, as it should.
        let within = diff <= tol.abs + tol.rel * c.abs();
        if !within {
            passed = false;
        }
    }
    (max_abs, max_rel, passed)
}

/// Inputs on a coarse grid of {−1, −½, 0, ½, 1} so that ties and exact zeros occur.
fn coarse(shape: &[usize], seed: u64) -> Tensor {
    let mut t = Tensor::uniform(shape, -1.0, 1.0, seed);
    t.data.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
    t
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform(shape, -1.0, 1.0, seed)
}

fn op_case(op: Op, inputs: Vec<Tensor>, tolerance: Tolerance) -> Case {
    tiled_case(op, inputs, tolerance, Tiling::Registers)
}

fn tiled_case(op: Op, inputs: Vec<Tensor>, tolerance: Tolerance, tiling: Tiling) -> Case {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let output = op.output_shape(&shapes).expect("check cases have valid shapes");
    let kernel = kernels::launch_for(&op, &shapes, &output, tiling).map_or("none", |l| l.kernel.entry);
    let shape = shapes.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" ");
    Case { op: op.name(), kernel, shape, tolerance, tiling, work: Work::Op { op, inputs, relu_after: false } }
}

/// The case of a convolution or matrix product in each tiling variant.
fn both_tilings(op: Op, inputs: Vec<Tensor>, tolerance: Tolerance) -> [Case; 2] {
    [Tiling::Registers, Tiling::Workgroup].map(|tiling| tiled_case(op.clone(), inputs.clone(), tolerance, tiling))
}

/// Conv cases: (batch, in channels, height, width, out channels, kernel, stride, padding).
const CONV_SHAPES: [[usize; 8]; 7] = [
    [1, 1, 5, 7, 1, 3, 1, 1],
    [2, 3, 9, 11, 17, 5, 2, 2],
    [3, 17, 8, 6, 8, 1, 1, 0],
    [2, 8, 13, 13, 3, 3, 2, 0],
    [1, 3, 4, 4, 2, 5, 1, 2],
    // The seed network's conv2 H→H and conv3 H→H at batch 4.
    [4, 8, 14, 14, 16, 3, 1, 1],
    [4, 16, 14, 14, 64, 3, 1, 1],
];

/// Pool / upsample / element-wise cases: NCHW shapes, odd and even, 1 channel and 17.
const MAP_SHAPES: [[usize; 4]; 5] = [[1, 1, 2, 2], [2, 3, 7, 9], [1, 17, 6, 5], [3, 8, 28, 28], [64, 8, 14, 14]];

/// Linear cases: (batch, in features, out features).
const LINEAR_SHAPES: [[usize; 3]; 5] = [[1, 1, 1], [3, 17, 5], [2, 65, 129], [64, 3136, 256], [64, 256, 10]];

/// Every kernel's cases, with a fixed seed so a failure can be reproduced.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut seed = 0u64;
    let mut next = || {
        seed += 1;
        seed
    };
    for [n, c, h, w, o, k, stride, padding] in CONV_SHAPES {
        let x = random(&[n, c, h, w], next());
        let weight = random(&[o, c, k, k], next());
        let bias = random(&[o], next());
        let y_shape = Op::Conv2d { stride, padding }.output_shape(&[&x.shape, &weight.shape, &bias.shape]).unwrap();
        let dy = random(&y_shape, next());
        cases.extend(both_tilings(Op::Conv2d { stride, padding }, vec![x.clone(), weight.clone(), bias], SMALL_SUMS));
        let input_size = [h, w];
        cases.extend(both_tilings(
            Op::Conv2dBackwardInput { stride, padding, input_size },
            vec![dy.clone(), weight],
            LONG_SUMS,
        ));
        cases.extend(both_tilings(
            Op::Conv2dBackwardWeight { stride, padding, kernel: k },
            vec![dy.clone(), x],
            LONG_SUMS,
        ));
        cases.push(op_case(Op::ChannelSum, vec![dy], LONG_SUMS));
    }
    for shape in MAP_SHAPES {
        let [n, c, h, w] = shape;
        let pooled = [n, c, h / 2, w / 2];
        let x = coarse(&shape, next());
        cases.push(op_case(Op::AvgPool2, vec![random(&shape, next())], SMALL_SUMS));
        cases.push(op_case(Op::AvgPool2Backward { input_size: [h, w] }, vec![random(&pooled, next())], EXACT));
        cases.push(op_case(Op::MaxPool2, vec![x.clone()], EXACT));
        cases.push(op_case(Op::MaxPool2Backward, vec![x.clone(), random(&pooled, next())], EXACT));
        cases.push(op_case(Op::Upsample2, vec![random(&shape, next())], EXACT));
        cases.push(op_case(Op::Upsample2Backward, vec![random(&[n, c, 2 * h, 2 * w], next())], SMALL_SUMS));
        cases.push(op_case(Op::Relu, vec![x.clone()], EXACT));
        cases.push(op_case(Op::ReluBackward, vec![x.clone(), random(&shape, next())], EXACT));
        cases.push(op_case(Op::Add, vec![random(&shape, next()), random(&shape, next())], EXACT));
        let high = random(&[n, c, 2 * h, 2 * w], next());
        let low = random(&shape, next());
        cases.push(op_case(Op::AddUpsampled2, vec![high.clone(), low.clone()], EXACT));
        // The same kernels with a ReLU applied as they write.
        let (a, b) = (random(&shape, next()), random(&shape, next()));
        for (op, inputs) in [
            (Op::AvgPool2, vec![x.clone()]),
            (Op::MaxPool2, vec![x.clone()]),
            (Op::Add, vec![a, b]),
            (Op::AddUpsampled2, vec![high, low]),
        ] {
            let mut case = op_case(op, inputs, SMALL_SUMS);
            case.shape.push_str(" + relu");
            if let Work::Op { relu_after, .. } = &mut case.work {
                *relu_after = true;
            }
            cases.push(case);
        }
        let (acc, x) = (random(&shape, next()), random(&shape, next()));
        cases.push(Case {
            op: "accumulate",
            kernel: "accumulate",
            shape: format!("{shape:?}"),
            tolerance: EXACT,
            tiling: Tiling::Registers,
            work: Work::Accumulate { acc, x },
        });
    }
    for [n, i, o] in LINEAR_SHAPES {
        let x = random(&[n, i], next());
        let weight = random(&[o, i], next());
        let dy = random(&[n, o], next());
        let long = if i > 1000 { LONG_SUMS } else { SMALL_SUMS };
        cases.extend(both_tilings(Op::Linear, vec![x.clone(), weight.clone(), random(&[o], next())], long));
        cases.extend(both_tilings(Op::LinearBackwardInput, vec![dy.clone(), weight], SMALL_SUMS));
        cases.extend(both_tilings(Op::LinearBackwardWeight, vec![dy, x], SMALL_SUMS));
    }
    for [n, k] in [[1, 1], [1, 10], [5, 3], [64, 10], [130, 17]] {
        let logits = Tensor::uniform(&[n, k], -8.0, 8.0, next());
        let mut labels = Tensor::labels(n, k, next());
        if n > 64 {
            // Padding rows (label −1) are ignored by the loss and the metrics.
            labels.data[n - 7..].iter_mut().for_each(|l| *l = -1.0);
        }
        let loss = Tensor::new(&[1], vec![cpu::cross_entropy(&logits, &labels)]);
        let work = Work::Metrics { logits: coarse(&[n, k], next()), labels: labels.clone(), loss };
        cases.push(Case {
            op: "batch_metrics",
            kernel: "batch_metrics",
            shape: format!("[{n}, {k}] [{n}]"),
            tolerance: SMALL_SUMS,
            tiling: Tiling::Registers,
            work,
        });
        cases.push(op_case(Op::CrossEntropy, vec![logits.clone(), labels.clone()], TRANSCENDENTAL));
        cases.push(op_case(Op::CrossEntropyBackward, vec![logits, labels], TRANSCENDENTAL));
        cases.push(op_case(Op::Argmax, vec![coarse(&[n, k], next())], EXACT));
    }
    // (examples, batch, first): one example, a padded tail, a batch larger than
    // the data, an odd count (labels not filling their last word).
    for [len, batch, first] in [[1, 1, 0], [7, 5, 5], [13, 64, 0], [301, 64, 256]] {
        let images = Tensor::uniform(&[len * PIXELS], 0.0, 256.0, next()).data.iter().map(|&v| v as u8).collect();
        let labels = Tensor::labels(len, 10, next()).data.iter().map(|&l| l as u8).collect();
        let data = Dataset { images, labels };
        cases.push(Case {
            op: "gather",
            kernel: "gather_batch",
            shape: format!("{len} examples, batch {batch} at {first}"),
            tolerance: EXACT,
            tiling: Tiling::Registers,
            work: Work::Gather { data, order: epoch_order(len, next(), 0), first, batch },
        });
    }
    for len in [1, 63, 65, 1000] {
        let param = random(&[len], next());
        let grads = (0..3).map(|_| random(&[len], next())).collect();
        cases.push(Case {
            op: "adam",
            kernel: "adam_step",
            shape: format!("[{len}] × 3 steps"),
            tolerance: SMALL_SUMS,
            tiling: Tiling::Registers,
            work: Work::Adam { param, grads },
        });
    }
    cases
}

/// Runs one case on the CPU twin and on the GPU and compares the results.
pub async fn run_case(gpu: &Gpu, case: &Case) -> Result<Outcome, GpuError> {
    let (gpu_values, cpu_values) = match &case.work {
        Work::Op { op, inputs, relu_after } => {
            let mut expected = cpu::eval(op, &inputs.iter().collect::<Vec<_>>())?;
            if *relu_after {
                expected.data = cpu::relu(&expected);
            }
            let uploaded = inputs.iter().map(|t| gpu.upload(t)).collect::<Result<Vec<_>, _>>()?;
            let result = gpu.run_with(op, &uploaded.iter().collect::<Vec<_>>(), case.tiling, *relu_after).await?;
            (gpu.read(&result).await?.data, expected.data)
        }
        Work::Accumulate { acc, x } => {
            let expected = cpu::add(acc, x);
            let (acc_gpu, x_gpu) = (gpu.upload(acc)?, gpu.upload(x)?);
            let launch = kernels::accumulate_launch(x.len());
            gpu.submit_one(&launch, &[&x_gpu.buffer, &acc_gpu.buffer], "accumulate").await?;
            (gpu.read(&acc_gpu).await?.data, expected)
        }
        Work::Adam { param, grads } => {
            let config = AdamConfig { lr: 0.01, ..AdamConfig::default() };
            let len = param.len();
            let (mut p, mut m, mut v) = (param.data.clone(), vec![0.0; len], vec![0.0; len]);
            let zeros = Tensor::zeros(&[len]);
            let (p_gpu, m_gpu, v_gpu) = (gpu.upload(param)?, gpu.upload(&zeros)?, gpu.upload(&zeros)?);
            for (t, grad) in grads.iter().enumerate() {
                let step = t as u64 + 1;
                cpu::adam_step(&config, step, &grad.data, &mut p, &mut m, &mut v);
                let g_gpu = gpu.upload(grad)?;
                let launch = kernels::adam_launch(&config, step, len);
                gpu.submit_one(&launch, &[&g_gpu.buffer, &p_gpu.buffer, &m_gpu.buffer, &v_gpu.buffer], "adam_step")
                    .await?;
            }
            (gpu.read(&p_gpu).await?.data, p)
        }
        Work::Gather { data, order, first, batch } => {
            let (mut expected, labels) = data.batch_at(order, *first, *batch);
            expected.extend(labels);
            let order_words: Vec<u32> = order.iter().map(|&i| i as u32).collect();
            let order_gpu = gpu.upload_bytes(bytemuck::cast_slice(&order_words), "order")?;
            let images = gpu.upload_bytes(&data.images, "images")?;
            let labels = gpu.upload_bytes(&data.labels, "labels")?;
            let (images_out, labels_out) =
                (gpu.upload(&Tensor::zeros(&[batch * PIXELS]))?, gpu.upload(&Tensor::zeros(&[*batch]))?);
            let launch = kernels::gather_launch(*batch, PIXELS, *first, order.len());
            let buffers = [&order_gpu, &images, &labels, &images_out.buffer, &labels_out.buffer];
            gpu.submit_one(&launch, &buffers, "gather_batch").await?;
            let mut values = gpu.read(&images_out).await?.data;
            values.extend(gpu.read(&labels_out).await?.data);
            (values, expected)
        }
        Work::Metrics { logits, labels, loss } => {
            let mut expected = [0.5, 1.0, 2.0];
            let metrics = Tensor::new(&[3], expected.to_vec());
            let (z, l, s, m) = (gpu.upload(logits)?, gpu.upload(labels)?, gpu.upload(loss)?, gpu.upload(&metrics)?);
            let launch = kernels::batch_metrics_launch(logits.shape[0], logits.shape[1]);
            for _ in 0..2 {
                cpu::batch_metrics(logits, labels, loss.data[0], &mut expected);
                gpu.submit_one(&launch, &[&z.buffer, &l.buffer, &s.buffer, &m.buffer], "batch_metrics").await?;
            }
            (gpu.read(&m).await?.data, expected.to_vec())
        }
    };
    let (max_abs, max_rel, passed) = compare(&gpu_values, &cpu_values, case.tolerance);
    Ok(Outcome { op: case.op, kernel: case.kernel, shape: case.shape.clone(), max_abs, max_rel, passed })
}
