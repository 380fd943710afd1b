//! Check cases: a kernel on one set of inputs, the CPU twin's answer, and the
//! difference allowed. Each op family lists its own (`Family::cases`);
//! `octconv check` and the test suite run them all, so what a user checks on
//! their GPU is exactly what CI checks.

use super::kernel::{Launch, Tiling};
use super::Op;
use crate::tensor::Tensor;

/// Allowed difference: |gpu − cpu| ≤ abs + rel · |cpu| for every element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
}

/// Ops that only move, pick or compare values are exact.
pub const EXACT: Tolerance = Tolerance { abs: 0.0, rel: 0.0 };
/// Sums of a few hundred products match to float rounding (the GPU may fuse multiply-adds).
pub const SMALL_SUMS: Tolerance = Tolerance { abs: 1e-5, rel: 1e-5 };
/// Long sums (weight gradients over batch × height × width, conv input
/// gradients, which the CPU scatters and the GPU gathers in another order):
/// float rounding grows with the number of terms and their order.
pub const LONG_SUMS: Tolerance = Tolerance { abs: 1e-4, rel: 1e-4 };
/// exp and log differ in the last bits between drivers.
pub const TRANSCENDENTAL: Tolerance = Tolerance { abs: 1e-6, rel: 1e-5 };

/// A buffer of a dispatch case, as uploaded.
#[derive(Clone, Debug)]
pub enum Buffer {
    Floats(Vec<f32>),
    /// Bytes packed four to a word (the datasets on the device).
    Bytes(Vec<u8>),
}

/// What one case computes.
pub enum Work {
    /// One graph op, the GPU kernel against `Op::eval_cpu`.
    Op {
        op: Op,
        inputs: Vec<Tensor>,
        /// The op's kernel also applies the ReLU that follows it (`Launch::fuse_relu`).
        relu_after: bool,
    },
    /// Kernels that are not graph ops (accumulate, batch metrics, Adam, the
    /// batch gather): `buffers` uploaded, each (launch, buffer indices) run
    /// in order, then the `read` buffers read back one after another and
    /// compared with `expected`, the twin's answer.
    Dispatches { buffers: Vec<Buffer>, dispatches: Vec<(Launch, Vec<usize>)>, read: Vec<usize>, expected: Vec<f32> },
}

/// One kernel on one set of inputs.
pub struct Case {
    /// The op family that lists it (set by `check::cases`).
    pub family: &'static str,
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

/// Seeds for a family's random inputs, fixed so a failure can be reproduced.
pub struct Seeds(u64);

impl Seeds {
    pub fn new(start: u64) -> Self {
        Seeds(start)
    }

