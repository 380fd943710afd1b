//! The batch gather: a kernel, not a graph op. Datasets live on the device as
//! bytes (four to a word); each training step's first dispatch builds its
//! batch from them (pixels / 255, rows past the order's end padded with
//! label −1). Its CPU twin is `Dataset::batch_at`.

use super::cases::{dispatch_case, no_gradients, Buffer, Case, Seeds, Work, EXACT};
use super::kernel::{word, Kernel, KernelParams, Launch, ShaderFile};
use super::Family;
use crate::data::{epoch_order, Dataset, PIXELS};
use crate::kernel_params;
use crate::tensor::Tensor;

const SHADER: ShaderFile = ShaderFile { name: "gather.wgsl", source: include_str!("../../shaders/gather.wgsl") };

kernel_params! {
    /// GatherParams in gather.wgsl.
    pub struct GatherParams {
        /// Rows of the batch.
        pub batch: u32,
        /// Bytes per example.
        pub pixels: u32,
        /// Position in `order` of the batch's first row.
        pub first: u32,
        /// Entries in `order`; rows past its end are padding.
        pub count: u32,
    }
}

/// Bindings: order, images, labels (bytes), then the batch's images and labels.
pub const GATHER_BATCH: Kernel = Kernel::new(SHADER, "gather_batch", &GatherParams::LAYOUT, 3, 2);

pub const FAMILY: Family =
    Family { name: "gather", shaders: &[SHADER], kernels: &[&GATHER_BATCH], cases, gradients: no_gradients };

/// The parameters of gathering `batch` rows of `pixels` bytes each, starting
/// at position `first` of an order of `count` examples (rewritten every step).
pub fn gather_params(batch: usize, pixels: usize, first: usize, count: usize) -> GatherParams {
    GatherParams { batch: word(batch), pixels: word(pixels), first: word(first), count: word(count) }
}

pub fn gather_launch(batch: usize, pixels: usize, first: usize, count: usize) -> Launch {
    Launch::new(&GATHER_BATCH, &gather_params(batch, pixels, first, count), batch * pixels)
}

fn cases(seeds: &mut Seeds) -> Vec<Case> {
    let mut cases = Vec::new();
    // (examples, batch, first): one example, a padded tail, a batch larger than
    // the data, an odd count (labels not filling their last word).
    for [len, batch, first] in [[1, 1, 0], [7, 5, 5], [13, 64, 0], [301, 64, 256]] {
        let images = Tensor::uniform(&[len * PIXELS], 0.0, 256.0, seeds.seed()).data.iter().map(|&v| v as u8).collect();
        let labels = Tensor::labels(len, 10, seeds.seed()).data.iter().map(|&l| l as u8).collect();
        let data = Dataset { images, labels };
        let order = epoch_order(len, seeds.seed(), 0);
        let (mut expected, labels) = data.batch_at(&order, first, batch);
        expected.extend(labels);
        let order_words: Vec<u32> = order.iter().map(|&i| i as u32).collect();
        let work = Work::Dispatches {
            buffers: vec![
                Buffer::Bytes(bytemuck::cast_slice(&order_words).to_vec()),
                Buffer::Bytes(data.images),
                Buffer::Bytes(data.labels),
                Buffer::Floats(vec![0.0; batch * PIXELS]),
                Buffer::Floats(vec![0.0; batch]),
            ],
            dispatches: vec![(gather_launch(batch, PIXELS, first, len), vec![0, 1, 2, 3, 4])],
            read: vec![3, 4],
            expected,
        };
        cases.push(dispatch_case("gather", format!("{len} examples, batch {batch} at {first}"), EXACT, work));
    }
    cases
}
