//! Reshape: the same values under another shape. It moves no data: on the
//! GPU the planner gives it its input's buffer, so it has no kernel.
//!
//! Gradient rule: dy reshaped back to the input's shape.

use super::cases::{gradient_case, Case, GradientCase, Seeds};
use super::fast_cpu::copy;
use super::kernel::{Launch, Tiling};
use super::{Family, Gradient, GraphError, NodeId, OpDef, Shapes};
use crate::tensor::{numel, Tensor};

pub const FAMILY: Family = Family { name: "reshape", shaders: &[], kernels: &[], cases, gradients };

/// x -> the same values under `shape` (no data movement).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reshape {
    pub shape: Vec<usize>,
}

impl OpDef for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }

    fn arity(&self) -> usize {
        1
    }

    fn output_shape(&self, s: &Shapes) -> Result<Vec<usize>, String> {
        if numel(&self.shape) != numel(s.get(0)) {
            return Err(format!("cannot hold its values in shape {:?}", self.shape));
        }
        Ok(self.shape.clone())
    }

    fn flops(&self, _inputs: &[&[usize]], _output: &[usize]) -> u64 {
        0
    }

    fn gradient(&self, g: &mut Gradient) -> Result<Vec<Option<NodeId>>, GraphError> {
        let (shape, dy) = (g.shape(g.input(0)), g.dy()?);
        Ok(vec![g.apply(0, Reshape { shape }, &[dy])?])
    }

    fn cpu(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        inputs[0].data.clone()
    }

    /// A copy into a recycled buffer (`fast_cpu::copy`), as the other ops
    /// write theirs: no allocation in the step.
    fn cpu_fast(&self, inputs: &[&Tensor], _output: &[usize]) -> Vec<f32> {
        copy(&inputs[0].data)
    }

    fn launch(&self, _inputs: &[&[usize]], _output: &[usize], _tiling: Tiling) -> Option<Launch> {
        None
    }
}

/// No kernel, nothing to check on a GPU.
fn cases(_seeds: &mut Seeds) -> Vec<Case> {
    Vec::new()
}

fn gradients(seeds: &mut Seeds) -> Vec<GradientCase> {
    vec![gradient_case(Reshape { shape: vec![6, 4] }, vec![seeds.random(&[2, 3, 4])])]
}
