//! A gradient rule run with the edited kernels, forward and backward,
//! against central differences of the edited GPU forward: catches a
//! backward kernel and its CPU twin that agree on a wrong rule.

use crate::gpu::{Gpu, GpuError, GpuTensor};
use crate::graph::{Graph, Source};
use crate::ops::cases::GradientCase;
use crate::ops::Op;
use crate::tensor::Tensor;

/// The gradient rule of `case` evaluated with the GPU kernels (forward and
/// backward), against central differences of the GPU forward at up to 8
/// elements per input; None when every one is within the case's tolerance.
pub(super) async fn gpu_gradient_check(gpu: &Gpu, case: &GradientCase) -> Result<Option<String>, GpuError> {
    let GradientCase { op, inputs, differentiable, step, tolerance: [abs, rel] } = case;
    let mut g = Graph::new();
    let ids: Vec<usize> = inputs
        .iter()
        .zip(differentiable)
        .enumerate()
        .map(|(k, (t, &d))| if d { g.param(&format!("x{k}"), &t.shape) } else { g.input(&format!("x{k}"), &t.shape) })
        .collect();
    let y = g
        .apply("y", op.clone(), &ids)
        .map_err(|e| GpuError::Validation { context: op.name().into(), message: e.to_string() })?;
    let shape = g.shape(y).to_vec();
    let dy = g.input("dy", &shape);
    let grads = g
        .backward_with(y, dy)
        .map_err(|e| GpuError::Validation { context: op.name().into(), message: e.to_string() })?;
    let r = if matches!(op, Op::CrossEntropy(_)) {
        Tensor::new(&[1], vec![1.0])
    } else {
        Tensor::uniform(&shape, -1.0, 1.0, 99)
    };

    // Every node on the GPU, in order.
    let mut values: Vec<Option<GpuTensor>> = (0..g.nodes.len()).map(|_| None).collect();
    for (&id, t) in ids.iter().zip(inputs) {
        values[id] = Some(gpu.upload(t)?);
    }
    values[dy] = Some(gpu.upload(&r)?);
    for (id, node) in g.nodes.iter().enumerate() {
        if let Source::Op(node_op) = &node.source {
            let args: Vec<&GpuTensor> =
                node.inputs.iter().map(|&i| values[i].as_ref().expect("computed before")).collect();
            values[id] = Some(gpu.run(node_op, &args).await?);
        }
    }
    let loss = async |xs: &[Tensor]| -> Result<f64, GpuError> {
        let uploaded = xs.iter().map(|t| gpu.upload(t)).collect::<Result<Vec<_>, _>>()?;
        let out = gpu.read(&gpu.run(op, &uploaded.iter().collect::<Vec<_>>()).await?).await?;
        Ok(out.data.iter().zip(&r.data).map(|(&a, &b)| a as f64 * b as f64).sum())
    };
    for &(param, grad) in &grads {
        let which = ids.iter().position(|&id| id == param).expect("a parameter of the graph");
        let rule = gpu.read(values[grad].as_ref().expect("computed")).await?;
        let count = inputs[which].len();
        for i in (0..count).step_by((count / 8).max(1)) {
            let (mut plus, mut minus) = (inputs.clone(), inputs.clone());
            plus[which].data[i] += step;
            minus[which].data[i] -= step;
            let fd = (loss(&plus).await? - loss(&minus).await?) / (2.0 * *step as f64);
            let a = rule.data[i] as f64;
            if (fd - a).abs() > abs + rel * a.abs() {
                return Ok(Some(format!(
                    "element {i} of input {which}: finite difference {fd:.6}, the kernels give {a:.6}"
                )));
            }
        }
    }
    Ok(None)
}
