//! The WGSL kernels: which file and entry point computes each op, how its
//! bindings are laid out, and the uniform parameters it reads.
//!
//! Shapes reach a kernel through a small uniform buffer rather than pipeline
//! override constants: one pipeline then serves every shape, so a model
//! compiles each kernel once (compiling is slow on software drivers) and the
//! check/test harness can sweep shapes without new pipelines. Variants
//! specialised by constants can be added per adapter where they pay off.

use crate::ops::Op;
use crate::tensor::numel;

/// A WGSL source file in `shaders/`, one per op family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Conv2d,
    Pool,
    Upsample,
    Elementwise,
    Linear,
    Reduce,
    CrossEntropy,
    Argmax,
    Adam,
    Gather,
}

/// Prepended to every shader: the launch convention (see `common.wgsl`).
pub const COMMON_WGSL: &str = include_str!("../../shaders/common.wgsl");

impl Shader {
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Upsample => "upsample.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Linear => "linear.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::CrossEntropy => "cross_entropy.wgsl",
            Shader::Argmax => "argmax.wgsl",
            Shader::Adam => "adam.wgsl",
            Shader::Gather => "gather.wgsl",
        }
    }

    /// The source built into the binary.
    pub fn built_in_source(self) -> &'static str {
        match self {
            Shader::Conv2d => include_str!("../../shaders/conv2d.wgsl"),
            Shader::Pool => include_str!("../../shaders/pool.wgsl"),
            Shader::Upsample => include_str!("../../shaders/upsample.wgsl"),
            Shader::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            Shader::Linear => include_str!("../../shaders/linear.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::CrossEntropy => include_str!("../../shaders/cross_entropy.wgsl"),
            Shader::Argmax => include_str!("../../shaders/argmax.wgsl"),
            Shader::Adam => include_str!("../../shaders/adam.wgsl"),
            Shader::Gather => include_str!("../../shaders/gather.wgsl"),
        }
    }
}

/// One compute entry point. Its bindings are: 0 the uniform parameters, then
/// `reads` read-only storage buffers, then `writes` read-write ones.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
    pub reads: u32,
    pub writes: u32,
    /// The parameter word that, set to 1, makes the kernel apply a ReLU to
    /// what it writes (kernels that can absorb a following ReLU).
    pub relu_word: Option<usize>,
}

const fn kernel(shader: Shader, entry: &'static str, reads: u32, writes: u32) -> Kernel {
    Kernel { shader, entry, reads, writes, relu_word: None }
}

const fn with_relu(kernel: Kernel, word: usize) -> Kernel {
    Kernel { relu_word: Some(word), ..kernel }
}

pub const CONV2D_FORWARD: Kernel = kernel(Shader::Conv2d, "conv2d_forward", 3, 1);
pub const CONV2D_FORWARD_TILED: Kernel = kernel(Shader::Conv2d, "conv2d_forward_tiled", 3, 1);
pub const CONV2D_BACKWARD_INPUT_STRIDED: Kernel = kernel(Shader::Conv2d, "conv2d_backward_input_strided", 2, 1);
pub const CONV2D_BACKWARD_WEIGHT: Kernel = kernel(Shader::Conv2d, "conv2d_backward_weight", 2, 1);
pub const CONV2D_BACKWARD_WEIGHT_TILED: Kernel = kernel(Shader::Conv2d, "conv2d_backward_weight_tiled", 2, 1);
pub const AVG_POOL2_FORWARD: Kernel = with_relu(kernel(Shader::Pool, "avg_pool2_forward", 1, 1), 5);
pub const AVG_POOL2_BACKWARD: Kernel = kernel(Shader::Pool, "avg_pool2_backward", 1, 1);
pub const MAX_POOL2_FORWARD: Kernel = with_relu(kernel(Shader::Pool, "max_pool2_forward", 1, 1), 5);
pub const MAX_POOL2_BACKWARD: Kernel = kernel(Shader::Pool, "max_pool2_backward", 2, 1);
pub const UPSAMPLE2_FORWARD: Kernel = kernel(Shader::Upsample, "upsample2_forward", 1, 1);
pub const UPSAMPLE2_BACKWARD: Kernel = kernel(Shader::Upsample, "upsample2_backward", 1, 1);
pub const ADD_UPSAMPLED2: Kernel = with_relu(kernel(Shader::Upsample, "add_upsampled2", 2, 1), 3);
pub const RELU_FORWARD: Kernel = kernel(Shader::Elementwise, "relu_forward", 1, 1);
pub const RELU_BACKWARD: Kernel = kernel(Shader::Elementwise, "relu_backward", 2, 1);
pub const ADD: Kernel = with_relu(kernel(Shader::Elementwise, "add", 2, 1), 1);
pub const ACCUMULATE: Kernel = kernel(Shader::Elementwise, "accumulate", 1, 1);
pub const MATMUL: Kernel = kernel(Shader::Linear, "matmul", 3, 1);
pub const MATMUL_TILED: Kernel = kernel(Shader::Linear, "matmul_tiled", 3, 1);
pub const CHANNEL_SUM: Kernel = kernel(Shader::Reduce, "channel_sum", 1, 1);
pub const CROSS_ENTROPY_FORWARD: Kernel = kernel(Shader::CrossEntropy, "cross_entropy_forward", 2, 1);
pub const CROSS_ENTROPY_BACKWARD: Kernel = kernel(Shader::CrossEntropy, "cross_entropy_backward", 2, 1);
pub const ARGMAX: Kernel = kernel(Shader::Argmax, "argmax_rows", 1, 1);
pub const BATCH_METRICS: Kernel = kernel(Shader::Argmax, "batch_metrics", 3, 1);
pub const ADAM_STEP: Kernel = kernel(Shader::Adam, "adam_step", 1, 3);
pub const GATHER_BATCH: Kernel = kernel(Shader::Gather, "gather_batch", 3, 2);

