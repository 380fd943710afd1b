//! The tensor ops, one module per op family, each beside its WGSL file:
//!
//! | module | shader | ops |
//! |---|---|---|
//! | `conv` | conv2d.wgsl | Conv2d and its two gradients |
//! | `reduce` | reduce.wgsl | ChannelSum (bias gradients) |
//! | `pool` | pool.wgsl | AvgPool2, MaxPool2 and their gradients |
//! | `upsample` | upsample.wgsl | Upsample2, its gradient, AddUpsampled2 |
//! | `elementwise` | elementwise.wgsl | Relu, ReluBackward, Add (+ the accumulate kernel) |
//! | `linear` | linear.wgsl | Linear and its two gradients, BatchedMatmul |
//! | `winograd` | winograd.wgsl | the Winograd F(2×2, 3×3) transforms and their gradients |
//! | `loss` | cross_entropy.wgsl, argmax.wgsl | CrossEntropy, its gradient, Argmax (+ batch metrics) |
//! | `reshape` | — | Reshape |
//! | `adam`, `gather` | adam.wgsl, gather.wgsl | kernels that are not graph ops |
//!
//! A module holds, for each of its ops, everything about it: the shape rule
//! and its error messages, the FLOPs, the gradient rule, the CPU twin and
//! the fast CPU version, the kernel launch, and the family's check cases.
//! Every op implements [`OpDef`] (no method has a default, so forgetting a
//! part is a compile error), and [`ops!`] below registers it: adding an op
//! is its module, its shader and one line there.
//!
//! Backward ops are ops too, so the graph differentiates by adding nodes.

pub mod adam;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod cases;
pub mod conv;
pub mod elementwise;
pub mod fast_cpu;
pub mod gather;
pub mod kernel;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod reduce;
pub mod reshape;
pub mod upsample;
pub mod winograd;

use std::fmt;

pub use kernel::{Kernel, Launch, Tiling};

use crate::tensor::Tensor;
use cases::{Case, GradientCase, Seeds};
use kernel::ShaderFile;

/// A node of a graph, by position.
pub type NodeId = usize;

/// What every op defines. The methods take the op's input shapes (and its
/// output shape, once known) so that one description serves every shape.
pub trait OpDef {
    /// The name used in kernel tables and error messages.
    fn name(&self) -> &'static str;
    /// How many inputs the op takes.
    fn arity(&self) -> usize;
    /// The output shape, or why the op cannot take these inputs (their count
    /// and non-emptiness are checked before).
    fn output_shape(&self, inputs: &Shapes) -> Result<Vec<usize>, String>;
    /// Floating-point operations of one evaluation (multiply-add = 2), for GFLOP/s.
    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64;
    /// The gradient of each input, as new graph nodes (None where not wanted
    /// or not differentiable); backward ops answer `Gradient::none`.
    fn gradient(&self, grad: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError>;
    /// The CPU twin: plain loops, written to be obviously right.
    fn cpu(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32>;
    /// The CPU device's version (GEMM, threads) where it pays, else the twin.
    fn cpu_fast(&self, inputs: &[&Tensor], output: &[usize]) -> Vec<f32> {
        self.cpu(inputs, output)
    }
    /// The kernel launch, with the heavy kernels in `tiling`'s variant, or
    /// None for ops that move no data.
    fn launch(&self, inputs: &[&[usize]], output: &[usize], tiling: Tiling) -> Option<Launch>;
}

/// An op family: its shader file, its kernels and its check cases.
pub struct Family {
    /// The module's name (`octconv check` and the tests group cases by it).
    pub name: &'static str,
    /// Its WGSL files (none for ops that move no data).
    pub shaders: &'static [ShaderFile],
    pub kernels: &'static [&'static Kernel],
    /// Every kernel of the family against its CPU twin, with stated tolerances.
    pub cases: fn(&mut Seeds) -> Vec<Case>,
    /// Every gradient rule of the family against finite differences.
    pub gradients: fn(&mut Seeds) -> Vec<GradientCase>,
}

/// Registers the ops: the `Op` enum, its dispatch to each op's `OpDef`, and
/// the list of families. One line per family.
macro_rules! ops {
    ($($family:ident: $($variant:ident),*;)*) => {
        /// A tensor op. Shapes are NCHW for images and [batch, features] for vectors.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            $($($variant($family::$variant),)*)*
        }

        impl Op {
            /// Everything about this op (see `OpDef`).
            pub fn def(&self) -> &dyn OpDef {
                match self {
                    $($(Op::$variant(op) => op,)*)*
                }
            }
        }

        $($(pub use $family::$variant;)*)*

        $($(impl From<$family::$variant> for Op {
            fn from(op: $family::$variant) -> Op {
                Op::$variant(op)
            }
        })*)*
    };
}

ops! {
    conv: Conv2d, Conv2dBackwardInput, Conv2dBackwardWeight, Im2col, ColumnsProduct;
    reduce: ChannelSum;
    pool: AvgPool2, AvgPool2Backward, MaxPool2, MaxPool2Backward;
    upsample: Upsample2, Upsample2Backward, AddUpsampled2;
    elementwise: Relu, ReluBackward, Add;
    linear: Linear, LinearBackwardInput, LinearBackwardWeight, BatchedMatmul;
    winograd: WinogradInput, WinogradInputBackward, WinogradWeight, WinogradWeightBackward, WinogradOutput,
        WinogradOutputBackward;
    loss: CrossEntropy, CrossEntropyBackward, Argmax;
    reshape: Reshape;
}

