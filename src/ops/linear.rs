//! Fully connected layer y = x·Wᵀ + b (weight [out, in], as PyTorch) and its
//! two gradients, all three on one strided matrix-product kernel (matmul)
//! whose parameters say how to read each operand: no transposed copies.
//!
//! Gradient rule: dx = LinearBackwardInput(dy, W) = dy·W,
//! dW = LinearBackwardWeight(dy, x) = dyᵀ·x, db = ChannelSum(dy).

use super::cases::{both_tilings, gradient_case, op_case, Case, GradientCase, Seeds, LONG_SUMS, SMALL_SUMS};
use super::fast_cpu::{gemm_parallel, output_buffer};
use super::kernel::{
    block_tiled, choose, word, Kernel, KernelParams, Launch, Operand, ParamsLayout, ShaderFile, Tiling,
};
use super::reduce::ChannelSum;
use super::{Family, Gradient, GraphError, NodeId, Op, OpDef, Shapes};
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
        /// 1: add bias[n] to every row; 2: bias[m] to every column, after the sum.
        pub has_bias: u32,
        /// Products: product z reads A from z·a_batch_stride, B from
        /// z·b_batch_stride and writes C from z·rows·cols.
        pub batch: u32,
        pub a_batch_stride: u32,
        pub b_batch_stride: u32,
    }
}

const PARAMS: &ParamsLayout = &MatmulParams::LAYOUT;

pub const MATMUL: Kernel = Kernel::new(SHADER, "matmul", PARAMS, 3, 1);
pub const MATMUL_TILED: Kernel = Kernel::new(SHADER, "matmul_tiled", PARAMS, 3, 1);
pub const MATMUL_WIDE: Kernel = Kernel::new(SHADER, "matmul_wide", PARAMS, 3, 1).with_workgroup_size(WIDE_WORKGROUP);

pub const FAMILY: Family =
    Family { name: "linear", shaders: &[SHADER], kernels: &[&MATMUL, &MATMUL_WIDE, &MATMUL_TILED], cases, gradients };

/// Side of the register tile of `matmul` (`REGISTER_TILE` in linear.wgsl).
const REGISTER_TILE: usize = 8;

/// Rows and columns of `matmul_wide`'s tile (`WIDE_ROWS`, `WIDE_COLS`).
const WIDE_TILE: [usize; 2] = [32, 16];

/// `matmul_wide`'s workgroup (`WIDE_WORKGROUP`): the seed net's fc1 is 32
/// wide tiles, and llvmpipe gives each thread a workgroup.
const WIDE_WORKGROUP: u32 = 16;

/// x [N,I], weight [O,I], bias [O] -> y [N,O] = x·Wᵀ + b.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Linear;

/// dy [N,O], weight [O,I] -> dx [N,I] = dy·W.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinearBackwardInput;

/// dy [N,O], x [N,I] -> dweight [O,I] = dyᵀ·x.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinearBackwardWeight;

/// What a product adds to C (`has_bias` in linear.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bias {
    None = 0,
    /// bias[n] to every row, the sum starting from it (a linear layer).
    PerColumn = 1,
    /// bias[m] to every column, after the sum (a convolution's channels).
    PerRow = 2,
}

/// The matrix product (rows, cols, depth) reading A and B with these strides.
fn matmul(
    [rows, cols, depth]: [usize; 3],
    [a_row, a_depth]: [usize; 2],
    [b_depth, b_col]: [usize; 2],
    bias: Bias,
    tiling: Tiling,
) -> Launch {
    batched_matmul(1, [rows, cols, depth], [0, a_row, a_depth], [0, b_depth, b_col], bias, tiling)
}

/// A convolution's product per image, y_n = W·cols_n + bias per channel, for
/// `batch` column matrices [depth, cols] and one weight matrix [rows, depth]:
/// binds A = the weight (input 1), B = the columns (input 0), the bias (input 2).
pub(crate) fn shared_weight_product(batch: usize, [rows, cols, depth]: [usize; 3], tiling: Tiling) -> Launch {
    let launch =
        batched_matmul(batch, [rows, cols, depth], [0, depth, 1], [depth * cols, cols, 1], Bias::PerRow, tiling);
    launch.binding([Operand::Input(1), Operand::Input(0), Operand::Input(2), Operand::Output])
}

