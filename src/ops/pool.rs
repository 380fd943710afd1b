//! 2×2 stride-2 pooling over NCHW planes: average and max, and their gradients.
//!
//! Gradient rules: avg → AvgPool2Backward(dy) (dy / 4 spread over each
//! window), max → MaxPool2Backward(x, dy) (dy routed to each window's
//! argmax). Both are dedicated kernels: written with other ops, the average
//! would be an upsample and a scale (two passes over the full-resolution map
//! instead of one), and the max needs the argmax, which no other op gives.
//! The forward kernels can apply a following ReLU as they write.

use std::mem::offset_of;

use super::cases::{kinked_gradient_case, single, with_relu, Case, GradientCase, Seeds, EXACT, MAP_SHAPES, SMALL_SUMS};
use super::fast_cpu::{output_buffer, per_chunk};
use super::kernel::{word, Kernel, KernelParams, Launch, ParamsLayout, ShaderFile, Tiling};
use super::{elementwise_flops, Family, Gradient, GraphError, NodeId, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::{numel, Tensor};

const SHADER: ShaderFile = ShaderFile { name: "pool.wgsl", source: include_str!("../../shaders/pool.wgsl") };

kernel_params! {
    /// PoolParams in pool.wgsl.
    pub struct PoolParams {
        /// Batch · channels.
        pub planes: u32,
        pub in_height: u32,
        pub in_width: u32,
        pub out_height: u32,
        pub out_width: u32,
        /// Forward: 1 applies a ReLU to the output.
        pub relu: u32,
    }
}

const PARAMS: &ParamsLayout = &PoolParams::LAYOUT;
const RELU: usize = offset_of!(PoolParams, relu);

pub const AVG_POOL2_FORWARD: Kernel = Kernel::new(SHADER, "avg_pool2_forward", PARAMS, 1, 1).with_relu_at(RELU);
pub const AVG_POOL2_BACKWARD: Kernel = Kernel::new(SHADER, "avg_pool2_backward", PARAMS, 1, 1);
pub const MAX_POOL2_FORWARD: Kernel = Kernel::new(SHADER, "max_pool2_forward", PARAMS, 1, 1).with_relu_at(RELU);
pub const MAX_POOL2_BACKWARD: Kernel = Kernel::new(SHADER, "max_pool2_backward", PARAMS, 2, 1);

pub const FAMILY: Family = Family {
    name: "pool",
    shaders: &[SHADER],
    kernels: &[&AVG_POOL2_FORWARD, &AVG_POOL2_BACKWARD, &MAX_POOL2_FORWARD, &MAX_POOL2_BACKWARD],
    cases,
    gradients,
};

/// x [N,C,H,W] -> [N,C,H/2,W/2], mean of each 2×2 block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AvgPool2;

/// dy [N,C,H/2,W/2] -> dx [N,C,H,W]; `input_size` is (H, W).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AvgPool2Backward {
    pub input_size: [usize; 2],
}

/// x [N,C,H,W] -> [N,C,H/2,W/2], max of each 2×2 block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaxPool2;

/// x [N,C,H,W], dy [N,C,H/2,W/2] -> dx [N,C,H,W], routed to each block's argmax.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaxPool2Backward;

/// The parameters of a pool between a full-size map and its pooled one.
fn params(full: &[usize], pooled: &[usize]) -> PoolParams {
    PoolParams {
        planes: word(full[0] * full[1]),
        in_height: word(full[2]),
        in_width: word(full[3]),
        out_height: word(pooled[2]),
        out_width: word(pooled[3]),
        relu: 0,
    }
}

/// The pooled shape of x (odd rows and columns are dropped, as PyTorch's floor mode).
fn pooled_shape(s: &Shapes) -> Result<Vec<usize>, String> {
    let x = s.rank(0, 4, "x")?;
    if x[2] < 2 || x[3] < 2 {
        return Err("2×2 pooling needs height and width of at least 2".into());
    }
    Ok(vec![x[0], x[1], x[2] / 2, x[3] / 2])
}

