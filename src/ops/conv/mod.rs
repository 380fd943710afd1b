//! 2-D convolution (NCHW, square kernel, bias) and its two gradients.
//!
//! Gradient rule: for y = conv(x, w) + b, dx = Conv2dBackwardInput(dy, w),
//! dw = Conv2dBackwardWeight(dy, x), db = ChannelSum(dy). The two backward
//! ops are dedicated kernels because they are where the time goes: the input
//! gradient of a stride-1 convolution runs on the forward kernel itself
//! (dy convolved with the flipped, transposed weights, no copy of them), and
//! the weight gradient is a reduction over batch and pixels that no other
//! op expresses.
//!
//! Kernels (conv2d.wgsl): register-blocked ones for software drivers and
//! workgroup-tiled implicit GEMMs for hardware GPUs (`Tiling`). The CPU twin
//! and the fast CPU version are in `cpu.rs`.

mod cpu;

use super::cases::{
    both_tilings, gradient_case, op_case, single, Case, GradientCase, Seeds, EXACT, LONG_SUMS, SMALL_SUMS,
};
use super::kernel::{
    block_tiled, choose, word, Kernel, KernelParams, Launch, Operand, ParamsLayout, ShaderFile, Tiling,
    MAX_BINDING_BYTES,
};
use super::linear::{shared_weight_product, BatchedMatmul};
use super::reduce::ChannelSum;
use super::reshape::Reshape;
use super::{conv_output_size, elementwise_flops, Family, Gradient, GraphError, NodeId, Op, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::{numel, Tensor};

const SHADER: ShaderFile = ShaderFile { name: "conv2d.wgsl", source: include_str!("../../../shaders/conv2d.wgsl") };

kernel_params! {
    /// Conv2dParams in conv2d.wgsl.
    pub struct Conv2dParams {
        pub batch: u32,
        pub in_channels: u32,
        pub in_height: u32,
        pub in_width: u32,
        pub out_channels: u32,
        pub out_height: u32,
        pub out_width: u32,
        pub kernel: u32,
        pub stride: u32,
        pub padding: u32,
        /// Weight (a, b, u, v) is at a·weight_out_stride + b·weight_in_stride + tap.
        pub weight_out_stride: u32,
        pub weight_in_stride: u32,
        /// 1: the tap is flipped, (k−1−u)·k + (k−1−v).
        pub flip: u32,
        pub has_bias: u32,
    }
}

const PARAMS: &ParamsLayout = &Conv2dParams::LAYOUT;

pub const CONV2D_FORWARD: Kernel = Kernel::new(SHADER, "conv2d_forward", PARAMS, 3, 1);
pub const CONV2D_FORWARD_TILED: Kernel = Kernel::new(SHADER, "conv2d_forward_tiled", PARAMS, 3, 1);
pub const CONV2D_BACKWARD_INPUT_STRIDED: Kernel = Kernel::new(SHADER, "conv2d_backward_input_strided", PARAMS, 2, 1);
pub const CONV2D_BACKWARD_WEIGHT: Kernel = Kernel::new(SHADER, "conv2d_backward_weight", PARAMS, 2, 1);
pub const CONV2D_BACKWARD_WEIGHT_WIDE: Kernel = Kernel::new(SHADER, "conv2d_backward_weight_wide", PARAMS, 2, 1);
pub const CONV2D_BACKWARD_WEIGHT_TILED: Kernel = Kernel::new(SHADER, "conv2d_backward_weight_tiled", PARAMS, 2, 1);
pub const CONV2D_IM2COL: Kernel = Kernel::new(SHADER, "conv2d_im2col", PARAMS, 1, 1);

pub const FAMILY: Family = Family {
    name: "conv",
    shaders: &[SHADER],
    kernels: &[
        &CONV2D_FORWARD,
        &CONV2D_FORWARD_TILED,
        &CONV2D_BACKWARD_INPUT_STRIDED,
        &CONV2D_BACKWARD_WEIGHT,
        &CONV2D_BACKWARD_WEIGHT_WIDE,
        &CONV2D_BACKWARD_WEIGHT_TILED,
        &CONV2D_IM2COL,
    ],
    cases,
    gradients,
};

/// Side of the register tile (`TILE` in conv2d.wgsl).
const TILE: usize = 4;
/// Output columns per conv2d_forward invocation (`COL_TILE` in conv2d.wgsl).
const COL_TILE: usize = 8;
/// Output channels per conv2d_forward invocation (`OUT_TILE` in conv2d.wgsl).
const OUT_TILE: usize = 8;
/// Side of conv2d_backward_weight_wide's tile (`WIDE_TILE` in conv2d.wgsl).
const WIDE_TILE: usize = 8;
/// The fewest invocations the wide weight-gradient kernel is used with: below
/// it (the first layers, with few channels) too many lanes would sit idle.
const WIDE_INVOCATIONS: usize = 128;

/// x [N,C,H,W], weight [O,C,K,K], bias [O] -> y [N,O,H',W'].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv2d {
    pub stride: usize,
    pub padding: usize,
    /// The weight gradient as per-image products dy·im2col(x)ᵀ summed over
    /// the batch (`gemm_weight_gradient`) rather than Conv2dBackwardWeight:
    /// for a layer with fewer input channels than the weight-gradient
    /// kernels' tile, whose lanes would mostly repeat one channel.
    pub weight_gradient_as_products: bool,
}

