//! Host tensors: a shape and its f32 values in row-major (NCHW) order.

use rand::{Rng, SeedableRng};

/// A dense f32 tensor on the host. Class indices (labels, predictions) are
/// carried as exact small integers in f32, so every tensor has one dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    pub fn new(shape: &[usize], data: Vec<f32>) -> Self {
        assert_eq!(numel(shape), data.len(), "tensor data does not fill shape {shape:?}");
        Tensor { shape: shape.to_vec(), data }
    }

    pub fn zeros(shape: &[usize]) -> Self {
        Tensor::new(shape, vec![0.0; numel(shape)])
    }

    /// Values drawn uniformly from [low, high) with a seeded generator.
    pub fn uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let data = (0..numel(shape)).map(|_| rng.random_range(low..high)).collect();
        Tensor::new(shape, data)
    }

    /// Class indices in 0..classes, one per row.
    pub fn labels(rows: usize, classes: usize, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let data = (0..rows).map(|_| rng.random_range(0..classes) as f32).collect();
        Tensor::new(&[rows], data)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
