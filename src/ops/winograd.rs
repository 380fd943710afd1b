//! Winograd F(2×2, 3×3) convolution: a 3×3, stride-1, padding-1 convolution
//! as four ops (winograd.wgsl explains the transforms):
//!
//!   U = WinogradWeight(w)            [16, O, C]
//!   V = WinogradInput(x)             [16, C, T]
//!   M = BatchedMatmul(U, V)          [16, O, T]   (16 products, one per tile point)
//!   y = WinogradOutput(M, bias)      [N, O, H, W]
//!
//! It spends 16 multiply-adds per 2×2 output tile and channel pair where the
//! direct convolution spends 36, which is what the software drivers (compute
//! bound, no tensor cores) need. The backward pass is the same four ops'
//! gradient rules, so it is Winograd too: dM = A dY Aᵀ is computed once and
//! feeds both dU = dM·Vᵀ (the weight gradient, a long sum over tiles) and
//! dV = Uᵀ·dM (the input gradient); V is the forward pass's.
//!
//! Gradient rules: WinogradInput → WinogradInputBackward(dV),
//! WinogradWeight → WinogradWeightBackward(dU), WinogradOutput →
//! (WinogradOutputBackward(dy), ChannelSum(dy)). Each transform's backward is
//! its transpose.
//!
//! The CPU twins multiply by the transform matrices written out (`BT`, `G`,
//! `AT`); the kernels have them expanded by hand, so the check compares two
//! independent writings.

use super::cases::{gradient_case, single, Case, GradientCase, Seeds, SMALL_SUMS};
use super::kernel::{word, Kernel, KernelParams, Launch, ParamsLayout, ShaderFile, Tiling, MAX_BINDING_BYTES};
use super::linear::BatchedMatmul;
use super::reduce::ChannelSum;
use super::{elementwise_flops, Family, Gradient, GraphBuilder, GraphError, NodeId, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::{numel, Tensor};

const SHADER: ShaderFile = ShaderFile { name: "winograd.wgsl", source: include_str!("../../shaders/winograd.wgsl") };

kernel_params! {
    /// WinogradParams in winograd.wgsl.
    pub struct WinogradParams {
        pub batch: u32,
        /// Of the map transformed; the input channels of the weight transforms.
        pub channels: u32,
        pub height: u32,
        pub width: u32,
        pub tiles_high: u32,
        pub tiles_wide: u32,
        /// The weight transforms' output channels.
        pub out_channels: u32,
    }
}

const PARAMS: &ParamsLayout = &WinogradParams::LAYOUT;

pub const WINOGRAD_INPUT: Kernel = Kernel::new(SHADER, "winograd_input", PARAMS, 1, 1);
pub const WINOGRAD_INPUT_BACKWARD: Kernel = Kernel::new(SHADER, "winograd_input_backward", PARAMS, 1, 1);
pub const WINOGRAD_WEIGHT: Kernel = Kernel::new(SHADER, "winograd_weight", PARAMS, 1, 1);
pub const WINOGRAD_WEIGHT_BACKWARD: Kernel = Kernel::new(SHADER, "winograd_weight_backward", PARAMS, 1, 1);
pub const WINOGRAD_OUTPUT: Kernel = Kernel::new(SHADER, "winograd_output", PARAMS, 2, 1);
pub const WINOGRAD_OUTPUT_BACKWARD: Kernel = Kernel::new(SHADER, "winograd_output_backward", PARAMS, 1, 1);

pub const FAMILY: Family = Family {
    name: "winograd",
    shaders: &[SHADER],
    kernels: &[
        &WINOGRAD_INPUT,
        &WINOGRAD_INPUT_BACKWARD,
        &WINOGRAD_WEIGHT,
        &WINOGRAD_WEIGHT_BACKWARD,
        &WINOGRAD_OUTPUT,
        &WINOGRAD_OUTPUT_BACKWARD,
    ],
    cases,
    gradients,
};

/// Points of a transformed tile.
pub const POINTS: usize = 16;

/// Bᵀ: the input transform, V = Bᵀ d B.
const BT: [[f32; 4]; 4] = [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]];
/// G: the kernel transform, U = G g Gᵀ.
const G: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
/// Aᵀ: the output transform, Y = Aᵀ M Aᵀᵀ.
const AT: [[f32; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];

/// Whether a convolution of `x` [N,C,H,W] by `weight` [O,C,K,K] can run as
/// Winograd F(2×2, 3×3), and pays: `suits` it, with every transformed
/// tensor within `MAX_BINDING_BYTES` (a larger batch keeps another lowering:
/// the transformed output M is 4× the output's size).
pub fn applies(x: &[usize], weight: &[usize], stride: usize, padding: usize) -> bool {
    let tiles = Tiles::of(x).count();
    let largest = POINTS * tiles * x[1].max(weight[0]) * 4;
    suits(x, weight, stride, padding) && largest <= MAX_BINDING_BYTES
}

/// The convolutions Winograd F(2×2, 3×3) pays for, whatever the batch: a 3×3
/// kernel, stride 1, padding 1, at least `MIN_CHANNELS` channels on each side
/// (the products' depth and rows; below that, the transforms cost more than
/// they save).
pub fn suits(x: &[usize], weight: &[usize], stride: usize, padding: usize) -> bool {
    weight[2] == 3 && stride == 1 && padding == 1 && x[1].min(weight[0]) >= MIN_CHANNELS
}

/// The fewest input and output channels `applies` takes.
pub const MIN_CHANNELS: usize = 16;

/// y = conv(x, weight) + bias for a convolution `applies` takes, as the four
/// ops, named `name` (the output) and `name.winograd_*`.
pub fn conv2d(
    g: &mut dyn GraphBuilder,
    name: &str,
    x: NodeId,
    weight: NodeId,
    bias: NodeId,
) -> Result<NodeId, GraphError> {
    let [batch, _, height, width] = g.shape_of(x).try_into().expect("conv inputs are NCHW");
    let u = g.apply_op(&format!("{name}.winograd_weight"), WinogradWeight.into(), &[weight])?;
    let v = g.apply_op(&format!("{name}.winograd_input"), WinogradInput.into(), &[x])?;
    let m = g.apply_op(&format!("{name}.winograd_product"), BatchedMatmul::PLAIN.into(), &[u, v])?;
    g.apply_op(name, WinogradOutput { batch, height, width }.into(), &[m, bias])
}

/// The 2×2 output tiles of an N × H × W map.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tiles {
    batch: usize,
    height: usize,
    width: usize,
    high: usize,
    wide: usize,
}

