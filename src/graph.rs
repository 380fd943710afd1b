//! A model as a graph of ops, and reverse-mode differentiation that extends
//! the graph with gradient nodes (one rule per op, in `gradient_rule`).
//!
//! Nodes are appended in topological order, so a node's inputs always have
//! smaller ids: the forward pass is the nodes in id order, and `backward`
//! walks them in reverse.

use std::collections::HashMap;

use crate::ops::{Op, ShapeError};

pub type NodeId = usize;

/// Where a node's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Written by the host before each run (images, labels).
    Input,
    /// A trainable parameter, updated by the optimiser.
    Param,
    /// Computed from `inputs` by an op.
    Op(Op),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub source: Source,
    pub inputs: Vec<NodeId>,
    pub shape: Vec<usize>,
    /// Whether the value depends on a parameter (only those get gradients).
    pub requires_grad: bool,
}

/// Why a graph could not be built or differentiated.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{node}: {source}")]
    Shape { node: String, source: ShapeError },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
}

impl Graph {
    pub fn new() -> Self {
        Graph::default()
    }

    fn push(
        &mut self,
        name: &str,
        source: Source,
        inputs: Vec<NodeId>,
        shape: Vec<usize>,
        requires_grad: bool,
    ) -> NodeId {
        self.nodes.push(Node { name: name.to_string(), source, inputs, shape, requires_grad });
        self.nodes.len() - 1
    }

    pub fn input(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.push(name, Source::Input, vec![], shape.to_vec(), false)
    }

    pub fn param(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.push(name, Source::Param, vec![], shape.to_vec(), true)
    }

    /// Appends `op` applied to `inputs`, named `name` (used in error messages
    /// and to find feature maps), after checking the shapes.
    pub fn apply(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|&i| self.nodes[i].shape.as_slice()).collect();
        let shape = op.output_shape(&shapes).map_err(|source| GraphError::Shape { node: name.to_string(), source })?;
        let requires_grad = inputs.iter().any(|&i| self.nodes[i].requires_grad);
        Ok(self.push(name, Source::Op(op), inputs.to_vec(), shape, requires_grad))
    }

    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.nodes[id].shape
    }

    /// The first node called `name`.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Parameter nodes in the order they were declared.
    pub fn params(&self) -> Vec<NodeId> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].source == Source::Param).collect()
    }

    /// Appends the gradient of `loss` (a `CrossEntropy` node, the graph's
    /// root) with respect to every parameter, and returns (param, gradient)
    /// pairs in parameter order.
    pub fn backward(&mut self, loss: NodeId) -> Result<Vec<(NodeId, NodeId)>, GraphError> {
        if !matches!(self.nodes[loss].source, Source::Op(Op::CrossEntropy)) {
            return Err(GraphError::Invalid(format!(
                "backward starts from a cross-entropy loss, not {}",
                self.nodes[loss].name
            )));
        }
        let mut grads: HashMap<NodeId, NodeId> = HashMap::new();
        for id in (0..=loss).rev() {
            let node = &self.nodes[id];
            let Source::Op(op) = node.source.clone() else { continue };
            let dy = grads.get(&id).copied();
            if !node.requires_grad || (dy.is_none() && id != loss) {
                continue;
            }
            let inputs = node.inputs.clone();
            let wanted: Vec<bool> = inputs.iter().map(|&i| self.nodes[i].requires_grad).collect();
            let input_grads = self.gradient_rule(id, &op, dy, &wanted)?;
            for ((input, grad), wanted) in inputs.into_iter().zip(input_grads).zip(wanted) {
                let Some(grad) = grad.filter(|_| wanted) else { continue };
                let total = match grads.get(&input) {
                    Some(&earlier) => {
                        let name = format!("{}.grad", self.nodes[input].name);
                        self.apply(&name, Op::Add, &[earlier, grad])?
                    }
                    None => grad,
                };
                grads.insert(input, total);
            }
        }
        self.params()
            .into_iter()
            .map(|p| match grads.get(&p) {
                Some(&g) => Ok((p, g)),
                None => Err(GraphError::Invalid(format!("parameter {} does not affect the loss", self.nodes[p].name))),
            })
            .collect()
    }

    /// The gradient of each input of node `id` given the gradient `dy` of its
    /// output, for the inputs marked in `wanted`. This is the one place that
    /// knows how each op differentiates.
    fn gradient_rule(
        &mut self,
        id: NodeId,
        op: &Op,
        dy: Option<NodeId>,
        wanted: &[bool],
    ) -> Result<Vec<Option<NodeId>>, GraphError> {
        let node = &self.nodes[id];
        let name = format!("{}.backward", node.name);
        let inputs = node.inputs.clone();
        let hw = |g: &Graph, i: NodeId| [g.nodes[i].shape[2], g.nodes[i].shape[3]];
        let dy_or_err = || dy.ok_or_else(|| GraphError::Invalid(format!("{name}: no incoming gradient")));
        let want = |g: &mut Graph, which: usize, op: Op, args: &[NodeId]| -> Result<Option<NodeId>, GraphError> {
            if wanted[which] {
                g.apply(&format!("{name}.{which}"), op, args).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(match op {
            Op::Conv2d { stride, padding } => {
                let (x, w) = (inputs[0], inputs[1]);
                let (stride, padding, kernel) = (*stride, *padding, self.nodes[w].shape[2]);
                let dy = dy_or_err()?;
                vec![
                    want(self, 0, Op::Conv2dBackwardInput { stride, padding, input_size: hw(self, x) }, &[dy, w])?,
                    want(self, 1, Op::Conv2dBackwardWeight { stride, padding, kernel }, &[dy, x])?,
                    want(self, 2, Op::ChannelSum, &[dy])?,
                ]
            }
            Op::Linear => {
                let dy = dy_or_err()?;
                vec![
                    want(self, 0, Op::LinearBackwardInput, &[dy, inputs[1]])?,
                    want(self, 1, Op::LinearBackwardWeight, &[dy, inputs[0]])?,
                    want(self, 2, Op::ChannelSum, &[dy])?,
                ]
            }
            Op::AvgPool2 => {
                let input_size = hw(self, inputs[0]);
                vec![want(self, 0, Op::AvgPool2Backward { input_size }, &[dy_or_err()?])?]
            }
            Op::MaxPool2 => vec![want(self, 0, Op::MaxPool2Backward, &[inputs[0], dy_or_err()?])?],
            Op::Upsample2 => vec![want(self, 0, Op::Upsample2Backward, &[dy_or_err()?])?],
            // The mask reads the ReLU's output (y > 0 exactly where x > 0), so
            // its input need not be kept, and the op before it may compute it.
            Op::Relu => vec![want(self, 0, Op::ReluBackward, &[id, dy_or_err()?])?],
            Op::Add => vec![Some(dy_or_err()?), Some(dy_or_err()?)],
            Op::AddUpsampled2 => vec![Some(dy_or_err()?), want(self, 1, Op::Upsample2Backward, &[dy_or_err()?])?],
            Op::Reshape { .. } => {
                let shape = self.nodes[inputs[0]].shape.clone();
                vec![want(self, 0, Op::Reshape { shape }, &[dy_or_err()?])?]
            }
            // The loss is the root: its own gradient is 1, so dy is not used.
            Op::CrossEntropy => vec![want(self, 0, Op::CrossEntropyBackward, &[inputs[0], inputs[1]])?, None],
            other => return Err(GraphError::Invalid(format!("{name}: {} has no gradient", other.name()))),
        })
    }
}