/// Every kernel, for compiling them all up front (`octconv check`).
pub const ALL_KERNELS: [&Kernel; 25] = [
    &CONV2D_FORWARD,
    &CONV2D_FORWARD_TILED,
    &CONV2D_BACKWARD_INPUT_STRIDED,
    &CONV2D_BACKWARD_WEIGHT,
    &CONV2D_BACKWARD_WEIGHT_TILED,
    &AVG_POOL2_FORWARD,
    &AVG_POOL2_BACKWARD,
    &MAX_POOL2_FORWARD,
    &MAX_POOL2_BACKWARD,
    &UPSAMPLE2_FORWARD,
    &UPSAMPLE2_BACKWARD,
    &ADD_UPSAMPLED2,
    &RELU_FORWARD,
    &RELU_BACKWARD,
    &ADD,
    &ACCUMULATE,
    &MATMUL,
    &MATMUL_TILED,
    &CHANNEL_SUM,
    &CROSS_ENTROPY_FORWARD,
    &CROSS_ENTROPY_BACKWARD,
    &ARGMAX,
    &BATCH_METRICS,
    &ADAM_STEP,
    &GATHER_BATCH,
];

/// Invocations per workgroup of every kernel (`WORKGROUP_SIZE` in common.wgsl).
pub const WORKGROUP_SIZE: u32 = 64;

/// Side of the register tile of the conv and matmul kernels (`TILE` in their WGSL).
const TILE: usize = 4;
/// Output channels per conv2d_forward invocation (`OUT_TILE` in conv2d.wgsl).
const CONV_OUT_TILE: usize = 8;
/// Side of the output tile of one workgroup of a `_tiled` kernel (`BLOCK` in common.wgsl).
const BLOCK: usize = 32;

/// How the heavy kernels (convolutions and matrix products) divide their work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tiling {
    /// Each invocation accumulates a small tile in registers; no workgroup
    /// memory, no barriers. Software drivers (llvmpipe, SwiftShader) run a
    /// workgroup as SIMD lanes of one CPU thread and pay dearly for barriers.
    Registers,
    /// A workgroup stages tiles of both operands in workgroup memory and
    /// shares them, the classic GPU matrix product: for hardware GPUs.
    Workgroup,
}

impl Tiling {
    /// `OCTCONV_TILING=registers|workgroup` if set, else the variant for the adapter's kind.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Result<Tiling, super::GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(value) = std::env::var("OCTCONV_TILING") {
            return match value.as_str() {
                "registers" => Ok(Tiling::Registers),
                "workgroup" => Ok(Tiling::Workgroup),
                _ => Err(super::GpuError::BadSetting {
                    name: "OCTCONV_TILING",
                    value,
                    expected: "registers or workgroup",
                }),
            };
        }
        Ok(match info.device_type {
            wgpu::DeviceType::Cpu => Tiling::Registers,
            _ => Tiling::Workgroup,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Tiling::Registers => "registers",
            Tiling::Workgroup => "workgroup",
        }
    }
}