/// `batch` matrix products (rows, cols, depth), A and B read with these
/// (batch, row or depth, depth or column) strides, C written one after another.
fn batched_matmul(
    batch: usize,
    [rows, cols, depth]: [usize; 3],
    [a_batch, a_row, a_depth]: [usize; 3],
    [b_batch, b_depth, b_col]: [usize; 3],
    bias: Bias,
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
        has_bias: bias as u32,
        batch: word(batch),
        a_batch_stride: word(a_batch),
        b_batch_stride: word(b_batch),
    };
    let [wide_rows, wide_cols] = WIDE_TILE;
    // Only a product that fills the wide tile takes it: conv1's 8 × 9 weight
    // gradient products would leave most of it idle.
    let wide = tiling == Tiling::WideRegisters && rows >= wide_rows && cols >= wide_cols;
    let registers = if wide {
        Launch::new(&MATMUL_WIDE, &p, batch * rows.div_ceil(wide_rows) * cols.div_ceil(wide_cols))
    } else {
        Launch::new(&MATMUL, &p, batch * rows.div_ceil(REGISTER_TILE) * cols.div_ceil(REGISTER_TILE))
    };
    let tiled = block_tiled(&MATMUL_TILED, &p, rows, cols).map(|launch| launch.repeated(batch));
    choose(tiling, tiled, registers)
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
        let mut y = output_buffer(batch * outs);
        y.chunks_exact_mut(outs).for_each(|row| row.copy_from_slice(&b.data));
        // y[n,o] += Σ_i x[n,i] · w[o,i]
        gemm_parallel(batch, ins, outs, &x.data, (ins, 1), &w.data, (1, ins), &mut y, (outs, 1), 1.0);
        y
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], tiling: Tiling) -> Option<Launch> {
        let (batch, ins, outs) = (inputs[0][0], inputs[0][1], inputs[1][0]);
        Some(matmul([batch, outs, ins], [ins, 1], [1, ins], Bias::PerColumn, tiling))
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
        let mut dx = output_buffer(batch * ins);
        gemm_parallel(batch, outs, ins, &dy.data, (outs, 1), &w.data, (ins, 1), &mut dx, (ins, 1), 0.0);
        dx
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], tiling: Tiling) -> Option<Launch> {
        let (batch, outs, ins) = (inputs[0][0], inputs[1][0], inputs[1][1]);
        Some(without_bias(matmul([batch, ins, outs], [outs, 1], [ins, 1], Bias::None, tiling)))
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
        let mut dw = output_buffer(outs * ins);
        gemm_parallel(outs, batch, ins, &dy.data, (1, outs), &x.data, (ins, 1), &mut dw, (ins, 1), 0.0);
        dw
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], tiling: Tiling) -> Option<Launch> {
        let (batch, outs, ins) = (inputs[0][0], inputs[0][1], inputs[1][1]);
        Some(without_bias(matmul([outs, ins, batch], [1, outs], [ins, 1], Bias::None, tiling)))
    }
}

/// A batch of matrix products C[z] = op(A[z]) · op(B[z]) -> [batch, M, N],
/// op(A) [M, K] stored as A [batch, M, K] or, `a_transposed`, [batch, K, M];
/// op(B) [K, N] stored as B [batch, K, N] or, `b_transposed`, [batch, N, K].
/// The Winograd convolutions' products, one per point of the transformed tile.
///
/// Gradient rule: dA = dC·op(B)ᵀ (stored as A is), dB = op(A)ᵀ·dC (stored as
/// B is), each a BatchedMatmul reading its operands transposed as needed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BatchedMatmul {
    pub a_transposed: bool,
    pub b_transposed: bool,
}

