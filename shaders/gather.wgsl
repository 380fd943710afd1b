// A training batch gathered from a dataset kept on the GPU as bytes, so no
// image crosses the bus during training: the host writes each epoch's order
// once and, per step, only where in that order the batch starts.

struct GatherParams {
    batch: u32,    // rows of the batch
    pixels: u32,   // bytes per example
    first: u32,    // position in `order` of the batch's first row
    count: u32,    // entries in `order`; rows past its end are padding
}

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> order: array<u32>;
// Bytes packed four to a word, least significant first (as the host's memory).
@group(0) @binding(2) var<storage, read> images: array<u32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> batch_images: array<f32>;
@group(0) @binding(5) var<storage, read_write> batch_labels: array<f32>;

fn byte_at(index: u32, word: u32) -> u32 {
    return (word >> (8u * (index % 4u))) & 0xffu;
}

// batch_images[row, i] = images[order[first + row], i] / 255 and batch_labels[row] = its label;
// padding rows get zeros and label −1 (ignored by the loss and the metrics)
@compute @workgroup_size(64)
fn gather_batch(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.batch * p.pixels {
        return;
    }
    let row = index / p.pixels;
    let pixel = index % p.pixels;
    let position = p.first + row;
    if position >= p.count {
        batch_images[index] = 0.0;
        if pixel == 0u {
            batch_labels[row] = -1.0;
        }
        return;
    }
    let example = order[position];
    let byte = example * p.pixels + pixel;
    batch_images[index] = f32(byte_at(byte, images[byte / 4u])) / 255.0;
    if pixel == 0u {
        batch_labels[row] = f32(byte_at(example, labels[example / 4u]));
    }
}