impl Tiles {
    fn new(batch: usize, height: usize, width: usize) -> Self {
        Tiles { batch, height, width, high: height.div_ceil(2), wide: width.div_ceil(2) }
    }

    /// The tiles of an NCHW map.
    fn of(shape: &[usize]) -> Self {
        Tiles::new(shape[0], shape[2], shape[3])
    }

    fn count(&self) -> usize {
        self.batch * self.high * self.wide
    }

    /// Tile t as (image, tile row, tile column).
    fn position(&self, t: usize) -> (usize, usize, usize) {
        (t / (self.high * self.wide), (t / self.wide) % self.high, t % self.wide)
    }

    fn params(&self, channels: usize) -> WinogradParams {
        WinogradParams {
            batch: word(self.batch),
            channels: word(channels),
            height: word(self.height),
            width: word(self.width),
            tiles_high: word(self.high),
            tiles_wide: word(self.wide),
            out_channels: 0,
        }
    }

    /// The shape of a transformed map of `channels` channels.
    fn transformed(&self, channels: usize) -> Vec<usize> {
        vec![POINTS, channels, self.count()]
    }

    /// The tile count a transformed map [16, C, T] must have, or why it has not.
    fn check(&self, transformed: &[usize], what: &str) -> Result<(), String> {
        if transformed[0] != POINTS || transformed[2] != self.count() {
            return Err(format!(
                "{what} must be [16, C, {}] for {} images of {}×{}, got {transformed:?}",
                self.count(),
                self.batch,
                self.height,
                self.width
            ));
        }
        Ok(())
    }
}

/// (L · X · Rᵀ) for small matrices given as rows.
fn sandwich<const I: usize, const J: usize, const K: usize, const L: usize>(
    left: &[[f32; J]; I],
    x: &[[f32; K]; J],
    right: &[[f32; K]; L],
) -> [[f32; L]; I] {
    let mut out = [[0.0; L]; I];
    for (i, row) in out.iter_mut().enumerate() {
        for (l, value) in row.iter_mut().enumerate() {
            for (j, x_row) in x.iter().enumerate() {
                for (k, &x_jk) in x_row.iter().enumerate() {
                    *value += left[i][j] * x_jk * right[l][k];
                }
            }
        }
    }
    out
}

