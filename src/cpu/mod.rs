//! The CPU twins: every op in plain Rust, written to be obviously right.
//! They are the reference the WGSL kernels are tested against, and the
//! fallback device when no GPU adapter exists.

mod conv;
mod elementwise;
pub mod fast;
mod linear;
mod loss;
mod pool;

pub use conv::{conv2d, conv2d_backward_input, conv2d_backward_weight};
pub use elementwise::{add, channel_sum, relu, relu_backward};
pub use linear::{linear, linear_backward_input, linear_backward_weight};
pub use loss::{argmax, batch_metrics, cross_entropy, cross_entropy_backward};
pub use pool::{avg_pool2, avg_pool2_backward, max_pool2, max_pool2_backward, upsample2, upsample2_backward};

use crate::ops::{Op, ShapeError};
use crate::tensor::Tensor;

/// Evaluates `op` on the CPU after checking the input shapes.
pub fn eval(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, ShapeError> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let out_shape = op.output_shape(&shapes)?;
    let data = match op {
        Op::Conv2d { stride, padding } => conv2d(inputs[0], inputs[1], inputs[2], *stride, *padding, &out_shape),
        Op::Conv2dBackwardInput { stride, padding, .. } => {
            conv2d_backward_input(inputs[0], inputs[1], *stride, *padding, &out_shape)
        }
        Op::Conv2dBackwardWeight { stride, padding, .. } => {
            conv2d_backward_weight(inputs[0], inputs[1], *stride, *padding, &out_shape)
        }
        Op::ChannelSum => channel_sum(inputs[0]),
        Op::AvgPool2 => avg_pool2(inputs[0], &out_shape),
        Op::AvgPool2Backward { .. } => avg_pool2_backward(inputs[0], &out_shape),
        Op::MaxPool2 => max_pool2(inputs[0], &out_shape),
        Op::MaxPool2Backward => max_pool2_backward(inputs[0], inputs[1]),
        Op::Upsample2 => upsample2(inputs[0], &out_shape),
        Op::Upsample2Backward => upsample2_backward(inputs[0], &out_shape),
        Op::Relu => relu(inputs[0]),
        Op::ReluBackward => relu_backward(inputs[0], inputs[1]),
        Op::Add => add(inputs[0], inputs[1]),
        Op::AddUpsampled2 => {
            let low = Tensor::new(&out_shape, upsample2(inputs[1], &out_shape));
            add(inputs[0], &low)
        }
        Op::Linear => linear(inputs[0], inputs[1], inputs[2]),
        Op::LinearBackwardInput => linear_backward_input(inputs[0], inputs[1]),
        Op::LinearBackwardWeight => linear_backward_weight(inputs[0], inputs[1]),
        Op::CrossEntropy => vec![cross_entropy(inputs[0], inputs[1])],
        Op::CrossEntropyBackward => cross_entropy_backward(inputs[0], inputs[1]),
        Op::Argmax => argmax(inputs[0]),
        Op::Reshape { .. } => inputs[0].data.clone(),
    };
    Ok(Tensor::new(&out_shape, data))
}

/// PyTorch's Adam hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

impl AdamConfig {
    /// (lr / (1 − β1^t), sqrt(1 − β2^t)) for step `t` (1-based), computed in f64.
    pub fn bias_corrections(&self, t: u64) -> (f32, f32) {
        let bc1 = 1.0 - (self.beta1 as f64).powf(t as f64);
        let bc2 = 1.0 - (self.beta2 as f64).powf(t as f64);
        ((self.lr as f64 / bc1) as f32, bc2.sqrt() as f32)
    }
}

/// One Adam step at step number `t` (1-based), updating param, m and v in place.
pub fn adam_step(config: &AdamConfig, t: u64, grad: &[f32], param: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    let (step_size, bc2_sqrt) = config.bias_corrections(t);
    for i in 0..grad.len() {
        let g = grad[i];
        m[i] = config.beta1 * m[i] + (1.0 - config.beta1) * g;
        v[i] = config.beta2 * v[i] + (1.0 - config.beta2) * g * g;
        param[i] -= step_size * m[i] / (v[i].sqrt() / bc2_sqrt + config.eps);
    }
}