/// A kernel with its parameters and the number of work items to cover.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Launch {
    pub kernel: &'static Kernel,
    pub params: Vec<u32>,
    pub work_items: u32,
    /// For each storage binding of the kernel, which of the op's buffers
    /// (its inputs, then its output) to bind there. A kernel binding the op
    /// does not use (a bias it is told to skip) gets a repeat of another.
    pub bind: Vec<usize>,
    /// An explicit dispatch grid; otherwise `work_items` are spread flat.
    pub grid: Option<[u32; 3]>,
}

impl Launch {
    /// A launch binding the op's inputs and output in order.
    pub fn new(kernel: &'static Kernel, params: Vec<u32>, work_items: u32) -> Self {
        let bind = (0..(kernel.reads + kernel.writes) as usize).collect();
        Launch { kernel, params, work_items, bind, grid: None }
    }

    /// A launch over a grid of `x_items` work items along x (in workgroups of
    /// 64) by `y` by `z` workgroups, for kernels that read their tile from the
    /// workgroup id.
    pub fn grid(kernel: &'static Kernel, params: Vec<u32>, x_items: usize, y: usize, z: usize) -> Self {
        let mut launch = Launch::new(kernel, params, (x_items * y * z) as u32);
        launch.grid = Some([(x_items as u32).div_ceil(WORKGROUP_SIZE).max(1), y as u32, z as u32]);
        launch
    }

    /// Makes the kernel apply a ReLU to its output, if it can; says whether it can.
    pub fn fuse_relu(&mut self) -> bool {
        match self.kernel.relu_word {
            Some(word) => {
                self.params[word] = 1;
                true
            }
            None => false,
        }
    }

    /// The buffers to bind, picked from the op's `inputs` and `output`.
    pub fn buffers<'a, T: ?Sized>(&self, inputs: &[&'a T], output: &'a T) -> Vec<&'a T> {
        self.bind.iter().map(|&k| if k < inputs.len() { inputs[k] } else { output }).collect()
    }

    /// The dispatch grid: up to 65535 workgroups along x, the rest along y.
    pub fn workgroups(&self) -> [u32; 3] {
        if let Some(grid) = self.grid {
            return grid;
        }
        let groups = self.work_items.div_ceil(WORKGROUP_SIZE).max(1);
        let x = groups.min(65535);
        [x, groups.div_ceil(x), 1]
    }
}

fn u(v: usize) -> u32 {
    v as u32
}

fn to_u32(values: Vec<usize>) -> Vec<u32> {
    values.into_iter().map(u).collect()
}

/// A `_tiled` kernel's launch: one workgroup per BLOCK×BLOCK tile of its
/// `rows` × `cols` result, or None when the grid would exceed 65535 along x.
fn tiled(kernel: &'static Kernel, params: Vec<u32>, rows: usize, cols: usize) -> Option<Launch> {
    let (x, y) = (cols.div_ceil(BLOCK), rows.div_ceil(BLOCK));
    (x <= 65535 && y <= 65535).then(|| Launch::grid(kernel, params, x * WORKGROUP_SIZE as usize, y, 1))
}

