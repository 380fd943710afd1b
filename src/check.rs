//! Runs the ops' check cases (`ops::cases`, listed by each op family) on a
//! GPU: every kernel against its CPU twin. `octconv check` and the test suite
//! both run these, so what a user checks on their GPU is exactly what CI checks.

pub use crate::ops::cases::{compare, first_mismatch, Buffer, Case, GradientCase, Tolerance, Work};

use crate::gpu::{Gpu, GpuError};
use crate::ops::cases::Seeds;
use crate::ops::FAMILIES;
use crate::tensor::Tensor;

/// The measured difference of one case.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub op: &'static str,
    pub kernel: &'static str,
    pub shape: String,
    pub max_abs: f32,
    pub max_rel: f32,
    pub passed: bool,
    /// The first element outside the tolerance: (index, expected, got).
    pub first_wrong: Option<(usize, f32, f32)>,
}

/// Every family's cases, each family seeded on its own so a failure can be reproduced.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (k, family) in FAMILIES.iter().enumerate() {
        let listed = (family.cases)(&mut Seeds::new(1000 * k as u64));
        cases.extend(listed.into_iter().map(|case| Case { family: family.name, ..case }));
    }
    cases
}

/// Every family's gradient-rule checks (run by `tests/op_gradients.rs`).
pub fn gradient_cases() -> Vec<GradientCase> {
    let family_cases =
        FAMILIES.iter().enumerate().map(|(k, family)| (family.gradients)(&mut Seeds::new(1000 * k as u64 + 500)));
    family_cases.flatten().collect()
}

/// Runs one case on the CPU twin and on the GPU and compares the results.
pub async fn run_case(gpu: &Gpu, case: &Case) -> Result<Outcome, GpuError> {
    let (got, expected) = match &case.work {
        Work::Op { op, inputs, relu_after } => {
            let mut expected = op.eval_cpu(&inputs.iter().collect::<Vec<_>>())?.data;
            if *relu_after {
                expected.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            let uploaded = inputs.iter().map(|t| gpu.upload(t)).collect::<Result<Vec<_>, _>>()?;
            let result = gpu.run_with(op, &uploaded.iter().collect::<Vec<_>>(), case.tiling, *relu_after).await?;
            (gpu.read(&result).await?.data, expected)
        }
        Work::Dispatches { buffers, dispatches, read, expected } => {
            let uploaded = buffers
                .iter()
                .map(|b| match b {
                    Buffer::Floats(values) => Ok(gpu.upload(&Tensor::new(&[values.len()], values.clone()))?.buffer),
                    Buffer::Bytes(bytes) => gpu.upload_bytes(bytes, "check bytes"),
                })
                .collect::<Result<Vec<_>, GpuError>>()?;
            for (launch, bound) in dispatches {
                let bound: Vec<&wgpu::Buffer> = bound.iter().map(|&k| &uploaded[k]).collect();
                gpu.submit_one(launch, &bound, case.kernel).await?;
            }
            let mut got = Vec::new();
            for &k in read {
                let Buffer::Floats(values) = &buffers[k] else { unreachable!("read buffers hold floats") };
                got.extend(gpu.read_buffer(&uploaded[k], values.len()).await?);
            }
            (got, expected.clone())
        }
    };
    let (max_abs, max_rel, passed) = compare(&got, &expected, case.tolerance);
    let first_wrong = first_mismatch(&got, &expected, case.tolerance);
    Ok(Outcome { op: case.op, kernel: case.kernel, shape: case.shape.clone(), max_abs, max_rel, passed, first_wrong })
}