/// The transpose of a small matrix.
fn transposed<const R: usize, const C: usize>(m: &[[f32; C]; R]) -> [[f32; R]; C] {
    std::array::from_fn(|c| std::array::from_fn(|r| m[r][c]))
}

/// x [N,C,H,W] -> V [16, C, T]: V[ξ, c, t] = (Bᵀ d B)[ξ], d the 4×4 patch of tile t.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WinogradInput;

/// dV [16, C, T] -> dx [N,C,H,W]: each patch's B dV Bᵀ added back where it was read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WinogradInputBackward {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
}

/// w [O,C,3,3] -> U [16, O, C]: U[ξ, o, c] = (G g Gᵀ)[ξ].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WinogradWeight;

/// dU [16, O, C] -> dw [O,C,3,3] = Gᵀ dU G.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WinogradWeightBackward;

/// M [16, O, T], bias [O] -> y [N,O,H,W]: each tile's Aᵀ M A plus the bias.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WinogradOutput {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
}

/// dy [N,O,H,W] -> dM [16, O, T] = A dY Aᵀ for each 2×2 tile dY.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WinogradOutputBackward;

/// The 4×4 patch of tile (n, ty, tx) in channel c of x, zero outside the image.
fn patch(x: &Tensor, c: usize, (n, ty, tx): (usize, usize, usize)) -> [[f32; 4]; 4] {
    let [_, channels, h, w] = x.shape[..] else { unreachable!("NCHW") };
    std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            let (row, col) = ((2 * ty + a).checked_sub(1), (2 * tx + b).checked_sub(1));
            match (row, col) {
                (Some(r), Some(s)) if r < h && s < w => x.data[((n * channels + c) * h + r) * w + s],
                _ => 0.0,
            }
        })
    })
}

/// The 16 values of point-major tensor `data` [16, rows, cols] at (row, col), as a 4×4 tile.
fn tile_at(data: &[f32], rows: usize, cols: usize, row: usize, col: usize) -> [[f32; 4]; 4] {
    std::array::from_fn(|i| std::array::from_fn(|j| data[((4 * i + j) * rows + row) * cols + col]))
}

/// Writes a 4×4 tile into point-major `data` [16, rows, cols] at (row, col).
fn put_tile(data: &mut [f32], rows: usize, cols: usize, row: usize, col: usize, tile: [[f32; 4]; 4]) {
    for (i, tile_row) in tile.iter().enumerate() {
        for (j, &v) in tile_row.iter().enumerate() {
            data[((4 * i + j) * rows + row) * cols + col] = v;
        }
    }
}

impl OpDef for WinogradInput {
    fn name(&self) -> &'static str {
        "winograd_input"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let x = s.rank(0, 4, "x")?;
        Ok(Tiles::of(x).transformed(x[1]))
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (x, dv) = (g.input(0), g.dy()?);
        let [batch, _, height, width] = g.shape(x)[..] else { unreachable!("NCHW") };
        Ok(vec![g.apply(0, WinogradInputBackward { batch, height, width }, &[dv])?])
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let x = inputs[0];
        let (tiles, channels) = (Tiles::of(&x.shape), x.shape[1]);
        let mut v = vec![0.0; numel(output)];
        for c in 0..channels {
            for t in 0..tiles.count() {
                let d = patch(x, c, tiles.position(t));
                put_tile(&mut v, channels, tiles.count(), c, t, sandwich(&BT, &d, &BT));
            }
        }
        v
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let x = inputs[0];
        let tiles = Tiles::of(x);
        Some(Launch::new(&WINOGRAD_INPUT, &tiles.params(x[1]), x[1] * tiles.count()))
    }
}