impl OpDef for AvgPool2 {
    fn name(&self) -> &'static str {
        "avg_pool2"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        pooled_shape(s)
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let input_size = g.size_2d(g.input(0));
        let dy = g.dy()?;
        Ok(vec![g.apply(0, AvgPool2Backward { input_size }, &[dy])?])
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        pool(inputs[0], output, average4)
    }

    /// The same windows, one plane per task.
    fn cpu_fast(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let x = inputs[0];
        let [_, _, in_h, in_w] = x.shape[..] else { unreachable!() };
        let mut y = output_buffer(numel(output));
        per_chunk(&mut y, output[2] * output[3], |k, out| {
            pool_plane(&x.data[k * in_h * in_w..][..in_h * in_w], in_w, out, average4)
        });
        y
    }

    fn launch(&self, inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&AVG_POOL2_FORWARD, &params(inputs[0], output), numel(output)))
    }
}

impl OpDef for AvgPool2Backward {
    fn name(&self) -> &'static str {
        "avg_pool2_backward"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let dy = s.rank(0, 4, "dy")?;
        let [h, w] = self.input_size;
        if dy[2] != h / 2 || dy[3] != w / 2 {
            return Err(format!("dy must be half of the input size {:?}", self.input_size));
        }
        Ok(vec![dy[0], dy[1], h, w])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// dx = dy / 4 spread over each window; rows and columns the pool dropped get 0.
    fn cpu(&self, inputs: &[&Tensor], dx_shape: &[usize]) -> Vec<f32> {
        let mut dx = vec![0.0; dx_shape.iter().product()];
        for (plane, dx_plane) in dx.chunks_mut(dx_shape[2] * dx_shape[3]).enumerate() {
            spread_quarters(inputs[0], plane, dx_shape[3], dx_plane);
        }
        dx
    }

    /// The same, one plane per task.
    fn cpu_fast(&self, inputs: &[&Tensor], dx_shape: &[usize]) -> Vec<f32> {
        let mut dx = gradient_buffer(dx_shape.iter().product(), [dx_shape[2], dx_shape[3]]);
        per_chunk(&mut dx, dx_shape[2] * dx_shape[3], |plane, dx_plane| {
            spread_quarters(inputs[0], plane, dx_shape[3], dx_plane)
        });
        dx
    }

    fn launch(&self, inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&AVG_POOL2_BACKWARD, &params(output, inputs[0]), numel(output)))
    }
}

impl OpDef for MaxPool2 {
    fn name(&self) -> &'static str {
        "max_pool2"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        pooled_shape(s)
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (x, dy) = (g.input(0), g.dy()?);
        Ok(vec![g.apply(0, MaxPool2Backward, &[x, dy])?])
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        pool(inputs[0], output, |w| w[argmax4(w)])
    }

    /// The same windows, one plane per task (it reads every full-resolution map of the net).
    fn cpu_fast(&self, inputs: &[&Tensor], out_shape: &[usize]) -> Vec<f32> {
        let x = inputs[0];
        let [_, _, h, w] = x.shape[..] else { unreachable!() };
        let [_, _, out_h, out_w] = out_shape[..] else { unreachable!() };
        let mut y = output_buffer(out_shape.iter().product());
        per_chunk(&mut y, out_h * out_w, |plane, out| {
            let x = &x.data[plane * h * w..][..h * w];
            // Row pairs walked in step: no index arithmetic or bounds check per window.
            for (i, out_row) in out.chunks_exact_mut(out_w).enumerate() {
                let (top, bottom) = (&x[2 * i * w..][..2 * out_w], &x[(2 * i + 1) * w..][..2 * out_w]);
                for ((o, t), b) in out_row.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    *o = max4([t[0], t[1], b[0], b[1]]).0;
                }
            }
        });
        y
    }

    fn launch(&self, inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&MAX_POOL2_FORWARD, &params(inputs[0], output), numel(output)))
    }
}

