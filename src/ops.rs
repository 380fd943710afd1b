//! The tensor ops: what each takes, what it returns, and the shape rules that
//! reject bad input with an error naming the op and the shapes.
//!
//! Every op has a CPU twin (`cpu::eval`) and a WGSL kernel (`gpu::kernels`).
//! Backward ops are ops too, so the graph can differentiate by adding nodes.

use std::fmt;

/// A tensor op. Shapes are NCHW for images and [batch, features] for vectors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// x [N,C,H,W], weight [O,C,K,K], bias [O] -> y [N,O,H',W'].
    Conv2d { stride: usize, padding: usize },
    /// dy [N,O,H',W'], weight [O,C,K,K] -> dx [N,C,H,W]; `input_size` is (H, W).
    Conv2dBackwardInput { stride: usize, padding: usize, input_size: [usize; 2] },
    /// dy [N,O,H',W'], x [N,C,H,W] -> dweight [O,C,K,K].
    Conv2dBackwardWeight { stride: usize, padding: usize, kernel: usize },
    /// x [N,C,...] -> [C]: sums over every axis but axis 1 (bias gradients).
    ChannelSum,
    /// x [N,C,H,W] -> [N,C,H/2,W/2], mean of each 2×2 block.
    AvgPool2,
    /// dy [N,C,H/2,W/2] -> dx [N,C,H,W]; `input_size` is (H, W).
    AvgPool2Backward { input_size: [usize; 2] },
    /// x [N,C,H,W] -> [N,C,H/2,W/2], max of each 2×2 block.
    MaxPool2,
    /// x [N,C,H,W], dy [N,C,H/2,W/2] -> dx [N,C,H,W], routed to each block's argmax.
    MaxPool2Backward,
    /// x [N,C,H,W] -> [N,C,2H,2W], nearest neighbour.
    Upsample2,
    /// dy [N,C,2H,2W] -> dx [N,C,H,W], sum of each 2×2 block.
    Upsample2Backward,
    /// x -> max(x, 0).
    Relu,
    /// x, dy -> dy · [x > 0]; x may be the ReLU's input or its output.
    ReluBackward,
    /// a, b -> a + b (same shape).
    Add,
    /// high [N,C,2H,2W], low [N,C,H,W] -> high + upsample2(low): the octave
    /// conv's L→H path added to its H output in one pass, without the
    /// full-resolution upsampled copy.
    AddUpsampled2,
    /// x [N,I], weight [O,I], bias [O] -> y [N,O] = x·Wᵀ + b.
    Linear,
    /// dy [N,O], weight [O,I] -> dx [N,I] = dy·W.
    LinearBackwardInput,
    /// dy [N,O], x [N,I] -> dweight [O,I] = dyᵀ·x.
    LinearBackwardWeight,
    /// logits [N,K], labels [N] -> [1], mean softmax cross-entropy.
    CrossEntropy,
    /// logits [N,K], labels [N] -> dlogits [N,K] = (softmax − onehot) / N.
    CrossEntropyBackward,
    /// x [N,K] -> [N], index of each row's maximum (first on ties).
    Argmax,
    /// x -> the same values under `shape` (no data movement).
    Reshape { shape: Vec<usize> },
}

/// A shape an op cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    pub op: String,
    pub shapes: Vec<Vec<usize>>,
    pub reason: String,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cannot take input shapes {:?}: {}", self.op, self.shapes, self.reason)
    }
}

impl std::error::Error for ShapeError {}