/// The kernel launch that computes `op` with the heavy kernels in `tiling`'s
/// variant, or None for ops that move no data (reshape).
pub fn launch_for(op: &Op, inputs: &[&[usize]], output: &[usize], tiling: Tiling) -> Option<Launch> {
    let tiles = |n: usize| n.div_ceil(TILE);
    // The workgroup-tiled launch where that variant is chosen and fits the grid, else the register-blocked one.
    let variant =
        |tiled: Option<Launch>, registers: Launch| tiled.filter(|_| tiling == Tiling::Workgroup).unwrap_or(registers);
    // Matmul parameters: rows, cols, depth, A's row and depth strides, B's depth and column strides, bias.
    let matmul = |params: Vec<usize>| {
        let (rows, cols) = (params[0], params[1]);
        let params = to_u32(params);
        variant(
            tiled(&MATMUL_TILED, params.clone(), rows, cols),
            Launch::grid(&MATMUL, params, tiles(cols), tiles(rows), 1),
        )
    };
    let launch = |kernel: &'static Kernel, params: Vec<usize>, work_items: usize| {
        Launch::new(kernel, to_u32(params), u(work_items))
    };
    // The last word of pool, upsample and add parameters is the ReLU flag (see `Launch::fuse_relu`).
    let pool = |x: &[usize], y: &[usize]| vec![x[0] * x[1], x[2], x[3], y[2], y[3], 0];
    Some(match op {
        Op::Conv2d { stride, padding } => {
            let (x, w, y) = (inputs[0], inputs[1], output);
            let k = w[2];
            let params =
                to_u32(vec![x[0], x[1], x[2], x[3], w[0], y[2], y[3], k, *stride, *padding, w[1] * k * k, k * k, 0, 1]);
            let pixels = x[0] * y[2] * y[3];
            let registers =
                Launch::grid(&CONV2D_FORWARD, params.clone(), y[2] * tiles(y[3]), w[0].div_ceil(CONV_OUT_TILE), x[0]);
            variant(tiled(&CONV2D_FORWARD_TILED, params, w[0], pixels), registers)
        }
        Op::Conv2dBackwardInput { stride, padding, .. } => {
            let (dy, w, dx) = (inputs[0], inputs[1], output);
            let k = w[2];
            if *stride == 1 && *padding < k {
                // dx = conv(dy, weights flipped and with in/out channels swapped, padding k−1−p).
                let params = to_u32(vec![
                    dy[0],
                    dy[1],
                    dy[2],
                    dy[3],
                    dx[1],
                    dx[2],
                    dx[3],
                    k,
                    1,
                    k - 1 - padding,
                    k * k,
                    dx[1] * k * k,
                    1,
                    0,
                ]);
                let (x_items, y) = (dx[2] * tiles(dx[3]), dx[1].div_ceil(CONV_OUT_TILE));
                let pixels = dx[0] * dx[2] * dx[3];
                let registers = Launch::grid(&CONV2D_FORWARD, params.clone(), x_items, y, dx[0]);
                let mut l = variant(tiled(&CONV2D_FORWARD_TILED, params, dx[1], pixels), registers);
                l.bind = vec![0, 1, 1, 2]; // the weights stand in for the unused bias
                l
            } else {
                let params = vec![dx[0], dx[1], dx[2], dx[3], w[0], dy[2], dy[3], k, *stride, *padding, 0, 0, 0, 0];
                launch(&CONV2D_BACKWARD_INPUT_STRIDED, params, numel(dx))
            }
        }
        Op::Conv2dBackwardWeight { stride, padding, kernel } => {
            let (dy, x) = (inputs[0], inputs[1]);
            let params =
                to_u32(vec![x[0], x[1], x[2], x[3], dy[1], dy[2], dy[3], *kernel, *stride, *padding, 0, 0, 0, 0]);
            let reduction = x[1] * kernel * kernel;
            let registers =
                Launch::grid(&CONV2D_BACKWARD_WEIGHT, params.clone(), tiles(x[1]) * kernel * kernel, tiles(dy[1]), 1);
            variant(tiled(&CONV2D_BACKWARD_WEIGHT_TILED, params, dy[1], reduction), registers)
        }
        Op::ChannelSum => {
            let x = inputs[0];
            launch(&CHANNEL_SUM, vec![x[0], x[1], numel(&x[2..])], x[1])
        }
        Op::AvgPool2 => launch(&AVG_POOL2_FORWARD, pool(inputs[0], output), numel(output)),
        Op::AvgPool2Backward { .. } => launch(&AVG_POOL2_BACKWARD, pool(output, inputs[0]), numel(output)),
        Op::MaxPool2 => launch(&MAX_POOL2_FORWARD, pool(inputs[0], output), numel(output)),
        Op::MaxPool2Backward => launch(&MAX_POOL2_BACKWARD, pool(inputs[0], inputs[1]), numel(output)),
        Op::Upsample2 => {
            let x = inputs[0];
            launch(&UPSAMPLE2_FORWARD, vec![x[0] * x[1], x[2], x[3], 0], numel(output))
        }
        Op::Upsample2Backward => {
            launch(&UPSAMPLE2_BACKWARD, vec![output[0] * output[1], output[2], output[3], 0], numel(output))
        }
        Op::AddUpsampled2 => {
            let low = inputs[1];
            launch(&ADD_UPSAMPLED2, vec![low[0] * low[1], low[2], low[3], 0], numel(output))
        }
        Op::Relu => launch(&RELU_FORWARD, vec![numel(output)], numel(output)),
        Op::ReluBackward => launch(&RELU_BACKWARD, vec![numel(output)], numel(output)),
        Op::Add => launch(&ADD, vec![numel(output), 0], numel(output)),
        Op::Linear => {
            let (x, w) = (inputs[0], inputs[1]);
            let (batch, ins, outs) = (x[0], x[1], w[0]);
            matmul(vec![batch, outs, ins, ins, 1, 1, ins, 1])
        }
        Op::LinearBackwardInput => {
            let (dy, w) = (inputs[0], inputs[1]);
            let (batch, outs, ins) = (dy[0], w[0], w[1]);
            let mut l = matmul(vec![batch, ins, outs, outs, 1, ins, 1, 0]);
            l.bind = vec![0, 1, 1, 2];
            l
        }
        Op::LinearBackwardWeight => {
            let (dy, x) = (inputs[0], inputs[1]);
            let (batch, outs, ins) = (dy[0], dy[1], x[1]);
            let mut l = matmul(vec![outs, ins, batch, 1, outs, ins, 1, 0]);
            l.bind = vec![0, 1, 1, 2];
            l
        }
        Op::CrossEntropy => {
            let z = inputs[0];
            // One workgroup reduces the whole batch.
            launch(&CROSS_ENTROPY_FORWARD, vec![z[0], z[1]], WORKGROUP_SIZE as usize)
        }
        Op::CrossEntropyBackward => {
            let z = inputs[0];
            launch(&CROSS_ENTROPY_BACKWARD, vec![z[0], z[1]], z[0])
        }
        Op::Argmax => {
            let x = inputs[0];
            launch(&ARGMAX, vec![x[0], x[1]], x[0])
        }
        Op::Reshape { .. } => return None,
    })
}