impl Conv2d {
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2d { stride, padding, weight_gradient_as_products: false }
    }

    /// The convolution for a GPU with register-blocked kernels: the weight
    /// gradient as products when `in_channels` would leave the weight-gradient
    /// kernels' tile of TILE input channels mostly repeating one.
    pub fn for_register_kernels(stride: usize, padding: usize, in_channels: usize) -> Self {
        Conv2d { stride, padding, weight_gradient_as_products: in_channels < TILE }
    }
}

/// x [N,C,H,W] -> [N, C·K·K, H'·W']: each image's column matrix (column q
/// holds the C·K·K inputs output pixel q reads, zero in the padding).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Im2col {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Im2col {
    /// Whether the column matrices of `x` fit one storage binding (`MAX_BINDING_BYTES`).
    pub fn fits(&self, x: &[usize]) -> bool {
        let columns = conv_output_size([x[2], x[3]], self.kernel, self.stride, self.padding)
            .map(|[h, w]| x[0] * x[1] * self.kernel * self.kernel * h * w);
        columns.is_ok_and(|values| values * 4 <= MAX_BINDING_BYTES)
    }
}

/// cols [N, C·K·K, P] (`Im2col`'s), weight [O,C,K,K], bias [O] -> y [N,O,P]
/// = W·cols_n + bias per image: a convolution as one product per image over
/// the shared weight matrix (`shared_weight_product`). Forward only: it
/// serves inference on software GPUs where Winograd's transformed tensors
/// would not fit a storage binding (conv3 at a batch of 1000).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ColumnsProduct;

/// dy [N,O,H',W'], weight [O,C,K,K] -> dx [N,C,H,W]; `input_size` is (H, W).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dBackwardInput {
    pub stride: usize,
    pub padding: usize,
    pub input_size: [usize; 2],
}

/// dy [N,O,H',W'], x [N,C,H,W] -> dweight [O,C,K,K].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dBackwardWeight {
    pub stride: usize,
    pub padding: usize,
    pub kernel: usize,
}

impl Conv2dParams {
    /// A convolution of `x` [N,C,H,W] into `out_channels` maps of the
    /// spatial size of `out` [.., .., H', W'], without bias or weight layout.
    fn geometry(x: &[usize], out_channels: usize, out: &[usize], kernel: usize, stride: usize, padding: usize) -> Self {
        Conv2dParams {
            batch: word(x[0]),
            in_channels: word(x[1]),
            in_height: word(x[2]),
            in_width: word(x[3]),
            out_channels: word(out_channels),
            out_height: word(out[2]),
            out_width: word(out[3]),
            kernel: word(kernel),
            stride: word(stride),
            padding: word(padding),
            ..Conv2dParams::default()
        }
    }
}

