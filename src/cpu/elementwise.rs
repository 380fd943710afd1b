//! Element-wise ops and the channel sum used for bias gradients.

use crate::tensor::Tensor;

pub fn relu(x: &Tensor) -> Vec<f32> {
    x.data.iter().map(|&v| v.max(0.0)).collect()
}

/// dx = dy · [x > 0]
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Vec<f32> {
    x.data.iter().zip(&dy.data).map(|(&x, &g)| if x > 0.0 { g } else { 0.0 }).collect()
}

pub fn add(a: &Tensor, b: &Tensor) -> Vec<f32> {
    a.data.iter().zip(&b.data).map(|(a, b)| a + b).collect()
}

/// sums[c] = Σ over every axis but axis 1 of x[n, c, ...]
pub fn channel_sum(x: &Tensor) -> Vec<f32> {
    let channels = x.shape[1];
    let inner: usize = x.shape[2..].iter().product();
    let mut sums = vec![0.0; channels];
    for (row, chunk) in x.data.chunks(inner).enumerate() {
        sums[row % channels] += chunk.iter().sum::<f32>();
    }
    sums
}
