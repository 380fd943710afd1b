// Nearest-neighbour ×2 upsampling over NCHW planes, forward and backward.

struct UpsampleParams {
    planes: u32,      // batch · channels
    in_height: u32,   // of the small (not upsampled) tensor
    in_width: u32,
    relu: u32,        // add_upsampled2: 1 applies a ReLU to the sum
}

@group(0) @binding(0) var<uniform> p: UpsampleParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// Elements of the upsampled (2h × 2w) tensor.
fn upsampled_count() -> u32 {
    return p.planes * 4u * p.in_height * p.in_width;
}

// The index in the small tensor of the value at `index` of the upsampled one: (r, s) comes from (r/2, s/2).
fn nearest_source(index: u32) -> u32 {
    let out_width = 2u * p.in_width;
    let s = index % out_width;
    let r = (index / out_width) % (2u * p.in_height);
    let plane = index / (out_width * 2u * p.in_height);
    return (plane * p.in_height + r / 2u) * p.in_width + s / 2u;
}

// y[r,s] = x[r/2, s/2]   (src = x, dst = y of size 2h × 2w)
@compute @workgroup_size(64)
fn upsample2_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index < upsampled_count() {
        dst[index] = src[nearest_source(index)];
    }
}

// dx[i,j] = Σ of dy over the 2×2 block at (2i, 2j)   (src = dy, dst = dx)
@compute @workgroup_size(64)
fn upsample2_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.planes * p.in_height * p.in_width {
        return;
    }
    let j = index % p.in_width;
    let i = (index / p.in_width) % p.in_height;
    let plane = index / (p.in_width * p.in_height);
    let out_width = 2u * p.in_width;
    let origin = (plane * 2u * p.in_height + 2u * i) * out_width + 2u * j;
    dst[index] = src[origin] + src[origin + 1u] + src[origin + out_width] + src[origin + out_width + 1u];
}

// add_upsampled2: high, low -> sum (the octave conv's L→H path added to its H output)
@group(0) @binding(1) var<storage, read> high: array<f32>;
@group(0) @binding(2) var<storage, read> low: array<f32>;
@group(0) @binding(3) var<storage, read_write> sum: array<f32>;

// sum[r,s] = high[r,s] + low[r/2, s/2], without the upsampled copy of low;
// one invocation per low value, which writes the 2×2 block it feeds: a
// quarter of the invocations and index arithmetic of one per element.
@compute @workgroup_size(64)
fn add_upsampled2(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.planes * p.in_height * p.in_width {
        return;
    }
    let j = index % p.in_width;
    let row = index / p.in_width; // plane · in_height + i
    let out_width = 2u * p.in_width;
    let top = 2u * row * out_width + 2u * j;
    let bottom = top + out_width;
    let value = low[index];
    sum[top] = relu_if(high[top] + value, p.relu);
    sum[top + 1u] = relu_if(high[top + 1u] + value, p.relu);
    sum[bottom] = relu_if(high[bottom] + value, p.relu);
    sum[bottom + 1u] = relu_if(high[bottom + 1u] + value, p.relu);
}
