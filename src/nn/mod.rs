//! Layers and the seed network, built as graphs with PyTorch's parameter
//! names, layouts and default initialisation.

mod linear;
mod octave;
mod seed;

pub use linear::Linear;
pub use octave::{Branches, ConvLowering, OctaveConv, PathCost};
pub use seed::{checked_alpha, SeedNet, TrainGraph, CLASSES, IMAGE_SIDE, SEED_ALPHA};

use rand::{Rng, SeedableRng};

use crate::tensor::Tensor;

/// A parameter a layer declares: its state_dict name, shape and fan-in.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub fan_in: usize,
}

/// Named parameter values, in the model's declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSet {
    pub tensors: Vec<(String, Tensor)>,
}

impl ParamSet {
    /// PyTorch's default initialisation for Conv2d and Linear, weight and
    /// bias alike: U(−1/√fan_in, 1/√fan_in), drawn from one seeded generator.
    pub fn init(specs: &[ParamSpec], seed: u64) -> ParamSet {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let tensors = specs
            .iter()
            .map(|spec| {
                let bound = 1.0 / (spec.fan_in as f32).sqrt();
                let count = spec.shape.iter().product();
                let data = (0..count).map(|_| rng.random_range(-bound..bound)).collect();
                (spec.name.clone(), Tensor::new(&spec.shape, data))
            })
            .collect();
        ParamSet { tensors }
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The name of the first tensor holding a NaN or an infinity, if any.
    pub fn first_non_finite(&self) -> Option<&str> {
        self.tensors.iter().find(|(_, t)| t.data.iter().any(|v| !v.is_finite())).map(|(n, _)| n.as_str())
    }

    /// Total number of values.
    pub fn count(&self) -> usize {
        self.tensors.iter().map(|(_, t)| t.len()).sum()
    }
}