    pub fn seed(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    /// Uniform values in [−1, 1).
    pub fn random(&mut self, shape: &[usize]) -> Tensor {
        Tensor::uniform(shape, -1.0, 1.0, self.seed())
    }

    /// Values on a coarse grid of {−1, −½, 0, ½, 1}, so that ties and exact zeros occur.
    pub fn coarse(&mut self, shape: &[usize]) -> Tensor {
        let mut t = self.random(shape);
        t.data.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
        t
    }
}

/// The case of `op` on `inputs` in `tiling`'s variant.
pub fn op_case(op: impl Into<Op>, inputs: Vec<Tensor>, tolerance: Tolerance, tiling: Tiling) -> Case {
    let op = op.into();
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let output = op.output_shape(&shapes).expect("check cases have valid shapes");
    let kernel = op.launch(&shapes, &output, tiling).map_or("none", |l| l.kernel.entry);
    let shape = shapes.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" ");
    let work = Work::Op { op: op.clone(), inputs, relu_after: false };
    Case { family: "", op: op.name(), kernel, shape, tolerance, tiling, work }
}

/// The case of an op that has one kernel.
pub fn single(op: impl Into<Op>, inputs: Vec<Tensor>, tolerance: Tolerance) -> Case {
    op_case(op, inputs, tolerance, Tiling::Registers)
}

/// The case of a convolution or matrix product in each tiling variant.
pub fn both_tilings(op: impl Into<Op>, inputs: Vec<Tensor>, tolerance: Tolerance) -> [Case; 2] {
    let op = op.into();
    [Tiling::Registers, Tiling::Workgroup].map(|tiling| op_case(op.clone(), inputs.clone(), tolerance, tiling))
}

/// The same op case with a ReLU applied by the kernel as it writes.
pub fn with_relu(mut case: Case) -> Case {
    case.shape.push_str(" + relu");
    if let Work::Op { relu_after, .. } = &mut case.work {
        *relu_after = true;
    }
    case
}

/// A case of kernels that are not graph ops (see `Work::Dispatches`), named
/// `op` and by the kernel of its first dispatch.
pub fn dispatch_case(op: &'static str, shape: String, tolerance: Tolerance, work: Work) -> Case {
    let kernel = match &work {
        Work::Dispatches { dispatches, .. } => dispatches.first().map_or("none", |(launch, _)| launch.kernel.entry),
        Work::Op { .. } => unreachable!("op cases are made by op_case"),
    };
    Case { family: "", op, kernel, shape, tolerance, tiling: Tiling::Registers, work }
}

/// Largest absolute and relative difference, and whether every element is within `tol`.
pub fn compare(got: &[f32], expected: &[f32], tol: Tolerance) -> (f32, f32, bool) {
    let mut max_abs = 0.0f32;
    let mut max_rel = 0.0f32;
    let mut passed = got.len() == expected.len();
    for (&g, &c) in got.iter().zip(expected) {
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

/// The first element outside `tol`: (index, expected, got); a missing tail counts as NaN.
pub fn first_mismatch(got: &[f32], expected: &[f32], tol: Tolerance) -> Option<(usize, f32, f32)> {
    let len = got.len().max(expected.len());
    (0..len).find_map(|i| {
        let (g, e) = (got.get(i).copied().unwrap_or(f32::NAN), expected.get(i).copied().unwrap_or(f32::NAN));
        let within = (g - e).abs() <= tol.abs + tol.rel * e.abs();
        (!within).then_some((i, e, g))
    })
}

/// NCHW shapes for the map ops (pool, upsample, element-wise): odd and even, 1 channel and 17.
pub const MAP_SHAPES: [[usize; 4]; 5] = [[1, 1, 2, 2], [2, 3, 7, 9], [1, 17, 6, 5], [3, 8, 28, 28], [64, 8, 14, 14]];

/// A gradient rule's check: `op` at `inputs`, its gradient for the inputs
/// marked `differentiable` (through `Graph::backward_with` on a one-op graph)
/// against central finite differences with step `step`, within
/// |fd − rule| ≤ abs + rel·|rule| (`tests/op_gradients.rs` runs them).
pub struct GradientCase {
    pub op: Op,
    pub inputs: Vec<Tensor>,
    pub differentiable: Vec<bool>,
    pub step: f32,
    pub tolerance: [f64; 2],
}

/// The usual gradient tolerance: the forward runs in f32, so a central
/// difference with step 1e-2 carries rounding of about 1e-5·|L|.
pub const GRADIENT_TOLERANCE: [f64; 2] = [2e-3, 1e-2];

/// The check of every input's gradient with step 1e-2 (smooth ops).
pub fn gradient_case(op: impl Into<Op>, inputs: Vec<Tensor>) -> GradientCase {
    let differentiable = vec![true; inputs.len()];
    GradientCase { op: op.into(), inputs, differentiable, step: 1e-2, tolerance: GRADIENT_TOLERANCE }
}

/// The check with step 1e-3 for piecewise-linear ops (relu, max-pool), whose
/// inputs come from `Seeds::spread` so that no kink lies within a step.
pub fn kinked_gradient_case(op: impl Into<Op>, inputs: Vec<Tensor>) -> GradientCase {
    GradientCase { step: 1e-3, ..gradient_case(op, inputs) }
}

impl Seeds {
    /// Distinct values on a 0.01 grid, none within 0.005 of zero: no kink or tie within ±1e-3.
    pub fn spread(&mut self, shape: &[usize]) -> Tensor {
        let mut t = self.random(shape);
        for (k, v) in t.data.iter_mut().enumerate() {
            *v = ((*v * 50.0).round() + 0.5) / 50.0 + (k % 7) as f32 * 1e-3;
        }
        t
    }
}

/// For families whose ops are all gradients themselves (or not graph ops).
pub fn no_gradients(_seeds: &mut Seeds) -> Vec<GradientCase> {
    Vec::new()
}
