//! Nearest-neighbour ×2 upsampling over NCHW planes, its gradient, and the
//! octave convolution's fused L→H join `AddUpsampled2` (high + upsample2(low)
//! in one pass, so the full-resolution upsampled copy is never written).
//!
//! Gradient rules: upsample → Upsample2Backward(dy), the sum of each 2×2
//! block; add_upsampled2 → (dy, Upsample2Backward(dy)). The block sum is a
//! kernel of its own: no other op sums 2×2 blocks (the average pool's
//! gradient spreads, it does not gather).

use std::mem::offset_of;

use super::cases::{gradient_case, single, with_relu, Case, GradientCase, Seeds, EXACT, MAP_SHAPES, SMALL_SUMS};
use super::fast_cpu::{output_buffer, per_chunk};
use super::kernel::{word, Kernel, KernelParams, Launch, ParamsLayout, ShaderFile, Tiling};
use super::pool::window;
use super::{elementwise_flops, Family, Gradient, GraphError, NodeId, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::{numel, Tensor};

const SHADER: ShaderFile = ShaderFile { name: "upsample.wgsl", source: include_str!("../../shaders/upsample.wgsl") };

kernel_params! {
    /// UpsampleParams in upsample.wgsl.
    pub struct UpsampleParams {
        /// Batch · channels.
        pub planes: u32,
        /// Of the small (not upsampled) tensor.
        pub in_height: u32,
        pub in_width: u32,
        /// add_upsampled2: 1 applies a ReLU to the sum.
        pub relu: u32,
    }
}

const PARAMS: &ParamsLayout = &UpsampleParams::LAYOUT;

pub const UPSAMPLE2_FORWARD: Kernel = Kernel::new(SHADER, "upsample2_forward", PARAMS, 1, 1);
pub const UPSAMPLE2_BACKWARD: Kernel = Kernel::new(SHADER, "upsample2_backward", PARAMS, 1, 1);
pub const ADD_UPSAMPLED2: Kernel =
    Kernel::new(SHADER, "add_upsampled2", PARAMS, 2, 1).with_relu_at(offset_of!(UpsampleParams, relu));

pub const FAMILY: Family = Family {
    name: "upsample",
    shaders: &[SHADER],
    kernels: &[&UPSAMPLE2_FORWARD, &UPSAMPLE2_BACKWARD, &ADD_UPSAMPLED2],
    cases,
    gradients,
};

/// x [N,C,H,W] -> [N,C,2H,2W], nearest neighbour.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upsample2;

/// dy [N,C,2H,2W] -> dx [N,C,H,W], sum of each 2×2 block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Upsample2Backward;

/// high [N,C,2H,2W], low [N,C,H,W] -> high + upsample2(low).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddUpsampled2;

/// The parameters for a small map of shape `small`.
fn params(small: &[usize]) -> UpsampleParams {
    UpsampleParams { planes: word(small[0] * small[1]), in_height: word(small[2]), in_width: word(small[3]), relu: 0 }
}

/// y[r,s] = x[r/2, s/2]
fn upsample2(x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    let [_, _, in_h, in_w] = x.shape[..] else { unreachable!() };
    let mut y = Vec::with_capacity(out_shape.iter().product());
    for plane in x.data.chunks(in_h * in_w) {
        for r in 0..2 * in_h {
            for s in 0..2 * in_w {
                y.push(plane[(r / 2) * in_w + s / 2]);
            }
        }
    }
    y
}

impl OpDef for Upsample2 {
    fn name(&self) -> &'static str {
        "upsample2"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let x = s.rank(0, 4, "x")?;
        Ok(vec![x[0], x[1], 2 * x[2], 2 * x[3]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let dy = g.dy()?;
        Ok(vec![g.apply(0, Upsample2Backward, &[dy])?])
    }

    /// Also the CPU device's version: the net uses AddUpsampled2 instead.
    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        upsample2(inputs[0], output)
    }

    fn launch(&self, inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&UPSAMPLE2_FORWARD, &params(inputs[0]), numel(output)))
    }
}