impl Op {
    /// The name used in kernel tables and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::Conv2dBackwardInput { .. } => "conv2d_backward_input",
            Op::Conv2dBackwardWeight { .. } => "conv2d_backward_weight",
            Op::ChannelSum => "channel_sum",
            Op::AvgPool2 => "avg_pool2",
            Op::AvgPool2Backward { .. } => "avg_pool2_backward",
            Op::MaxPool2 => "max_pool2",
            Op::MaxPool2Backward => "max_pool2_backward",
            Op::Upsample2 => "upsample2",
            Op::Upsample2Backward => "upsample2_backward",
            Op::Relu => "relu",
            Op::ReluBackward => "relu_backward",
            Op::Add => "add",
            Op::AddUpsampled2 => "add_upsampled2",
            Op::Linear => "linear",
            Op::LinearBackwardInput => "linear_backward_input",
            Op::LinearBackwardWeight => "linear_backward_weight",
            Op::CrossEntropy => "cross_entropy",
            Op::CrossEntropyBackward => "cross_entropy_backward",
            Op::Argmax => "argmax",
            Op::Reshape { .. } => "reshape",
        }
    }

    /// How many inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Conv2d { .. } | Op::Linear => 3,
            Op::ChannelSum
            | Op::AvgPool2
            | Op::AvgPool2Backward { .. }
            | Op::MaxPool2
            | Op::Upsample2
            | Op::Upsample2Backward
            | Op::Relu
            | Op::Argmax
            | Op::Reshape { .. } => 1,
            _ => 2,
        }
    }

    /// The output shape for these input shapes, or why the op cannot take them.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeError> {
        let fail = |reason: String| ShapeError {
            op: self.name().to_string(),
            shapes: inputs.iter().map(|s| s.to_vec()).collect(),
            reason,
        };
        if inputs.len() != self.arity() {
            return Err(fail(format!("expected {} inputs, got {}", self.arity(), inputs.len())));
        }
        let rank = |i: usize, r: usize, what: &str| -> Result<(), ShapeError> {
            if inputs[i].len() == r {
                Ok(())
            } else {
                Err(fail(format!("{what} must have {r} dimensions")))
            }
        };
        let nonempty = || -> Result<(), ShapeError> {
            if inputs.iter().any(|s| s.contains(&0)) {
                Err(fail("every dimension must be at least 1".into()))
            } else {
                Ok(())
            }
        };
        nonempty()?;
        match self {
            Op::Conv2d { stride, padding } => {
                rank(0, 4, "x")?;
                rank(1, 4, "weight")?;
                rank(2, 1, "bias")?;
                let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
                if w[1] != x[1] {
                    return Err(fail(format!("weight expects {} input channels but x has {}", w[1], x[1])));
                }
                if w[2] != w[3] {
                    return Err(fail("the kernel must be square".into()));
                }
                if b[0] != w[0] {
                    return Err(fail(format!("bias has {} values for {} output channels", b[0], w[0])));
                }
                let [h, wd] = conv_output_size([x[2], x[3]], w[2], *stride, *padding).map_err(fail)?;
                Ok(vec![x[0], w[0], h, wd])
            }
            Op::Conv2dBackwardInput { stride, padding, input_size } => {
                rank(0, 4, "dy")?;
                rank(1, 4, "weight")?;
                let (dy, w) = (inputs[0], inputs[1]);
                let out = conv_output_size(*input_size, w[2], *stride, *padding).map_err(fail)?;
                if dy[1] != w[0] || dy[2..] != out {
                    return Err(fail(format!("dy must be [N, {}, {}, {}]", w[0], out[0], out[1])));
                }
                Ok(vec![dy[0], w[1], input_size[0], input_size[1]])
            }
            Op::Conv2dBackwardWeight { stride, padding, kernel } => {
                rank(0, 4, "dy")?;
                rank(1, 4, "x")?;
                let (dy, x) = (inputs[0], inputs[1]);
                let out = conv_output_size([x[2], x[3]], *kernel, *stride, *padding).map_err(fail)?;
                if dy[0] != x[0] || dy[2..] != out {
                    return Err(fail(format!("dy must be [{}, O, {}, {}]", x[0], out[0], out[1])));
                }
                Ok(vec![dy[1], x[1], *kernel, *kernel])
            }
            Op::ChannelSum => {
                if inputs[0].len() < 2 {
                    return Err(fail("x must have at least 2 dimensions".into()));
                }
                Ok(vec![inputs[0][1]])
            }
            Op::AvgPool2 | Op::MaxPool2 => {
                rank(0, 4, "x")?;
                let x = inputs[0];
                if x[2] < 2 || x[3] < 2 {
                    return Err(fail("2×2 pooling needs height and width of at least 2".into()));
                }
                Ok(vec![x[0], x[1], x[2] / 2, x[3] / 2])
            }
            Op::AvgPool2Backward { input_size } => {
                rank(0, 4, "dy")?;
                let dy = inputs[0];
                if dy[2] != input_size[0] / 2 || dy[3] != input_size[1] / 2 {
                    return Err(fail(format!("dy must be half of the input size {input_size:?}")));
                }
                Ok(vec![dy[0], dy[1], input_size[0], input_size[1]])
            }
            Op::MaxPool2Backward => {
                rank(0, 4, "x")?;
                rank(1, 4, "dy")?;
                let (x, dy) = (inputs[0], inputs[1]);
                if dy != [x[0], x[1], x[2] / 2, x[3] / 2] {
                    return Err(fail("dy must be the pooled shape of x".into()));
                }
                Ok(x.to_vec())
            }
            Op::Upsample2 => {
                rank(0, 4, "x")?;
                let x = inputs[0];
                Ok(vec![x[0], x[1], 2 * x[2], 2 * x[3]])
            }
            Op::Upsample2Backward => {
                rank(0, 4, "dy")?;
                let dy = inputs[0];
                if !dy[2].is_multiple_of(2) || !dy[3].is_multiple_of(2) {
                    return Err(fail("dy's height and width must be even".into()));
                }
                Ok(vec![dy[0], dy[1], dy[2] / 2, dy[3] / 2])
            }
            Op::Relu => Ok(inputs[0].to_vec()),
            Op::AddUpsampled2 => {
                rank(0, 4, "high")?;
                rank(1, 4, "low")?;
                let (high, low) = (inputs[0], inputs[1]);
                if high != [low[0], low[1], 2 * low[2], 2 * low[3]] {
                    return Err(fail("high must be low's shape with twice its height and width".into()));
                }
                Ok(high.to_vec())
            }
            Op::ReluBackward | Op::Add => {
                if inputs[0] != inputs[1] {
                    return Err(fail("both inputs must have the same shape".into()));
                }
                Ok(inputs[0].to_vec())
            }
            Op::Linear => {
                rank(0, 2, "x")?;
                rank(1, 2, "weight")?;
                rank(2, 1, "bias")?;
                let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
                if w[1] != x[1] {
                    return Err(fail(format!("weight expects {} input features but x has {}", w[1], x[1])));
                }
                if b[0] != w[0] {
                    return Err(fail(format!("bias has {} values for {} outputs", b[0], w[0])));
                }
                Ok(vec![x[0], w[0]])
            }
            Op::LinearBackwardInput => {
                rank(0, 2, "dy")?;
                rank(1, 2, "weight")?;
                if inputs[0][1] != inputs[1][0] {
                    return Err(fail("dy's features must match the weight's outputs".into()));
                }
                Ok(vec![inputs[0][0], inputs[1][1]])
            }
            Op::LinearBackwardWeight => {
                rank(0, 2, "dy")?;
                rank(1, 2, "x")?;
                if inputs[0][0] != inputs[1][0] {
                    return Err(fail("dy and x must have the same batch".into()));
                }
                Ok(vec![inputs[0][1], inputs[1][1]])
            }
            Op::CrossEntropy | Op::CrossEntropyBackward => {
                rank(0, 2, "logits")?;
                rank(1, 1, "labels")?;
                if inputs[1][0] != inputs[0][0] {
                    return Err(fail("one label per row of logits is needed".into()));
                }
                Ok(if *self == Op::CrossEntropy { vec![1] } else { inputs[0].to_vec() })
            }
            Op::Argmax => {
                rank(0, 2, "x")?;
                Ok(vec![inputs[0][0]])
            }
            Op::Reshape { shape } => {
                if crate::tensor::numel(shape) != crate::tensor::numel(inputs[0]) {
                    return Err(fail(format!("cannot hold its values in shape {shape:?}")));
                }
                Ok(shape.clone())
            }
        }
    }

    /// Floating-point operations of one evaluation (multiply-add = 2), for GFLOP/s.
    pub fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        let n = |s: &[usize]| crate::tensor::numel(s) as u64;
        match self {
            Op::Conv2d { .. } => 2 * n(output) * n(&inputs[1][1..]),
            Op::Conv2dBackwardInput { .. } => 2 * n(inputs[0]) * n(&inputs[1][1..]),
            Op::Conv2dBackwardWeight { .. } => 2 * n(inputs[0]) * n(&output[1..]),
            Op::Linear => 2 * n(output) * inputs[0][1] as u64,
            Op::LinearBackwardInput => 2 * n(output) * inputs[0][1] as u64,
            Op::LinearBackwardWeight => 2 * n(output) * inputs[0][0] as u64,
            Op::Reshape { .. } => 0,
            _ => inputs.iter().map(|s| n(s)).sum::<u64>() + n(output),
        }
    }
}

/// Spatial output size of a convolution, or why there is none.
pub fn conv_output_size(input: [usize; 2], kernel: usize, stride: usize, padding: usize) -> Result<[usize; 2], String> {
    if kernel == 0 || stride == 0 {
        return Err("kernel and stride must be at least 1".into());
    }
    let mut out = [0; 2];
    for (o, i) in out.iter_mut().zip(input) {
        let padded = i + 2 * padding;
        if padded < kernel {
            return Err(format!("the {kernel}×{kernel} kernel is larger than the padded input ({padded})"));
        }
        *o = (padded - kernel) / stride + 1;
    }
    Ok(out)
}