impl OpDef for MaxPool2Backward {
    fn name(&self) -> &'static str {
        "max_pool2_backward"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (x, dy) = (s.rank(0, 4, "x")?, s.rank(1, 4, "dy")?);
        if dy != [x[0], x[1], x[2] / 2, x[3] / 2] {
            return Err("dy must be the pooled shape of x".into());
        }
        Ok(x.to_vec())
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// dx = dy routed to each window's argmax (the first on ties), 0 elsewhere.
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (x, dy) = (inputs[0], inputs[1]);
        let mut dx = vec![0.0; x.len()];
        let plane = x.shape[2] * x.shape[3];
        for (k, dx_plane) in dx.chunks_mut(plane).enumerate() {
            route_to_argmax(x, dy, k, dx_plane);
        }
        dx
    }

    /// The same routing, one plane per task, each window's four values
    /// written at once (no branch on the data: a mispredicted branch per
    /// window made this 5× slower).
    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let (x, dy) = (inputs[0], inputs[1]);
        let [_, _, h, w] = x.shape[..] else { unreachable!() };
        let [_, _, out_h, out_w] = dy.shape[..] else { unreachable!() };
        let mut dx = gradient_buffer(x.len(), [h, w]);
        per_chunk(&mut dx, h * w, |k, dx_plane| {
            let x = &x.data[k * h * w..][..h * w];
            let dy = &dy.data[k * out_h * out_w..][..out_h * out_w];
            for (i, dy_row) in dy.chunks_exact(out_w).enumerate() {
                let (top, bottom) = (&x[2 * i * w..][..2 * out_w], &x[(2 * i + 1) * w..][..2 * out_w]);
                let (dx_top, dx_bottom) = dx_plane[2 * i * w..][..2 * w].split_at_mut(w);
                route_row(top, bottom, dy_row, dx_top, dx_bottom);
            }
        });
        dx
    }

    fn launch(&self, inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        // One invocation per 2×2 block of dx (a lone odd last row or column included).
        let [planes, h, w] = [output[0] * output[1], output[2].div_ceil(2), output[3].div_ceil(2)];
        Some(Launch::new(&MAX_POOL2_BACKWARD, &params(inputs[0], inputs[1]), planes * h * w))
    }
}

/// Plane `k` of max pooling's gradient: each window's dy to its argmax
/// (the first on ties) in `dx_plane`, which holds zeros.
fn route_to_argmax(x: &Tensor, dy: &Tensor, k: usize, dx_plane: &mut [f32]) {
    let [_, _, in_h, in_w] = x.shape[..] else { unreachable!() };
    let [_, _, out_h, out_w] = dy.shape[..] else { unreachable!() };
    let x_plane = &x.data[k * in_h * in_w..][..in_h * in_w];
    let dy_plane = &dy.data[k * out_h * out_w..][..out_h * out_w];
    for i in 0..out_h {
        for j in 0..out_w {
            let offsets = window(i, j, in_w);
            let best = argmax4(offsets.map(|o| x_plane[o]));
            dx_plane[offsets[best]] = dy_plane[i * out_w + j];
        }
    }
}

/// One row of windows of `route_to_argmax`: each window's four values of dx
/// written at once. AVX-512 takes 16 windows at a time, without a branch
/// on the data, where the CPU has it (4–5× faster: the compiler leaves the
/// plain loop scalar, and its branches mispredict on half the windows).
fn route_row(top: &[f32], bottom: &[f32], dy: &[f32], dx_top: &mut [f32], dx_bottom: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx512::available() {
        // SAFETY: AVX-512 is there.
        return unsafe { super::avx512::route_to_argmax(top, bottom, dy, dx_top, dx_bottom) };
    }
    for (j, &g) in dy.iter().enumerate() {
        let q = 2 * j;
        let best = argmax4([top[q], top[q + 1], bottom[q], bottom[q + 1]]);
        let routed = |k: usize| if best == k { g } else { 0.0 };
        (dx_top[q], dx_top[q + 1], dx_bottom[q], dx_bottom[q + 1]) = (routed(0), routed(1), routed(2), routed(3));
    }
}

/// The buffer for a pool's gradient of `len` values over maps of `size`:
/// zeros where the pool dropped a last odd row or column (nothing routes
/// there), else one the gradient overwrites whole.
fn gradient_buffer(len: usize, size: [usize; 2]) -> Vec<f32> {
    match size.map(|s| s % 2) {
        [0, 0] => output_buffer(len),
        _ => vec![0.0; len],
    }
}