/// The forward kernel's launch for these parameters (also the stride-1 input gradient).
fn forward_launch(p: Conv2dParams, tiling: Tiling) -> Launch {
    let (batch, out_channels) = (p.batch as usize, p.out_channels as usize);
    let (out_h, out_w) = (p.out_height as usize, p.out_width as usize);
    let registers =
        Launch::grid(&CONV2D_FORWARD, &p, batch * out_h * out_w.div_ceil(COL_TILE), out_channels.div_ceil(OUT_TILE), 1);
    choose(tiling, block_tiled(&CONV2D_FORWARD_TILED, &p, out_channels, batch * out_h * out_w), registers)
}

impl OpDef for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn arity(&self) -> usize {
        3
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (x, w, b) = (s.rank(0, 4, "x")?, s.rank(1, 4, "weight")?, s.rank(2, 1, "bias")?);
        if w[1] != x[1] {
            return Err(format!("weight expects {} input channels but x has {}", w[1], x[1]));
        }
        if w[2] != w[3] {
            return Err("the kernel must be square".into());
        }
        if b[0] != w[0] {
            return Err(format!("bias has {} values for {} output channels", b[0], w[0]));
        }
        let [h, wd] = conv_output_size([x[2], x[3]], w[2], self.stride, self.padding)?;
        Ok(vec![x[0], w[0], h, wd])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        2 * numel(output) as u64 * numel(&inputs[1][1..]) as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (x, w, dy) = (g.input(0), g.input(1), g.dy()?);
        let (stride, padding, kernel) = (self.stride, self.padding, g.shape(w)[2]);
        let input_size = g.size_2d(x);
        let dw = match self.weight_gradient_as_products && g.wanted[1] {
            true => gemm_weight_gradient(g, Im2col { kernel, stride, padding }, dy, x, w)?,
            false => g.apply(1, Conv2dBackwardWeight { stride, padding, kernel }, &[dy, x])?,
        };
        Ok(vec![
            g.apply(0, Conv2dBackwardInput { stride, padding, input_size }, &[dy, w])?,
            dw,
            g.apply(2, ChannelSum, &[dy])?,
        ])
    }

    fn cpu(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        cpu::conv2d(i[0], i[1], i[2], self.stride, self.padding, out)
    }

    fn cpu_fast(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        cpu::conv2d_fast(i[0], i[1], i[2], self.stride, self.padding, out)
    }

    fn launch(&self, inputs: &[&[usize]], y: &[usize], tiling: Tiling) -> Option<Launch> {
        let (x, w) = (inputs[0], inputs[1]);
        let k = w[2];
        let p = Conv2dParams {
            weight_out_stride: word(w[1] * k * k),
            weight_in_stride: word(k * k),
            has_bias: 1,
            ..Conv2dParams::geometry(x, w[0], y, k, self.stride, self.padding)
        };
        Some(forward_launch(p, tiling))
    }
}

/// dw = Σ_n dy_n · im2col(x_n)ᵀ: dy [N,O,H',W'] read as [N, O, P], the
/// column matrices [N, C·K·K, P] read transposed, one product per image
/// (BatchedMatmul: every SIMD lane busy even for one input channel), the
/// products summed over the batch (ChannelSum of [N, O·C·K·K]) and read as
/// [O,C,K,K]. The reshapes move no data.
fn gemm_weight_gradient(
    g: &mut Gradient,
    im2col: Im2col,
    dy: NodeId,
    x: NodeId,
    w: NodeId,
) -> Result<Option<NodeId>, GraphError> {
    let (dy_shape, w_shape) = (g.shape(dy), g.shape(w));
    let (batch, outs, pixels, depth) = (dy_shape[0], dy_shape[1], dy_shape[2] * dy_shape[3], numel(&w_shape[1..]));
    let name = format!("{}.1", g.name);
    let mut apply = |what: &str, op: Op, args: &[NodeId]| g.graph.apply_op(&format!("{name}.{what}"), op, args);
    let dy_rows = apply("dy_rows", Reshape { shape: vec![batch, outs, pixels] }.into(), &[dy])?;
    let cols = apply("im2col", im2col.into(), &[x])?;
    let transposed_cols = BatchedMatmul { a_transposed: false, b_transposed: true };
    let per_image = apply("per_image", transposed_cols.into(), &[dy_rows, cols])?;
    let flat = apply("flat", Reshape { shape: vec![batch, outs * depth] }.into(), &[per_image])?;
    let summed = apply("sum", ChannelSum.into(), &[flat])?;
    g.apply(1, Reshape { shape: w_shape }, &[summed])
}