/// Every family, in the order `octconv check` runs them.
pub const FAMILIES: [&Family; 11] = [
    &conv::FAMILY,
    &reduce::FAMILY,
    &pool::FAMILY,
    &upsample::FAMILY,
    &elementwise::FAMILY,
    &linear::FAMILY,
    &winograd::FAMILY,
    &loss::FAMILY,
    &reshape::FAMILY,
    &gather::FAMILY,
    &adam::FAMILY,
];

/// Every kernel of every family.
pub fn all_kernels() -> impl Iterator<Item = &'static Kernel> {
    FAMILIES.into_iter().flat_map(|f| f.kernels.iter().copied())
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

/// Why a graph could not be built or differentiated.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{node}: {source}")]
    Shape { node: String, source: ShapeError },
    #[error("{0}")]
    Invalid(String),
}

/// An op's input shapes, with the checks shape rules share.
pub struct Shapes<'a>(pub &'a [&'a [usize]]);

impl<'a> Shapes<'a> {
    /// Input `i`, which must have `rank` dimensions; `what` names it in the error.
    pub fn rank(&self, i: usize, rank: usize, what: &str) -> Result<&'a [usize], String> {
        let shape = self.0[i];
        if shape.len() == rank {
            Ok(shape)
        } else {
            Err(format!("{what} must have {rank} dimensions"))
        }
    }

    pub fn get(&self, i: usize) -> &'a [usize] {
        self.0[i]
    }
}

impl Op {
    pub fn name(&self) -> &'static str {
        self.def().name()
    }

    pub fn arity(&self) -> usize {
        self.def().arity()
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
        if inputs.iter().any(|s| s.contains(&0)) {
            return Err(fail("every dimension must be at least 1".into()));
        }
        self.def().output_shape(&Shapes(inputs)).map_err(fail)
    }

    pub fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        self.def().flops(inputs, output)
    }

    /// The op's kernel launch in `tiling`'s variant (None: it moves no data).
    pub fn launch(&self, inputs: &[&[usize]], output: &[usize], tiling: Tiling) -> Option<Launch> {
        self.def().launch(inputs, output, tiling)
    }

    /// Whether the kernel computing the op on these shapes can apply a following ReLU as it writes.
    pub fn absorbs_relu(&self, inputs: &[&[usize]], output: &[usize], tiling: Tiling) -> bool {
        self.launch(inputs, output, tiling).is_some_and(|launch| launch.kernel.relu_word.is_some())
    }

    /// Evaluates the op with its CPU twin after checking the input shapes.
    pub fn eval_cpu(&self, inputs: &[&Tensor]) -> Result<Tensor, ShapeError> {
        let out = self.output_shape(&shapes_of(inputs))?;
        Ok(Tensor::new(&out, self.def().cpu(inputs, &out)))
    }

    /// Evaluates the op on the fast CPU device after checking the input shapes.
    pub fn eval_fast(&self, inputs: &[&Tensor]) -> Result<Tensor, ShapeError> {
        let out = self.output_shape(&shapes_of(inputs))?;
        Ok(Tensor::new(&out, self.def().cpu_fast(inputs, &out)))
    }
}

/// The shapes of `inputs`, in order.
pub fn shapes_of<'a>(inputs: &[&'a Tensor]) -> Vec<&'a [usize]> {
    inputs.iter().map(|t| t.shape.as_slice()).collect()
}

/// Flops of an op that touches each input and output value once.
pub fn elementwise_flops(inputs: &[&[usize]], output: &[usize]) -> u64 {
    let n = |s: &[usize]| crate::tensor::numel(s) as u64;
    inputs.iter().map(|s| n(s)).sum::<u64>() + n(output)
}

/// What a gradient rule may do to the graph being differentiated.
pub trait GraphBuilder {
    fn apply_op(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> Result<NodeId, GraphError>;
    fn shape_of(&self, id: NodeId) -> &[usize];
}

/// One node being differentiated: its inputs, output and incoming gradient,
/// and which input gradients are wanted.
pub struct Gradient<'a> {
    pub graph: &'a mut dyn GraphBuilder,
    /// "<node>.backward", the prefix of the gradient nodes' names.
    pub name: String,
    pub inputs: Vec<NodeId>,
    pub output: NodeId,
    /// The gradient of the output; None only at the loss (the root).
    pub dy: Option<NodeId>,
    pub wanted: Vec<bool>,
}

impl Gradient<'_> {
    pub fn input(&self, k: usize) -> NodeId {
        self.inputs[k]
    }

    pub fn shape(&self, id: NodeId) -> Vec<usize> {
        self.graph.shape_of(id).to_vec()
    }

    /// (height, width) of an NCHW node.
    pub fn size_2d(&self, id: NodeId) -> [usize; 2] {
        let s = self.graph.shape_of(id);
        [s[2], s[3]]
    }

    /// The incoming gradient.
    pub fn dy(&self) -> Result<NodeId, GraphError> {
        self.dy.ok_or_else(|| GraphError::Invalid(format!("{}: no incoming gradient", self.name)))
    }

    /// The gradient of input `which` as `op(args)`, when it is wanted.
    pub fn apply(&mut self, which: usize, op: impl Into<Op>, args: &[NodeId]) -> Result<Option<NodeId>, GraphError> {
        if !self.wanted[which] {
            return Ok(None);
        }
        let name = format!("{}.{which}", self.name);
        self.graph.apply_op(&name, op.into(), args).map(Some)
    }

    /// For ops that are gradients themselves: differentiating them is an error.
    pub fn none(&self, op: &str) -> Result<Vec<Option<NodeId>>, GraphError> {
        Err(GraphError::Invalid(format!("{}: {op} has no gradient", self.name)))
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