impl BatchedMatmul {
    pub const PLAIN: BatchedMatmul = BatchedMatmul { a_transposed: false, b_transposed: false };

    /// (batch, M, K, N) of inputs with these shapes.
    fn dims(&self, a: &[usize], b: &[usize]) -> [usize; 4] {
        let (m, k) = if self.a_transposed { (a[2], a[1]) } else { (a[1], a[2]) };
        let n = if self.b_transposed { b[1] } else { b[2] };
        [a[0], m, k, n]
    }

    /// The strides (batch, row, depth) of A and (batch, depth, column) of B.
    fn strides(&self, [_, m, k, n]: [usize; 4]) -> ([usize; 3], [usize; 3]) {
        let a = if self.a_transposed { [m * k, 1, m] } else { [m * k, k, 1] };
        let b = if self.b_transposed { [k * n, 1, k] } else { [k * n, n, 1] };
        (a, b)
    }
}

impl OpDef for BatchedMatmul {
    fn name(&self) -> &'static str {
        "batched_matmul"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (a, b) = (s.rank(0, 3, "a")?, s.rank(1, 3, "b")?);
        if a[0] != b[0] {
            return Err(format!("a holds {} matrices but b {}", a[0], b[0]));
        }
        let [batch, m, k, n] = self.dims(a, b);
        let b_depth = if self.b_transposed { b[2] } else { b[1] };
        if b_depth != k {
            return Err(format!("a's matrices have {k} columns but b's {b_depth} rows"));
        }
        Ok(vec![batch, m, n])
    }

    fn flops(&self, inputs: &[&[usize]], _output: &[usize]) -> u64 {
        let [batch, m, k, n] = self.dims(inputs[0], inputs[1]);
        2 * (batch * m * k * n) as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (a, b, dc) = (g.input(0), g.input(1), g.dy()?);
        let (at, bt) = (self.a_transposed, self.b_transposed);
        let da = match at {
            false => g.apply(0, BatchedMatmul { a_transposed: false, b_transposed: !bt }, &[dc, b])?,
            true => g.apply(0, BatchedMatmul { a_transposed: bt, b_transposed: true }, &[b, dc])?,
        };
        let db = match bt {
            false => g.apply(1, BatchedMatmul { a_transposed: !at, b_transposed: false }, &[a, dc])?,
            true => g.apply(1, BatchedMatmul { a_transposed: true, b_transposed: at }, &[dc, a])?,
        };
        Ok(vec![da, db])
    }

    /// c[z,m,n] = Σ_k op(A)[z,m,k] · op(B)[z,k,n]
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (a, b) = (inputs[0], inputs[1]);
        let dims = self.dims(&a.shape, &b.shape);
        let [batch, m, k, n] = dims;
        let ([a_batch, a_row, a_depth], [b_batch, b_depth, b_col]) = self.strides(dims);
        let mut c = Vec::with_capacity(batch * m * n);
        for z in 0..batch {
            for row in 0..m {
                for col in 0..n {
                    let term = |d: usize| {
                        a.data[z * a_batch + row * a_row + d * a_depth]
                            * b.data[z * b_batch + d * b_depth + col * b_col]
                    };
                    c.push((0..k).map(term).sum());
                }
            }
        }
        c
    }

    fn cpu_fast(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let (a, b) = (inputs[0], inputs[1]);
        let dims = self.dims(&a.shape, &b.shape);
        let [batch, m, k, n] = dims;
        let ([a_batch, a_row, a_depth], [b_batch, b_depth, b_col]) = self.strides(dims);
        let mut c = vec![0.0; numel(output)];
        for (z, c) in c.chunks_mut(m * n).enumerate() {
            let (a, b) = (&a.data[z * a_batch..][..a_batch], &b.data[z * b_batch..][..b_batch]);
            gemm_parallel(m, k, n, a, (a_row, a_depth), b, (b_depth, b_col), c, (n, 1), 0.0);
        }
        debug_assert_eq!(c.len(), batch * m * n);
        c
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], tiling: Tiling) -> Option<Launch> {
        let dims = self.dims(inputs[0], inputs[1]);
        let [batch, m, k, n] = dims;
        let (a, b) = self.strides(dims);
        Some(without_bias(batched_matmul(batch, [m, n, k], a, b, Bias::None, tiling)))
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
    for (op, a, b) in batched_cases(seeds) {
        cases.extend(both_tilings(op, vec![a, b], SMALL_SUMS));
    }
    cases.extend(wide_cases(seeds));
    cases
}