impl OpDef for Im2col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let x = s.rank(0, 4, "x")?;
        let [h, w] = conv_output_size([x[2], x[3]], self.kernel, self.stride, self.padding)?;
        Ok(vec![x[0], x[1] * self.kernel * self.kernel, h * w])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    fn cpu(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        cpu::im2col(i[0], self.kernel, self.stride, self.padding, out)
    }

    fn launch(&self, inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let x = inputs[0];
        let [oh, ow] = conv_output_size([x[2], x[3]], self.kernel, self.stride, self.padding).ok()?;
        let p = Conv2dParams::geometry(x, 0, &[0, 0, oh, ow], self.kernel, self.stride, self.padding);
        Some(Launch::new(&CONV2D_IM2COL, &p, output[0] * output[2]))
    }
}

impl OpDef for ColumnsProduct {
    fn name(&self) -> &'static str {
        "columns_product"
    }

    fn arity(&self) -> usize {
        3
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (cols, w, bias) = (s.rank(0, 3, "cols")?, s.rank(1, 4, "weight")?, s.rank(2, 1, "bias")?);
        if cols[1] != numel(&w[1..]) {
            return Err(format!("cols hold {} values a pixel but the weight reads {}", cols[1], numel(&w[1..])));
        }
        if bias[0] != w[0] {
            return Err(format!("bias has {} values for {} output channels", bias[0], w[0]));
        }
        Ok(vec![cols[0], w[0], cols[2]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        2 * numel(output) as u64 * inputs[0][1] as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// y[n,o,q] = Σ_r w[o,r] · cols[n,r,q], then + bias[o]
    fn cpu(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        let (cols, w, bias) = (i[0], i[1], i[2]);
        let [batch, outs, pixels] = [out[0], out[1], out[2]];
        let depth = cols.shape[1];
        let mut y = Vec::with_capacity(numel(out));
        for n in 0..batch {
            for o in 0..outs {
                for q in 0..pixels {
                    let sum: f32 =
                        (0..depth).map(|r| w.data[o * depth + r] * cols.data[(n * depth + r) * pixels + q]).sum();
                    y.push(sum + bias.data[o]);
                }
            }
        }
        y
    }

    fn launch(&self, inputs: &[&[usize]], output: &[usize], tiling: Tiling) -> Option<Launch> {
        Some(shared_weight_product(output[0], [output[1], output[2], inputs[0][1]], tiling))
    }
}

impl OpDef for Conv2dBackwardInput {
    fn name(&self) -> &'static str {
        "conv2d_backward_input"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (dy, w) = (s.rank(0, 4, "dy")?, s.rank(1, 4, "weight")?);
        let out = conv_output_size(self.input_size, w[2], self.stride, self.padding)?;
        if dy[1] != w[0] || dy[2..] != out {
            return Err(format!("dy must be [N, {}, {}, {}]", w[0], out[0], out[1]));
        }
        Ok(vec![dy[0], w[1], self.input_size[0], self.input_size[1]])
    }

    fn flops(&self, inputs: &[&[usize]], _output: &[usize]) -> u64 {
        2 * numel(inputs[0]) as u64 * numel(&inputs[1][1..]) as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    fn cpu(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        cpu::conv2d_backward_input(i[0], i[1], self.stride, self.padding, out)
    }

    fn cpu_fast(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        cpu::conv2d_backward_input_fast(i[0], i[1], self.stride, self.padding, out)
    }

    fn launch(&self, inputs: &[&[usize]], dx: &[usize], tiling: Tiling) -> Option<Launch> {
        let (dy, w) = (inputs[0], inputs[1]);
        let k = w[2];
        let (stride, padding) = (self.stride, self.padding);
        if stride == 1 && padding < k {
            // dx = conv(dy, weights flipped and with in/out channels swapped, padding k−1−p).
            let p = Conv2dParams {
                weight_out_stride: word(k * k),
                weight_in_stride: word(dx[1] * k * k),
                flip: 1,
                ..Conv2dParams::geometry(dy, dx[1], dx, k, 1, k - 1 - padding)
            };
            const DY: Operand = Operand::Input(0);
            const WEIGHT: Operand = Operand::Input(1);
            // The weights stand in for the bias the kernel is told to skip.
            Some(forward_launch(p, tiling).binding([DY, WEIGHT, WEIGHT, Operand::Output]))
        } else {
            let p = Conv2dParams::geometry(dx, w[0], dy, k, stride, padding);
            Some(Launch::new(&CONV2D_BACKWARD_INPUT_STRIDED, &p, numel(dx)))
        }
    }
}

impl OpDef for Conv2dBackwardWeight {
    fn name(&self) -> &'static str {
        "conv2d_backward_weight"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (dy, x) = (s.rank(0, 4, "dy")?, s.rank(1, 4, "x")?);
        let out = conv_output_size([x[2], x[3]], self.kernel, self.stride, self.padding)?;
        if dy[0] != x[0] || dy[2..] != out {
            return Err(format!("dy must be [{}, O, {}, {}]", x[0], out[0], out[1]));
        }
        Ok(vec![dy[1], x[1], self.kernel, self.kernel])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        2 * numel(inputs[0]) as u64 * numel(&output[1..]) as u64
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    fn cpu(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        cpu::conv2d_backward_weight(i[0], i[1], self.stride, self.padding, out)
    }

    fn cpu_fast(&self, i: &[&Tensor], out: &[usize]) -> Vec<f32> {
        cpu::conv2d_backward_weight_fast(i[0], i[1], self.stride, self.padding, out)
    }

    fn launch(&self, inputs: &[&[usize]], _dw: &[usize], tiling: Tiling) -> Option<Launch> {
        let (dy, x) = (inputs[0], inputs[1]);
        let k = self.kernel;
        let p = Conv2dParams::geometry(x, dy[1], dy, k, self.stride, self.padding);
        let wide = [x[1].div_ceil(WIDE_TILE) * k * k, dy[1].div_ceil(WIDE_TILE)];
        let registers = if wide[0] * wide[1] >= WIDE_INVOCATIONS {
            Launch::grid(&CONV2D_BACKWARD_WEIGHT_WIDE, &p, wide[0], wide[1], 1)
        } else {
            Launch::grid(&CONV2D_BACKWARD_WEIGHT, &p, x[1].div_ceil(TILE) * k * k, dy[1].div_ceil(TILE), 1)
        };
        Some(choose(tiling, block_tiled(&CONV2D_BACKWARD_WEIGHT_TILED, &p, dy[1], x[1] * k * k), registers))
    }
}

/// Conv cases: (batch, in channels, height, width, out channels, kernel, stride, padding).
pub const CONV_SHAPES: [[usize; 8]; 12] = [
    [1, 1, 5, 7, 1, 3, 1, 1],
    // A kernel larger than the image, the output the input's size.
    [2, 2, 1, 2, 3, 5, 1, 2],
    [2, 3, 9, 11, 17, 5, 2, 2],
    [3, 17, 8, 6, 8, 1, 1, 0],
    [2, 8, 13, 13, 3, 3, 2, 0],
    [1, 3, 4, 4, 2, 5, 1, 2],
    // The seed network's conv2 H→H at batch 5 and conv3 H→H at batch 4; 7×7
    // maps of 9 images. The CPU device multiplies 2 images of 14×14 (8 of 7×7)
    // in one GEMM, so these end on a block of one.
    [5, 8, 14, 14, 16, 3, 1, 1],
    [4, 16, 14, 14, 64, 3, 1, 1],
    [9, 4, 7, 7, 5, 3, 1, 1],
    // Enough channels for the wide weight-gradient kernel, tiles left part-filled.
    [2, 20, 9, 7, 12, 5, 2, 2],
    [3, 20, 7, 7, 12, 5, 1, 2],
    // Output channels off the CPU kernels' 16-lane vectors and a batch off
    // their groups of 8 images (the weight gradient's sums), odd map sizes.
    [10, 5, 6, 7, 37, 3, 1, 1],
];

/// The output shape of a convolution case.
pub fn conv_case_output([n, _, h, w, o, k, stride, padding]: [usize; 8]) -> Vec<usize> {
    let [oh, ow] = conv_output_size([h, w], k, stride, padding).expect("conv cases have valid shapes");
    vec![n, o, oh, ow]
}

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for shape in CONV_SHAPES {
        let [n, c, h, w, o, k, stride, padding] = shape;
        let x = seeds.random(&[n, c, h, w]);
        let weight = seeds.random(&[o, c, k, k]);
        let bias = seeds.random(&[o]);
        let dy = seeds.random(&conv_case_output(shape));
        cases.extend(both_tilings(Conv2d::new(stride, padding), vec![x.clone(), weight.clone(), bias], SMALL_SUMS));
        let input_size = [h, w];
        cases.extend(both_tilings(
            Conv2dBackwardInput { stride, padding, input_size },
            vec![dy.clone(), weight],
            LONG_SUMS,
        ));
        cases.push(single(Im2col { kernel: k, stride, padding }, vec![x.clone()], EXACT));
        cases.extend(both_tilings(Conv2dBackwardWeight { stride, padding, kernel: k }, vec![dy, x], LONG_SUMS));
    }
    // [batch, C·K·K, pixels, out channels]: one element, sizes off the 8×8
    // and 32×16 tiles, conv3's H→H (both product kernels and the tiled one).
    for [n, r, q, o] in [[1, 1, 1, 1], [3, 18, 35, 5], [2, 27, 50, 33], [2, 144, 196, 64]] {
        let inputs = vec![seeds.random(&[n, r, q]), seeds.random(&[o, r, 1, 1]), seeds.random(&[o])];
        cases.extend(Tiling::ALL.map(|tiling| op_case(ColumnsProduct, inputs.clone(), SMALL_SUMS, tiling)));
    }
    cases
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    // Padding 1 and 2, stride 1 and 2, kernels 1, 3 and 5, one channel and several.
    let shapes =
        [[1, 1, 5, 5, 1, 3, 1, 1], [2, 3, 7, 6, 4, 3, 2, 1], [1, 2, 6, 7, 3, 5, 1, 2], [2, 3, 5, 5, 2, 1, 1, 0]];
    let mut case = |[n, c, h, w, o, k, stride, padding]: [usize; 8], weight_gradient_as_products: bool| {
        let inputs = vec![seeds.random(&[n, c, h, w]), seeds.random(&[o, c, k, k]), seeds.random(&[o])];
        gradient_case(Conv2d { stride, padding, weight_gradient_as_products }, inputs)
    };
    let mut cases: Vec<GradientCase> = shapes.into_iter().map(|shape| case(shape, false)).collect();
    // The weight gradient as products of dy and the column matrices, stride 1 and 2.
    cases.push(case([3, 1, 6, 5, 4, 3, 1, 1], true));
    cases.push(case([2, 2, 7, 6, 3, 3, 2, 1], true));
    cases
}
