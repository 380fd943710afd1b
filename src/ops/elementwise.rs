//! Element-wise ops: ReLU, its gradient, and the sum of two tensors (plus
//! the in-place `accumulate` kernel).
//!
//! Gradient rules: add → (dy, dy), no kernel at all; relu →
//! ReluBackward(y, dy), which reads the ReLU's *output* (y > 0 exactly where
//! x > 0), so the input need not be kept and the op before a ReLU may compute
//! it as it writes (`exec::relu_fusions`). ReluBackward is a kernel of its
//! own: written with other ops it would need a comparison op and a product.

use std::mem::offset_of;

use super::cases::{
    dispatch_case, gradient_case, kinked_gradient_case, single, with_relu, Buffer, Case, GradientCase, Seeds, Work,
    EXACT, MAP_SHAPES, SMALL_SUMS,
};
use super::fast_cpu::{map_in_place, zip_map};
use super::kernel::{per_invocation, word, Kernel, KernelParams, Launch, ParamsLayout, ShaderFile, Tiling};
use super::{elementwise_flops, Family, Gradient, GraphError, NodeId, OpDef, Shapes};
use crate::kernel_params;
use crate::tensor::{numel, Tensor};

const SHADER: ShaderFile =
    ShaderFile { name: "elementwise.wgsl", source: include_str!("../../shaders/elementwise.wgsl") };

kernel_params! {
    /// ElementwiseParams in elementwise.wgsl.
    pub struct ElementwiseParams {
        pub count: u32,
        /// add: 1 applies a ReLU to the sum.
        pub relu: u32,
    }
}

const PARAMS: &ParamsLayout = &ElementwiseParams::LAYOUT;

pub const RELU_FORWARD: Kernel = Kernel::new(SHADER, "relu_forward", PARAMS, 1, 1);
pub const RELU_BACKWARD: Kernel = Kernel::new(SHADER, "relu_backward", PARAMS, 2, 1);
pub const ADD: Kernel = Kernel::new(SHADER, "add", PARAMS, 2, 1).with_relu_at(offset_of!(ElementwiseParams, relu));
/// acc += x, in place (bindings: x, acc).
pub const ACCUMULATE: Kernel = Kernel::new(SHADER, "accumulate", PARAMS, 1, 1);

pub const FAMILY: Family = Family {
    name: "elementwise",
    shaders: &[SHADER],
    kernels: &[&RELU_FORWARD, &RELU_BACKWARD, &ADD, &ACCUMULATE],
    cases,
    gradients,
};

/// x -> max(x, 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Relu;

/// x, dy -> dy · [x > 0]; x may be the ReLU's input or its output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReluBackward;

/// a, b -> a + b (same shape).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Add;

fn count(output: &[usize]) -> ElementwiseParams {
    ElementwiseParams { count: word(numel(output)), relu: 0 }
}

fn same_shapes(s: &Shapes) -> Result<Vec<usize>, String> {
    if s.get(0) != s.get(1) {
        return Err("both inputs must have the same shape".into());
    }
    Ok(s.get(0).to_vec())
}

impl OpDef for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        Ok(s.get(0).to_vec())
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (y, dy) = (g.output, g.dy()?);
        Ok(vec![g.apply(0, ReluBackward, &[y, dy])?])
    }

    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        inputs[0].data.iter().map(|&v| v.max(0.0)).collect()
    }

    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        let mut y = inputs[0].data.clone();
        relu_in_place(&mut y);
        y
    }

    fn launch(&self, _inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&RELU_FORWARD, &count(output), per_invocation(numel(output))))
    }
}

impl OpDef for ReluBackward {
    fn name(&self) -> &'static str {
        "relu_backward"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        same_shapes(s)
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        g.none(self.name())
    }

    /// dx = dy · [x > 0]
    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        inputs[0].data.iter().zip(&inputs[1].data).map(|(&x, &g)| relu_gradient(x, g)).collect()
    }

    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        zip_map(&inputs[0].data, &inputs[1].data, relu_gradient)
    }

    fn launch(&self, _inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&RELU_BACKWARD, &count(output), per_invocation(numel(output))))
    }
}

impl OpDef for Add {
    fn name(&self) -> &'static str {
        "add"
    }

    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        same_shapes(s)
    }

    fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        elementwise_flops(inputs, output)
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let dy = g.dy()?;
        Ok(vec![Some(dy), Some(dy)])
    }

    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        add(inputs[0], inputs[1])
    }

    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        zip_map(&inputs[0].data, &inputs[1].data, |a, b| a + b)
    }

    fn launch(&self, _inputs: &[&[usize]], output: &[usize], _tiling: Tiling) -> Option<Launch> {
        Some(Launch::new(&ADD, &count(output), per_invocation(numel(output))))
    }
}

/// ReLU in place, in parallel chunks: the CPU device's ReLU, and the one it
/// fuses into the op before it (`CpuProgram`).
pub fn relu_in_place(values: &mut [f32]) {
    map_in_place(values, |v| v.max(0.0));
}

fn relu_gradient(x: f32, g: f32) -> f32 {
    if x > 0.0 {
        g
    } else {
        0.0
    }
}

fn add(a: &Tensor, b: &Tensor) -> Vec<f32> {
    a.data.iter().zip(&b.data).map(|(a, b)| a + b).collect()
}

/// `acc += x` over `count` elements.
pub fn accumulate_launch(count: usize) -> Launch {
    Launch::new(&ACCUMULATE, &ElementwiseParams { count: word(count), relu: 0 }, per_invocation(count))
}

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    for shape in MAP_SHAPES {
        let x = seeds.coarse(&shape);
        cases.push(single(Relu, vec![x.clone()], EXACT));
        cases.push(single(ReluBackward, vec![x.clone(), seeds.random(&shape)], EXACT));
        cases.push(single(Add, vec![seeds.random(&shape), seeds.random(&shape)], EXACT));
        cases.push(with_relu(single(Add, vec![seeds.random(&shape), seeds.random(&shape)], SMALL_SUMS)));
        let (acc, x) = (seeds.random(&shape), seeds.random(&shape));
        let work = Work::Dispatches {
            expected: add(&acc, &x),
            dispatches: vec![(accumulate_launch(x.len()), vec![0, 1])],
            buffers: vec![Buffer::Floats(x.data), Buffer::Floats(acc.data)],
            read: vec![1],
        };
        cases.push(dispatch_case("accumulate", format!("{shape:?}"), EXACT, work));
    }
    cases
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    vec![
        kinked_gradient_case(Relu, vec![seeds.spread(&[2, 3, 4, 5])]),
        gradient_case(Add, vec![seeds.random(&[2, 3, 4]), seeds.random(&[2, 3, 4])]),
    ]
}