impl OpDef for Upsample2Backward {
    fn name(&self) -> &'static str {
        "upsample2_backward"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let dy = s.rank(0, 4, "dy")?;
        if !dy[2].is_multiple_of(2) || !dy[3].is_multiple_of(2) {
            return Err("dy's height and width must be even".into());
        }
        Ok(vec![dy[0], dy[1], dy[2] / 2, dy[3] / 2])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// dx[i,j] = Σ of dy over the 2×2 block at (2i, 2j)
    fn cpu(&self, inputs: &[&Tensor], dx_shape: &[usize]) -> Vec<f32> {
        let [_, _, h, w] = dx_shape[..] else { unreachable!() };
        let mut dx = vec![0.0; numel(dx_shape)];
        for (plane, out) in inputs[0].data.chunks(4 * h * w).zip(dx.chunks_mut(h * w)) {
            block_sums(plane, w, out);
        }
        dx
    }

    /// The same sums, one plane per task.
    fn cpu_fast(&self, inputs: &[&Tensor], dx_shape: &[usize]) -> Vec<f32> {
        let [_, _, h, w] = dx_shape[..] else { unreachable!() };
        let mut dx = output_buffer(numel(dx_shape));
        per_chunk(&mut dx, h * w, |k, out| block_sums(&inputs[0].data[4 * k * h * w..][..4 * h * w], w, out));
        dx
    }

    fn launch(&self, _inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&UPSAMPLE2_BACKWARD, &params(output), numel(output)))
    }
}

/// Each value of `out` (a plane `w` wide) the sum of its 2×2 block of `dy_plane`.
fn block_sums(dy_plane: &[f32], w: usize, out: &mut [f32]) {
    for (i, row) in out.chunks_exact_mut(w).enumerate() {
        for (j, dx) in row.iter_mut().enumerate() {
            *dx = window(i, j, 2 * w).iter().map(|&k| dy_plane[k]).sum();
        }
    }
}

impl OpDef for AddUpsampled2 {
    fn name(&self) -> &'static str {
        "add_upsampled2"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let (high, low) = (s.rank(0, 4, "high")?, s.rank(1, 4, "low")?);
        if high != [low[0], low[1], 2 * low[2], 2 * low[3]] {
            return Err("high must be low's shape with twice its height and width".into());
        }
        Ok(high.to_vec())
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let dy = g.dy()?;
        Ok(vec![Some(dy), g.apply(1, Upsample2Backward, &[dy])?])
    }

    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let low = upsample2(inputs[1], output);
        inputs[0].data.iter().zip(low).map(|(h, l)| h + l).collect()
    }

    /// Row by row, one plane per task: each low row serves two output rows.
    /// The sum is written straight from both inputs (no copy of `high` first).
    fn cpu_fast(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        let (high, low) = (inputs[0], inputs[1]);
        let [_, _, h, w] = low.shape[..] else { unreachable!() };
        let mut y = output_buffer(numel(output));
        per_chunk(&mut y, 4 * h * w, |plane, out| {
            let high = &high.data[plane * 4 * h * w..][..4 * h * w];
            for (r, (out_row, high_row)) in out.chunks_mut(2 * w).zip(high.chunks(2 * w)).enumerate() {
                let low_row = &low.data[(plane * h + r / 2) * w..][..w];
                for ((pair, high_pair), &v) in out_row.chunks_mut(2).zip(high_row.chunks(2)).zip(low_row) {
                    pair[0] = high_pair[0] + v;
                    pair[1] = high_pair[1] + v;
                }
            }
        });
        y
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        // One invocation per low value (the 2×2 block of the sum it feeds).
        Some(Launch::new(&ADD_UPSAMPLED2, &params(inputs[1]), numel(inputs[1])))
    }
}

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for shape in MAP_SHAPES {
        let [n, c, h, w] = shape;
        let big = [n, c, 2 * h, 2 * w];
        cases.push(single(Upsample2, vec![seeds.random(&shape)], EXACT));
        cases.push(single(Upsample2Backward, vec![seeds.random(&big)], SMALL_SUMS));
        let (high, low) = (seeds.random(&big), seeds.random(&shape));
        cases.push(single(AddUpsampled2, vec![high.clone(), low.clone()], EXACT));
        cases.push(with_relu(single(AddUpsampled2, vec![high, low], SMALL_SUMS)));
    }
    cases
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    let mut cases = Vec::new();
    for [n, c, h, w] in [[1, 1, 2, 2], [2, 3, 5, 7]] {
        cases.push(gradient_case(Upsample2, vec![seeds.random(&[n, c, h, w])]));
        let (high, low) = (seeds.random(&[n, c, 2 * h, 2 * w]), seeds.random(&[n, c, h, w]));
        cases.push(gradient_case(AddUpsampled2, vec![high, low]));
    }
    cases
}