/// The four input offsets of the 2×2 window at output (i, j) in a plane of `width` columns.
pub(super) fn window(i: usize, j: usize, width: usize) -> [usize; 4] {
    let origin = 2 * i * width + 2 * j;
    [origin, origin + 1, origin + width, origin + width + 1]
}

/// Applies `reduce` to every 2×2 window of every plane.
fn pool(x: &Tensor, out_shape: &[usize], reduce: impl Fn([f32; 4]) -> f32) -> Vec<f32> {
    let [_, _, in_h, in_w] = x.shape[..] else { unreachable!() };
    let mut y = vec![0.0; numel(out_shape)];
    for (plane, out) in x.data.chunks(in_h * in_w).zip(y.chunks_mut(out_shape[2] * out_shape[3])) {
        pool_plane(plane, in_w, out, &reduce);
    }
    y
}

/// `reduce` of each 2×2 window of one plane (`in_w` wide) into `out`, row by row.
fn pool_plane(plane: &[f32], in_w: usize, out: &mut [f32], reduce: impl Fn([f32; 4]) -> f32) {
    let out_w = in_w / 2;
    for (i, row) in out.chunks_exact_mut(out_w).enumerate() {
        for (j, y) in row.iter_mut().enumerate() {
            *y = reduce(window(i, j, in_w).map(|k| plane[k]));
        }
    }
}

fn average4(w: [f32; 4]) -> f32 {
    0.25 * (w[0] + w[1] + w[2] + w[3])
}

/// Plane `plane` of average pooling's gradient: each dy / 4 over its window
/// in `dx_plane` (`in_w` wide), which stays 0 where the pool dropped a row or column.
fn spread_quarters(dy: &Tensor, plane: usize, in_w: usize, dx_plane: &mut [f32]) {
    let [_, _, out_h, out_w] = dy.shape[..] else { unreachable!() };
    let dy_plane = &dy.data[plane * out_h * out_w..][..out_h * out_w];
    for (i, dy_row) in dy_plane.chunks_exact(out_w).enumerate() {
        for (j, &g) in dy_row.iter().enumerate() {
            for k in window(i, j, in_w) {
                dx_plane[k] = 0.25 * g;
            }
        }
    }
}

/// The largest of four values and its position (0..4), the first one on
/// ties. The best value is carried, not looked up, so the compiler can
/// select without branching on the data.
fn max4(values: [f32; 4]) -> (f32, usize) {
    (1..4).fold((values[0], 0), |(top, best), k| if values[k] > top { (values[k], k) } else { (top, best) })
}

/// Position (0..4) of the largest of four values, the first one on ties.
fn argmax4(values: [f32; 4]) -> usize {
    max4(values).1
}

/// Rows of 35 windows: the fast max-pool gradient's vectors of 16 windows, full and partial.
const WIDE_MAPS: [usize; 4] = [2, 3, 4, 70];

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for shape in MAP_SHAPES.into_iter().chain([WIDE_MAPS]) {
        let [n, c, h, w] = shape;
        let pooled = [n, c, h / 2, w / 2];
        let x = seeds.coarse(&shape);
        cases.push(single(AvgPool2, vec![seeds.random(&shape)], SMALL_SUMS));
        cases.push(single(AvgPool2Backward { input_size: [h, w] }, vec![seeds.random(&pooled)], EXACT));
        cases.push(single(MaxPool2, vec![x.clone()], EXACT));
        cases.push(single(MaxPool2Backward, vec![x.clone(), seeds.random(&pooled)], EXACT));
        // The forward kernels with a ReLU applied as they write.
        cases.push(with_relu(single(AvgPool2, vec![x.clone()], SMALL_SUMS)));
        cases.push(with_relu(single(MaxPool2, vec![x], SMALL_SUMS)));
    }
    cases
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    let mut cases = Vec::new();
    // Even and odd sizes (the pool drops the last row and column of odd ones).
    for shape in [[1, 1, 2, 2], [2, 3, 5, 7], [1, 2, 6, 4]] {
        cases.push(kinked_gradient_case(AvgPool2, vec![seeds.spread(&shape)]));
        cases.push(kinked_gradient_case(MaxPool2, vec![seeds.spread(&shape)]));
    }
    cases
}
