//! Fully connected layer y = x·Wᵀ + b (weight [out, in], as PyTorch) and its gradients.

use crate::tensor::Tensor;

/// y[n,o] = b[o] + Σ_i x[n,i] · w[o,i]
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Vec<f32> {
    let (batch, inputs, outputs) = (x.shape[0], x.shape[1], w.shape[0]);
    let mut y = Vec::with_capacity(batch * outputs);
    for n in 0..batch {
        let row = &x.data[n * inputs..(n + 1) * inputs];
        for o in 0..outputs {
            let weights = &w.data[o * inputs..(o + 1) * inputs];
            y.push(b.data[o] + row.iter().zip(weights).map(|(a, b)| a * b).sum::<f32>());
        }
    }
    y
}

/// dx[n,i] = Σ_o dy[n,o] · w[o,i]
pub fn linear_backward_input(dy: &Tensor, w: &Tensor) -> Vec<f32> {
    let (batch, outputs, inputs) = (dy.shape[0], w.shape[0], w.shape[1]);
    let mut dx = vec![0.0; batch * inputs];
    for n in 0..batch {
        for i in 0..inputs {
            dx[n * inputs + i] = (0..outputs).map(|o| dy.data[n * outputs + o] * w.data[o * inputs + i]).sum();
        }
    }
    dx
}

/// dw[o,i] = Σ_n dy[n,o] · x[n,i]
pub fn linear_backward_weight(dy: &Tensor, x: &Tensor) -> Vec<f32> {
    let (batch, outputs, inputs) = (dy.shape[0], dy.shape[1], x.shape[1]);
    let mut dw = vec![0.0; outputs * inputs];
    for o in 0..outputs {
        for i in 0..inputs {
            dw[o * inputs + i] = (0..batch).map(|n| dy.data[n * outputs + o] * x.data[n * inputs + i]).sum();
        }
    }
    dw
}
