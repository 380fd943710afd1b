//! The channel sum: x [N,C,...] -> [C], the sum over every axis but axis 1.
//! It is the bias gradient of the convolutions and linear layers; it is never
//! differentiated itself.

use super::cases::{no_gradients, single, Case, Seeds, LONG_SUMS};
use super::conv::{conv_case_output, CONV_SHAPES};
use super::fast_cpu::sum_over;
use super::kernel::{word, Kernel, KernelParams, Launch, ShaderFile, Tiling};
use super::{elementwise_flops, Family, Gradient, GraphError, NodeId, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::{numel, Tensor};

const SHADER: ShaderFile = ShaderFile { name: "reduce.wgsl", source: include_str!("../../shaders/reduce.wgsl") };

kernel_params! {
    /// ChannelSumParams in reduce.wgsl.
    pub struct ChannelSumParams {
        /// The batch.
        pub outer: u32,
        pub channels: u32,
        /// Height · width (1 for linear layers).
        pub inner: u32,
    }
}

pub const CHANNEL_SUM: Kernel = Kernel::new(SHADER, "channel_sum", &ChannelSumParams::LAYOUT, 1, 1);

pub const FAMILY: Family =
    Family { name: "reduce", shaders: &[SHADER], kernels: &[&CHANNEL_SUM], cases, gradients: no_gradients };

/// x [N,C,...] -> [C]: sums over every axis but axis 1 (bias gradients).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelSum;

impl OpDef for ChannelSum {
    fn name(&self) -> &'static str {
        "channel_sum"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        let x = s.get(0);
        if x.len() < 2 {
            return Err("x must have at least 2 dimensions".into());
        }
        Ok(vec![x[1]])
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// sums[c] = Σ over every axis but axis 1 of x[n, c, ...]
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let x = inputs[0];
        let channels = x.shape[1];
        let inner: usize = x.shape[2..].iter().product();
        let mut sums = vec![0.0; channels];
        for (row, chunk) in x.data.chunks(inner).enumerate() {
            sums[row % channels] += chunk.iter().sum::<f32>();
        }
        sums
    }

    /// The twin with each plane summed in eight lanes (a sum in order does not
    /// vectorise), the images in groups of eight, in parallel.
    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let x = inputs[0];
        let channels = x.shape[1];
        let inner: usize = x.shape[2..].iter().product();
        let mut sums = vec![0.0; channels];
        if inner == 1 {
            // A linear layer's [N, C]: add up the rows.
            for row in x.data.chunks(channels) {
                sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            return sums;
        }
        let image = channels * inner;
        sum_over(x.shape[0], 8, channels, 0, |n, acc, _| {
            for (sum, plane) in acc.iter_mut().zip(x.data[n * image..][..image].chunks(inner)) {
                *sum += lane_sum(plane);
            }
        })
    }

    fn launch(&self, inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        let x = inputs[0];
        let p = ChannelSumParams { outer: word(x[0]), channels: word(x[1]), inner: word(numel(&x[2..])) };
        Some(Launch::new(&CHANNEL_SUM, &p, x[1]))
    }
}

/// Σ values, accumulated in eight interleaved lanes.
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let blocks = values.chunks_exact(8);
    let tail: f32 = blocks.remainder().iter().sum();
    for block in blocks {
        lanes.iter_mut().zip(block).for_each(|(l, v)| *l += v);
    }
    lanes.iter().sum::<f32>() + tail
}

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    // The bias gradients of the convolution cases, of fc1 (rows of one value)
    // and of conv1 (50 176 values a channel: one running sum drifts past the tolerance).
    let shapes = CONV_SHAPES.into_iter().map(conv_case_output).chain([vec![64, 256], vec![64, 8, 28, 28]]);
    shapes.map(|shape| single(ChannelSum, vec![seeds.random(&shape)], LONG_SUMS)).collect()
}
