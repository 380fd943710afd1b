//! Fully connected layer, named and laid out as torch.nn.Linear.

use super::ParamSpec;
use crate::graph::{Graph, GraphError, NodeId};
use crate::ops;

#[derive(Clone, Debug)]
pub struct Linear {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
}

impl Linear {
    pub fn new(name: &str, in_features: usize, out_features: usize) -> Self {
        Linear { name: name.to_string(), in_features, out_features }
    }

    pub fn params(&self) -> Vec<ParamSpec> {
        let spec = |suffix: &str, shape: Vec<usize>| ParamSpec {
            name: format!("{}.{suffix}", self.name),
            shape,
            fan_in: self.in_features,
        };
        vec![spec("weight", vec![self.out_features, self.in_features]), spec("bias", vec![self.out_features])]
    }

    /// y = x·Wᵀ + b
    pub fn apply(&self, g: &mut Graph, x: NodeId) -> Result<NodeId, GraphError> {
        let weight = g.param(&format!("{}.weight", self.name), &[self.out_features, self.in_features]);
        let bias = g.param(&format!("{}.bias", self.name), &[self.out_features]);
        g.apply(&self.name, ops::Linear, &[x, weight, bias])
    }
}
