//! Fully connected layer y = x·Wᵀ + b (weight [out, in], as PyTorch) and its
//! two gradients, all three on one strided matrix-product kernel (matmul)
//! whose parameters say how to read each operand: no transposed copies.
//!
//! Gradient rule: dx = LinearBackwardInput(dy, W) = dy·W,
//! dW = LinearBackwardWeight(dy, x) = dyᵀ·x, db = ChannelSum(dy).

use super::cases::{both_tilings, gradient_case, Case, GradientCase, Seeds, LONG_SUMS, SMALL_SUMS};
use super::fast_cpu::gemm_parallel;
use super::kernel::{
    block_tiled, choose, word, Kernel, KernelParams, Launch, Operand, ParamsLayout, ShaderFile, Tiling,
};
use super::reduce::ChannelSum;
use super::{Family, Gradient, GraphError, NodeId, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::{numel, Tensor};

const SHADER: ShaderFile = ShaderFile { name: "linear.wgsl", source: include_str!("../../shaders/linear.wgsl") };

kernel_params! {
    /// MatmulParams in linear.wgsl: C[m,n] = Σ_k A[m,k]·B[k,n] (+ bias[n]).
    pub struct MatmulParams {
        pub rows: u32,
        pub cols: u32,
        pub depth: u32,
        /// A[m,k] = a[m·a_row_stride + k·a_depth_stride]
        pub a_row_stride: u32,
        pub a_depth_stride: u32,
        /// B[k,n] = b[k·b_depth_stride + n·b_col_stride]
        pub b_depth_stride: u32,
        pub b_col_stride: u32,
        /// 1: add bias[n] to every row.
        pub has_bias: u32,
    }
}

const PARAMS: &ParamsLayout = &MatmulParams::LAYOUT;

pub const MATMUL: Kernel = Kernel::new(SHADER, "matmul", PARAMS, 3, 1);
pub const MATMUL_TILED: Kernel = Kernel::new(SHADER, "matmul_tiled", PARAMS, 3, 1);

pub const FAMILY: Family =
    Family { name: "linear", shaders: &[SHADER], kernels: &[&MATMUL, &MATMUL_TILED], cases, gradients };

/// Side of the register tile of `matmul` (`REGISTER_TILE` in linear.wgsl).
const REGISTER_TILE: usize = 8;

/// x [N,I], weight [O,I], bias [O] -> y [N,O] = x·Wᵀ + b.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Linear;

/// dy [N,O], weight [O,I] -> dx [N,I] = dy·W.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinearBackwardInput;

/// dy [N,O], x [N,I] -> dweight [O,I] = dyᵀ·x.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinearBackwardWeight;

/// The matrix product (rows, cols, depth) reading A and B with these strides.
fn matmul(
    [rows, cols, depth]: [usize; 3],
    [a_row, a_depth]: [usize; 2],
    [b_depth, b_col]: [usize; 2],
    has_bias: bool,
    tiling: Tiling,
) -> Launch {
    let p = MatmulParams {
        rows: word(rows),
        cols: word(cols),
        depth: word(depth),
        a_row_stride: word(a_row),
        a_depth_stride: word(a_depth),
        b_depth_stride: word(b_depth),
        b_col_stride: word(b_col),
        has_bias: has_bias as u32,
    };
    let registers = Launch::grid(&MATMUL, &p, cols.div_ceil(REGISTER_TILE), rows.div_ceil(REGISTER_TILE), 1);
    choose(tiling, block_tiled(&MATMUL_TILED, &p, rows, cols), registers)
}

/// A product without bias: its B operand stands in for the bias binding.
fn without_bias(launch: Launch) -> Launch {
    const A: Operand = Operand::Input(0);
    const B: Operand = Operand::Input(1);
    launch.binding([A, B, B, Operand::Output])
}

impl OpDef for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn arity(&self) -> usize {
        3
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (x, w, b) = (s.rank(0, 2, "x")?, s.rank(1, 2, "weight")?, s.rank(2, 1, "bias")?);
        if w[1] != x[1] {
            return Err(format!("weight expects {} input features but x has {}", w[1], x[1]));
        }
        if b[0] != w[0] {
            return Err(format!("bias has {} values for {} outputs", b[0], w[0]));
        }
        Ok(vec![x[0], w[0]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        2 * numel(output) as u64 * inputs[0][1] as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (x, w, dy) = (g.input(0), g.input(1), g.dy()?);
        Ok(vec![
            g.apply(0, LinearBackwardInput, &[dy, w])?,
            g.apply(1, LinearBackwardWeight, &[dy, x])?,
            g.apply(2, ChannelSum, &[dy])?,
        ])
    }

    /// y[n,o] = b[o] + Σ_i x[n,i] · w[o,i]
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let (batch, ins, outs) = (x.shape[0], x.shape[1], w.shape[0]);
        let mut y = Vec::with_capacity(batch * outs);
        for n in 0..batch {
            let row = &x.data[n * ins..(n + 1) * ins];
            for o in 0..outs {
                let weights = &w.data[o * ins..(o + 1) * ins];
                y.push(b.data[o] + row.iter().zip(weights).map(|(a, b)| a * b).sum::<f32>());
            }
        }
        y
    }

    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let (batch, ins, outs) = (x.shape[0], x.shape[1], w.shape[0]);
        let mut y: Vec<f32> = (0..batch).flat_map(|_| b.data.iter().copied()).collect();
        // y[n,o] += Σ_i x[n,i] · w[o,i]
        gemm_parallel(batch, ins, outs, &x.data, (ins, 1), &w.data, (1, ins), &mut y, (outs, 1), 1.0);
        y
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], tiling: Tiling) -> Option<Launch> {
        let (batch, ins, outs) = (inputs[0][0], inputs[0][1], inputs[1][0]);
        Some(matmul([batch, outs, ins], [ins, 1], [1, ins], true, tiling))
    }
}

