//! Datasets: the IDX format (plain or gzip), MNIST and Fashion-MNIST files,
//! batches, and the MNIST-style preprocessing of any grayscale image.

mod idx;
#[cfg(not(target_arch = "wasm32"))]
mod image_input;
#[cfg(not(target_arch = "wasm32"))]
mod mnist;
mod preprocess;

pub use idx::{parse_idx, Idx};
#[cfg(not(target_arch = "wasm32"))]
pub use image_input::{digit_from_bytes, digit_from_image, load_digit, MAX_DECODE_BYTES, MAX_SIDE};
#[cfg(not(target_arch = "wasm32"))]
pub use mnist::{load_split, DatasetKind, Split};
pub use preprocess::to_mnist_input;

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// What can be wrong with data; each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}")]
    Missing(String),
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("{path}: cannot be read: {source}; check the path and that you may read it")]
    Io { path: String, source: std::io::Error },
}

/// Labelled 28×28 images, pixels as bytes.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

pub const PIXELS: usize = 28 * 28;

impl Dataset {
    /// Pairs an IDX image file with an IDX label file; `names` are their paths, for messages.
    pub fn from_idx(images: Idx, labels: Idx, names: [&str; 2]) -> Result<Dataset, DataError> {
        let invalid = |path: &str, problem: String| DataError::Invalid { path: path.to_string(), problem };
        if images.dims.len() != 3 || images.dims[1..] != [28, 28] {
            return Err(invalid(
                names[0],
                format!(
                    "holds images of dimensions {:?}, not 28×28 ones; give MNIST's or Fashion-MNIST's files",
                    images.dims
                ),
            ));
        }
        if labels.dims.len() != 1 {
            return Err(invalid(names[1], format!("expected a list of labels, found dimensions {:?}", labels.dims)));
        }
        if images.dims[0] == 0 {
            return Err(invalid(names[0], "holds no images; a split needs at least one".into()));
        }
        if images.dims[0] != labels.dims[0] {
            return Err(invalid(
                names[1],
                format!(
                    "has {} labels but {} has {} images; use the label file that belongs to it",
                    labels.dims[0], names[0], images.dims[0]
                ),
            ));
        }
        if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
            return Err(invalid(names[1], format!("contains label {bad}, but only 0 to 9 are classes")));
        }
        Ok(Dataset { images: images.data, labels: labels.data })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Values per example (28 × 28 pixels).
    pub fn sample_len(&self) -> usize {
        PIXELS
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A copy of the first `n` examples (all of them when there are fewer).
    pub fn first(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset { images: self.images[..n * PIXELS].to_vec(), labels: self.labels[..n].to_vec() }
    }

    /// Pixels scaled to [0, 1] (as torchvision's ToTensor) and labels of the
    /// examples at `indices`, padded to `batch` rows with zeros and label −1.
    pub fn batch(&self, indices: &[usize], batch: usize) -> (Vec<f32>, Vec<f32>) {
        let mut images = vec![0.0; batch * PIXELS];
        let mut labels = vec![-1.0; batch];
        for (row, &i) in indices.iter().enumerate() {
            let pixels = &self.images[i * PIXELS..(i + 1) * PIXELS];
            for (dst, &p) in images[row * PIXELS..(row + 1) * PIXELS].iter_mut().zip(pixels) {
                *dst = p as f32 / 255.0;
            }
            labels[row] = self.labels[i] as f32;
        }
        (images, labels)
    }

    /// The batch of `batch` rows starting at position `first` of `order`,
    /// padded past its end (the CPU twin of the `gather_batch` kernel).
    pub fn batch_at(&self, order: &[usize], first: usize, batch: usize) -> (Vec<f32>, Vec<f32>) {
        let end = (first + batch).min(order.len());
        self.batch(&order[first.min(end)..end], batch)
    }
}

/// The order of examples in `epoch` (0-based): a seeded shuffle, different each epoch.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    order.shuffle(&mut rng);
    order
}
