//! Adam's update as a kernel (not a graph op): one dispatch updates every
//! parameter, since the parameters, their gradients and both moments each
//! share one buffer at the same offsets. The CPU twin is `optim::adam_step`.

use super::cases::{dispatch_case, no_gradients, Buffer, Case, Seeds, Work, SMALL_SUMS};
use super::kernel::{per_invocation, Kernel, KernelParams, Launch, ShaderFile};
use super::Family;
use crate::kernel_params;
use crate::optim::{adam_step, AdamConfig};

const SHADER: ShaderFile = ShaderFile { name: "adam.wgsl", source: include_str!("../../shaders/adam.wgsl") };

kernel_params! {
    /// AdamParams in adam.wgsl: the constants of step t, shared by every parameter.
    pub struct AdamParams {
        pub beta1: f32,
        pub beta2: f32,
        pub eps: f32,
        /// lr / (1 − β1^t)
        pub step_size: f32,
        /// sqrt(1 − β2^t)
        pub bias_correction2_sqrt: f32,
    }
}

/// Bindings: gradients, then parameters, m and v (updated in place).
pub const ADAM_STEP: Kernel = Kernel::new(SHADER, "adam_step", &AdamParams::LAYOUT, 1, 3);

pub const FAMILY: Family =
    Family { name: "adam", shaders: &[SHADER], kernels: &[&ADAM_STEP], cases, gradients: no_gradients };

/// Adam's parameters at step `t` (1-based).
pub fn adam_params(config: &AdamConfig, t: u64) -> AdamParams {
    let (step_size, bias_correction2_sqrt) = config.bias_corrections(t);
    AdamParams { beta1: config.beta1, beta2: config.beta2, eps: config.eps, step_size, bias_correction2_sqrt }
}

/// One Adam step at step `t` over a parameter buffer of `count` values.
pub fn adam_launch(config: &AdamConfig, t: u64, count: usize) -> Launch {
    Launch::new(&ADAM_STEP, &adam_params(config, t), per_invocation(count))
}

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for len in [1, 63, 65, 1000] {
        let config = AdamConfig { lr: 0.01, ..AdamConfig::default() };
        let param = seeds.random(&[len]);
        let grads: Vec<_> = (0..3).map(|_| seeds.random(&[len])).collect();
        let (mut p, mut m, mut v) = (param.data.clone(), vec![0.0; len], vec![0.0; len]);
        let mut buffers: Vec<Buffer> = grads.iter().map(|g| Buffer::Floats(g.data.clone())).collect();
        buffers.extend([Buffer::Floats(param.data), Buffer::Floats(vec![0.0; len]), Buffer::Floats(vec![0.0; len])]);
        let mut dispatches = Vec::new();
        for (k, grad) in grads.iter().enumerate() {
            let step = k as u64 + 1;
            adam_step(&config, step, &grad.data, &mut p, &mut m, &mut v);
            dispatches.push((adam_launch(&config, step, len), vec![k, 3, 4, 5]));
        }
        let work = Work::Dispatches { buffers, dispatches, read: vec![3], expected: p };
        cases.push(dispatch_case("adam", format!("[{len}] × 3 steps"), SMALL_SUMS, work));
    }
    cases
}