impl OpDef for LinearBackwardInput {
    fn name(&self) -> &'static str {
        "linear_backward_input"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (dy, w) = (s.rank(0, 2, "dy")?, s.rank(1, 2, "weight")?);
        if dy[1] != w[0] {
            return Err("dy's features must match the weight's outputs".into());
        }
        Ok(vec![dy[0], w[1]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        2 * numel(output) as u64 * inputs[0][1] as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// dx[n,i] = Σ_o dy[n,o] · w[o,i]
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (dy, w) = (inputs[0], inputs[1]);
        let (batch, outs, ins) = (dy.shape[0], w.shape[0], w.shape[1]);
        let mut dx = vec![0.0; batch * ins];
        for n in 0..batch {
            for i in 0..ins {
                dx[n * ins + i] = (0..outs).map(|o| dy.data[n * outs + o] * w.data[o * ins + i]).sum();
            }
        }
        dx
    }

    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (dy, w) = (inputs[0], inputs[1]);
        let (batch, outs, ins) = (dy.shape[0], w.shape[0], w.shape[1]);
        let mut dx = vec![0.0; batch * ins];
        gemm_parallel(batch, outs, ins, &dy.data, (outs, 1), &w.data, (ins, 1), &mut dx, (ins, 1), 0.0);
        dx
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], tiling: Tiling) -> Option<Launch> {
        let (batch, outs, ins) = (inputs[0][0], inputs[1][0], inputs[1][1]);
        Some(without_bias(matmul([batch, ins, outs], [outs, 1], [ins, 1], false, tiling)))
    }
}

impl OpDef for LinearBackwardWeight {
    fn name(&self) -> &'static str {
        "linear_backward_weight"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (dy, x) = (s.rank(0, 2, "dy")?, s.rank(1, 2, "x")?);
        if dy[0] != x[0] {
            return Err("dy and x must have the same batch".into());
        }
        Ok(vec![dy[1], x[1]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        2 * numel(output) as u64 * inputs[0][0] as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// dw[o,i] = Σ_n dy[n,o] · x[n,i]
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (dy, x) = (inputs[0], inputs[1]);
        let (batch, outs, ins) = (dy.shape[0], dy.shape[1], x.shape[1]);
        let mut dw = vec![0.0; outs * ins];
        for o in 0..outs {
            for i in 0..ins {
                dw[o * ins + i] = (0..batch).map(|n| dy.data[n * outs + o] * x.data[n * ins + i]).sum();
            }
        }
        dw
    }

    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (dy, x) = (inputs[0], inputs[1]);
        let (batch, outs, ins) = (dy.shape[0], dy.shape[1], x.shape[1]);
        let mut dw = vec![0.0; outs * ins];
        gemm_parallel(outs, batch, ins, &dy.data, (1, outs), &x.data, (ins, 1), &mut dw, (ins, 1), 0.0);
        dw
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], tiling: Tiling) -> Option<Launch> {
        let (batch, outs, ins) = (inputs[0][0], inputs[0][1], inputs[1][1]);
        Some(without_bias(matmul([outs, ins, batch], [1, outs], [ins, 1], false, tiling)))
    }
}

/// Linear cases: (batch, in features, out features).
const LINEAR_SHAPES: [[usize; 3]; 5] = [[1, 1, 1], [3, 17, 5], [2, 65, 129], [64, 3136, 256], [64, 256, 10]];

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for [n, i, o] in LINEAR_SHAPES {
        let x = seeds.random(&[n, i]);
        let weight = seeds.random(&[o, i]);
        let dy = seeds.random(&[n, o]);
        let long = if i > 1000 { LONG_SUMS } else { SMALL_SUMS };
        cases.extend(both_tilings(Linear, vec![x.clone(), weight.clone(), seeds.random(&[o])], long));
        cases.extend(both_tilings(LinearBackwardInput, vec![dy.clone(), weight], SMALL_SUMS));
        cases.extend(both_tilings(LinearBackwardWeight, vec![dy, x], SMALL_SUMS));
    }
    cases
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    let case = |[n, i, o]: [usize; 3]| {
        gradient_case(Linear, vec![seeds.random(&[n, i]), seeds.random(&[o, i]), seeds.random(&[o])])
    };
    [[1, 1, 1], [3, 7, 5], [4, 33, 10]].map(case).into_iter().collect()
}
