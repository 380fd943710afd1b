//! A model as a graph of ops, and reverse-mode differentiation that extends
//! the graph with gradient nodes (each op's rule is its `OpDef::gradient`).
//!
//! Nodes are appended in topological order, so a node's inputs always have
//! smaller ids: the forward pass is the nodes in id order, and `backward`
//! walks them in reverse.

use std::collections::HashMap;

use crate::ops::{Add, CrossEntropy, Gradient, GraphBuilder, Op};
pub use crate::ops::{GraphError, NodeId};

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
    pub fn apply(&mut self, name: &str, op: impl Into<Op>, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        let op = op.into();
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
        if self.nodes[loss].source != Source::Op(CrossEntropy.into()) {
            return Err(GraphError::Invalid(format!(
                "backward starts from a cross-entropy loss, not {}",
                self.nodes[loss].name
            )));
        }
        self.differentiate(loss, None)
    }

    /// Appends the gradient of Σ dy · output with respect to every parameter,
    /// for a node `dy` of the output's shape (a vector-Jacobian product: how
    /// one op's gradient rule is tested on its own).
    pub fn backward_with(&mut self, output: NodeId, dy: NodeId) -> Result<Vec<(NodeId, NodeId)>, GraphError> {
        if self.shape(dy) != self.shape(output) {
            return Err(GraphError::Invalid(format!(
                "the gradient of {} must have its shape",
                self.nodes[output].name
            )));
        }
        self.differentiate(output, Some(dy))
    }

    /// Walks back from `root` (whose gradient is `seed`, or 1 for the loss),
    /// applying each op's rule and summing the gradients of values read twice.
    fn differentiate(&mut self, root: NodeId, seed: Option<NodeId>) -> Result<Vec<(NodeId, NodeId)>, GraphError> {
        let mut grads: HashMap<NodeId, NodeId> = HashMap::new();
        grads.extend(seed.map(|dy| (root, dy)));
        for id in (0..=root).rev() {
            let node = &self.nodes[id];
            let Source::Op(op) = node.source.clone() else { continue };
            let dy = grads.get(&id).copied();
            if !node.requires_grad || (dy.is_none() && id != root) {
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
                        self.apply(&name, Add, &[earlier, grad])?
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
    /// output, for the inputs marked in `wanted`: the op's own rule (`OpDef::gradient`).
    fn gradient_rule(
        &mut self,
        id: NodeId,
        op: &Op,
        dy: Option<NodeId>,
        wanted: &[bool],
    ) -> Result<Vec<Option<NodeId>>, GraphError> {
        let node = &self.nodes[id];
        let mut gradient = Gradient {
            name: format!("{}.backward", node.name),
            inputs: node.inputs.clone(),
            output: id,
            dy,
            wanted: wanted.to_vec(),
            graph: self,
        };
        op.def().gradient(&mut gradient)
    }
}

impl GraphBuilder for Graph {
    fn apply_op(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        self.apply(name, op, inputs)
    }

    fn shape_of(&self, id: NodeId) -> &[usize] {
        self.shape(id)
    }
}