/// `matmul_wide` (`Tiling::WideRegisters`, products at least one 32×16 tile
/// big): sizes a row and a column past the tile, sums of 1 to 3136 terms,
/// every linear op, every operand order, and conv3's Winograd products.
fn wide_cases(seeds: &mut Seeds) -> Vec<Case> {
    let wide = |op: Op, inputs: Vec<Tensor>, tolerance| op_case(op, inputs, tolerance, Tiling::WideRegisters);
    let mut cases = Vec::new();
    // [batch, inputs, outputs]: the forward product is batch × outputs, summing the inputs.
    for [n, i, o] in [[33, 1, 17], [35, 300, 18], [64, 3136, 256]] {
        let tolerance = if i > 1000 { LONG_SUMS } else { SMALL_SUMS };
        let inputs = vec![seeds.random(&[n, i]), seeds.random(&[o, i]), seeds.random(&[o])];
        cases.push(wide(Linear.into(), inputs, tolerance));
    }
    let [n, i, o] = [40, 19, 5];
    cases.push(wide(LinearBackwardInput.into(), vec![seeds.random(&[n, o]), seeds.random(&[o, i])], SMALL_SUMS));
    let [n, i, o] = [3, 17, 33];
    cases.push(wide(LinearBackwardWeight.into(), vec![seeds.random(&[n, o]), seeds.random(&[n, i])], SMALL_SUMS));
    for dims in [[3, 35, 7, 18], [16, 64, 16, 392]] {
        for (op, a, b) in batched_operands(seeds, dims) {
            cases.push(wide(op.into(), vec![a, b], SMALL_SUMS));
        }
    }
    cases
}

/// Batched products in each storage order: odd sizes, a batch of one, and the
/// seed net's conv3 H→H shapes (16 products of 64×16 by 16×196 for two images).
fn batched_cases(seeds: &mut Seeds) -> Vec<(BatchedMatmul, Tensor, Tensor)> {
    [[1, 1, 1, 1], [3, 5, 7, 9], [2, 13, 17, 11], [16, 64, 16, 392]]
        .into_iter()
        .flat_map(|dims| batched_operands(seeds, dims))
        .collect()
}

/// `batch` products of M×K by K×N in each storage order: the op and its random operands.
fn batched_operands(seeds: &mut Seeds, [batch, m, k, n]: [usize; 4]) -> Vec<(BatchedMatmul, Tensor, Tensor)> {
    let orders = [(false, false), (false, true), (true, false), (true, true)];
    orders
        .into_iter()
        .map(|(a_transposed, b_transposed)| {
            let a = seeds.random(&if a_transposed { [batch, k, m] } else { [batch, m, k] });
            let b = seeds.random(&if b_transposed { [batch, n, k] } else { [batch, k, n] });
            (BatchedMatmul { a_transposed, b_transposed }, a, b)
        })
        .collect()
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    let case = |[n, i, o]: [usize; 3]| {
        gradient_case(Linear, vec![seeds.random(&[n, i]), seeds.random(&[o, i]), seeds.random(&[o])])
    };
    let mut cases: Vec<GradientCase> = [[1, 1, 1], [3, 7, 5], [4, 33, 10]].map(case).into_iter().collect();
    for (op, a, b) in batched_cases(seeds).into_iter().filter(|(_, a, _)| a.data.len() < 1000) {
        cases.push(gradient_case(op, vec![a, b]));
    }
    cases
}