impl OpDef for WinogradInputBackward {
    fn name(&self) -> &'static str {
        "winograd_input_backward"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let dv = s.rank(0, 3, "dV")?;
        Tiles::new(self.batch, self.height, self.width).check(dv, "dV")?;
        Ok(vec![self.batch, dv[1], self.height, self.width])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// Scatters each tile's B dV Bᵀ back over its patch (the GPU gathers).
    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let dv = inputs[0];
        let [batch, channels, h, w] = output[..] else { unreachable!("NCHW") };
        let tiles = Tiles::new(batch, h, w);
        let b = transposed(&BT);
        let mut dx = vec![0.0; numel(output)];
        for c in 0..channels {
            for t in 0..tiles.count() {
                let (n, ty, tx) = tiles.position(t);
                let d = sandwich(&b, &tile_at(&dv.data, channels, tiles.count(), c, t), &b);
                for (a, d_row) in d.iter().enumerate() {
                    for (bb, &value) in d_row.iter().enumerate() {
                        let (row, col) = ((2 * ty + a).checked_sub(1), (2 * tx + bb).checked_sub(1));
                        if let (Some(r), Some(s)) = (row, col) {
                            if r < h && s < w {
                                dx[((n * channels + c) * h + r) * w + s] += value;
                            }
                        }
                    }
                }
            }
        }
        dx
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let channels = inputs[0][1];
        let tiles = Tiles::new(self.batch, self.height, self.width);
        let blocks = self.batch * channels * (tiles.high + 1) * (tiles.wide + 1);
        Some(Launch::new(&WINOGRAD_INPUT_BACKWARD, &tiles.params(channels), blocks))
    }
}

/// The parameters of a weight transform of [O, C, 3, 3] weights.
fn weight_params(out_channels: usize, channels: usize) -> WinogradParams {
    WinogradParams { channels: word(channels), out_channels: word(out_channels), ..WinogradParams::default() }
}

impl OpDef for WinogradWeight {
    fn name(&self) -> &'static str {
        "winograd_weight"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let w = s.rank(0, 4, "weight")?;
        if w[2] != 3 || w[3] != 3 {
            return Err(format!("the Winograd transform takes 3×3 kernels, got {}×{}", w[2], w[3]));
        }
        Ok(vec![POINTS, w[0], w[1]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let du = g.dy()?;
        Ok(vec![g.apply(0, WinogradWeightBackward, &[du])?])
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let w = inputs[0];
        let (outs, ins) = (w.shape[0], w.shape[1]);
        let mut u = vec![0.0; numel(output)];
        for (pair, kernel) in w.data.chunks(9).enumerate() {
            let g: [[f32; 3]; 3] = std::array::from_fn(|r| std::array::from_fn(|s| kernel[3 * r + s]));
            put_tile(&mut u, outs, ins, pair / ins, pair % ins, sandwich(&G, &g, &G));
        }
        u
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let w = inputs[0];
        Some(Launch::new(&WINOGRAD_WEIGHT, &weight_params(w[0], w[1]), w[0] * w[1]))
    }
}

impl OpDef for WinogradWeightBackward {
    fn name(&self) -> &'static str {
        "winograd_weight_backward"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let du = s.rank(0, 3, "dU")?;
        if du[0] != POINTS {
            return Err(format!("dU must hold 16 points, got {}", du[0]));
        }
        Ok(vec![du[1], du[2], 3, 3])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let du = inputs[0];
        let (outs, ins) = (du.shape[1], du.shape[2]);
        let g = transposed(&G);
        let mut dw = Vec::with_capacity(numel(output));
        for pair in 0..outs * ins {
            let kernel = sandwich(&g, &tile_at(&du.data, outs, ins, pair / ins, pair % ins), &g);
            dw.extend(kernel.iter().flatten());
        }
        dw
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let du = inputs[0];
        Some(Launch::new(&WINOGRAD_WEIGHT_BACKWARD, &weight_params(du[1], du[2]), du[1] * du[2]))
    }
}

impl OpDef for WinogradOutput {
    fn name(&self) -> &'static str {
        "winograd_output"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (m, bias) = (s.rank(0, 3, "M")?, s.rank(1, 1, "bias")?);
        Tiles::new(self.batch, self.height, self.width).check(m, "M")?;
        if bias[0] != m[1] {
            return Err(format!("bias has {} values for {} output channels", bias[0], m[1]));
        }
        Ok(vec![self.batch, m[1], self.height, self.width])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let dy = g.dy()?;
        Ok(vec![g.apply(0, WinogradOutputBackward, &[dy])?, g.apply(1, ChannelSum, &[dy])?])
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let (m, bias) = (inputs[0], inputs[1]);
        let [_, channels, h, w] = output[..] else { unreachable!("NCHW") };
        let tiles = Tiles::new(self.batch, h, w);
        let mut y = vec![0.0; numel(output)];
        for o in 0..channels {
            for t in 0..tiles.count() {
                let (n, ty, tx) = tiles.position(t);
                let tile = sandwich(&AT, &tile_at(&m.data, channels, tiles.count(), o, t), &AT);
                for (i, tile_row) in tile.iter().enumerate() {
                    for (j, &value) in tile_row.iter().enumerate() {
                        let (r, s) = (2 * ty + i, 2 * tx + j);
                        if r < h && s < w {
                            y[((n * channels + o) * h + r) * w + s] = value + bias.data[o];
                        }
                    }
                }
            }
        }
        y
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let channels = inputs[0][1];
        let tiles = Tiles::new(self.batch, self.height, self.width);
        Some(Launch::new(&WINOGRAD_OUTPUT, &tiles.params(channels), channels * tiles.count()))
    }
}