/// Whether the kernel computing `op` on these shapes can apply a following ReLU as it writes.
pub fn absorbs_relu(op: &Op, inputs: &[&[usize]], output: &[usize], tiling: Tiling) -> bool {
    launch_for(op, inputs, output, tiling).is_some_and(|launch| launch.kernel.relu_word.is_some())
}

/// `acc += x` over `count` elements.
pub fn accumulate_launch(count: usize) -> Launch {
    Launch::new(&ACCUMULATE, vec![u(count)], u(count))
}

/// One Adam step at step `t` (1-based) over a parameter buffer of `count` values.
pub fn adam_launch(config: &crate::cpu::AdamConfig, t: u64, count: usize) -> Launch {
    Launch::new(&ADAM_STEP, adam_params(config, t), u(count))
}

/// Adam's uniform parameters at step `t`, shared by every parameter tensor.
pub fn adam_params(config: &crate::cpu::AdamConfig, t: u64) -> Vec<u32> {
    let (step_size, bc2_sqrt) = config.bias_corrections(t);
    [config.beta1, config.beta2, config.eps, step_size, bc2_sqrt].map(f32::to_bits).to_vec()
}

/// metrics += (loss · labelled rows, correct rows, labelled rows) for logits [rows, cols].
pub fn batch_metrics_launch(rows: usize, cols: usize) -> Launch {
    // One workgroup reduces the whole batch.
    Launch::new(&BATCH_METRICS, vec![u(rows), u(cols)], WORKGROUP_SIZE)
}

/// Gathers `batch` rows of `pixels` bytes each from a dataset on the GPU,
/// starting at position `first` of an order of `count` examples.
pub fn gather_launch(batch: usize, pixels: usize, first: usize, count: usize) -> Launch {
    Launch::new(&GATHER_BATCH, gather_params(batch, pixels, first, count), u(batch * pixels))
}

/// The gather kernel's uniform parameters (rewritten every step: only `first` changes).
pub fn gather_params(batch: usize, pixels: usize, first: usize, count: usize) -> Vec<u32> {
    to_u32(vec![batch, pixels, first, count])
}
