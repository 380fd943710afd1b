//! Adam (PyTorch's defaults and update rule): its configuration, its state
//! (for checkpoints), and the CPU twin of the `adam_step` kernel
//! (`ops::adam`).

use crate::tensor::Tensor;

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
    let values = param.iter_mut().zip(m.iter_mut()).zip(v.iter_mut());
    for (((p, m), v), &g) in values.zip(grad) {
        *m = config.beta1 * *m + (1.0 - config.beta1) * g;
        *v = config.beta2 * *v + (1.0 - config.beta2) * g * g;
        *p -= step_size * *m / (v.sqrt() / bc2_sqrt + config.eps);
    }
}

/// `adam_step` with the values split among the native worker threads (the
/// CPU device's update: fc1 alone has 0.8 M parameters).
pub fn adam_step_parallel(config: &AdamConfig, t: u64, grad: &[f32], param: &mut [f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        use rayon::prelude::*;
        const CHUNK: usize = 1 << 15;
        let chunks = param.par_chunks_mut(CHUNK).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK));
        chunks.zip(grad.par_chunks(CHUNK)).for_each(|(((p, m), v), g)| adam_step(config, t, g, p, m, v));
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    adam_step(config, t, grad, param, m, v);
}

/// Adam's state: the step count and each parameter's first and second moments.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    pub step: u64,
    /// (parameter name, m, v) in parameter order.
    pub moments: Vec<(String, Tensor, Tensor)>,
}