impl OpDef for WinogradOutputBackward {
    fn name(&self) -> &'static str {
        "winograd_output_backward"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let dy = s.rank(0, 4, "dy")?;
        Ok(Tiles::of(dy).transformed(dy[1]))
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let dy = inputs[0];
        let [_, channels, h, w] = dy.shape[..] else { unreachable!("NCHW") };
        let tiles = Tiles::of(&dy.shape);
        let a = transposed(&AT);
        let mut dm = vec![0.0; numel(output)];
        for o in 0..channels {
            for t in 0..tiles.count() {
                let (n, ty, tx) = tiles.position(t);
                let at = |i: usize, j: usize| {
                    let (r, s) = (2 * ty + i, 2 * tx + j);
                    if r < h && s < w {
                        dy.data[((n * channels + o) * h + r) * w + s]
                    } else {
                        0.0
                    }
                };
                let tile = [[at(0, 0), at(0, 1)], [at(1, 0), at(1, 1)]];
                put_tile(&mut dm, channels, tiles.count(), o, t, sandwich(&a, &tile, &a));
            }
        }
        dm
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let dy = inputs[0];
        let tiles = Tiles::of(dy);
        Some(Launch::new(&WINOGRAD_OUTPUT_BACKWARD, &tiles.params(dy[1]), dy[1] * tiles.count()))
    }
}

/// Winograd cases: (batch, channels, height, width, output channels). Odd
/// sizes (a tile half outside), 1×1 and 1×2 maps, one channel, and the seed
/// net's conv3 H→H at batch 2.
const WINOGRAD_SHAPES: [[usize; 5]; 5] =
    [[1, 1, 1, 1, 1], [2, 3, 5, 7, 4], [1, 2, 1, 2, 3], [3, 5, 7, 7, 2], [2, 16, 14, 14, 64]];

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for [n, c, h, w, o] in WINOGRAD_SHAPES {
        let tiles = Tiles::new(n, h, w);
        let x = seeds.random(&[n, c, h, w]);
        cases.push(single(WinogradInput, vec![x], SMALL_SUMS));
        let dv = seeds.random(&tiles.transformed(c));
        cases.push(single(WinogradInputBackward { batch: n, height: h, width: w }, vec![dv], SMALL_SUMS));
        cases.push(single(WinogradWeight, vec![seeds.random(&[o, c, 3, 3])], SMALL_SUMS));
        cases.push(single(WinogradWeightBackward, vec![seeds.random(&[POINTS, o, c])], SMALL_SUMS));
        let m = seeds.random(&tiles.transformed(o));
        let output = WinogradOutput { batch: n, height: h, width: w };
        cases.push(single(output, vec![m, seeds.random(&[o])], SMALL_SUMS));
        cases.push(single(WinogradOutputBackward, vec![seeds.random(&[n, o, h, w])], SMALL_SUMS));
    }
    cases
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    let mut cases = Vec::new();
    for [n, c, h, w, o] in [[1, 1, 3, 3, 1], [2, 2, 5, 4, 3]] {
        let tiles = Tiles::new(n, h, w);
        cases.push(gradient_case(WinogradInput, vec![seeds.random(&[n, c, h, w])]));
        cases.push(gradient_case(WinogradWeight, vec![seeds.random(&[o, c, 3, 3])]));
        let output = WinogradOutput { batch: n, height: h, width: w };
        cases.push(gradient_case(output, vec![seeds.random(&tiles.transformed(o)), seeds.random(&[o])]));
    }
    cases
}
