// 2×2 pooling with stride 2 over NCHW planes: average and max, forward and backward.
// Output size is floor(input / 2) as in PyTorch; an odd last row or column is dropped.

struct PoolParams {
    planes: u32,      // batch · channels
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    relu: u32,        // forward: 1 applies a ReLU to the output
}

@group(0) @binding(0) var<uniform> p: PoolParams;

// forward: x -> y;  avg_pool2_backward: dy -> dx
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy_only: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx_from_dy: array<f32>;

// max_pool2_backward: x, dy -> dx
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// Index of the first element of window (plane, i, j) in the input.
fn window_origin(plane: u32, i: u32, j: u32) -> u32 {
    return (plane * p.in_height + 2u * i) * p.in_width + 2u * j;
}

// The first input element of the window that output element `index` reduces.
fn output_window(index: u32) -> u32 {
    let j = index % p.out_width;
    let i = (index / p.out_width) % p.out_height;
    return window_origin(index / (p.out_width * p.out_height), i, j);
}

// (plane, i, j): the output element whose 2×2 window holds input element
// `index` (i or j past the output's end in a row or column the pool drops).
fn covering_window(index: u32) -> vec3<u32> {
    let s = index % p.in_width;
    let r = (index / p.in_width) % p.in_height;
    return vec3<u32>(index / (p.in_width * p.in_height), r / 2u, s / 2u);
}

// Offset of the largest element of the window starting at `origin` (first one on ties).
fn window_argmax(origin: u32) -> u32 {
    let offsets = array<u32, 4>(0u, 1u, p.in_width, p.in_width + 1u);
    var best = 0u;
    for (var k = 1u; k < 4u; k++) {
        if x[origin + offsets[k]] > x[origin + offsets[best]] {
            best = k;
        }
    }
    return offsets[best];
}

// y[i,j] = mean of x over the 2×2 block at (2i, 2j)
@compute @workgroup_size(64)
fn avg_pool2_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.planes * p.out_height * p.out_width {
        return;
    }
    let origin = output_window(index);
    y[index] = relu_if(0.25 * (x[origin] + x[origin + 1u] + x[origin + p.in_width] + x[origin + p.in_width + 1u]), p.relu);
}

// dx[r,s] = dy[r/2, s/2] / 4 (zero in a dropped odd row or column)
@compute @workgroup_size(64)
fn avg_pool2_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.planes * p.in_height * p.in_width {
        return;
    }
    let w = covering_window(index);
    if w.y >= p.out_height || w.z >= p.out_width {
        dx_from_dy[index] = 0.0;
        return;
    }
    dx_from_dy[index] = 0.25 * dy_only[(w.x * p.out_height + w.y) * p.out_width + w.z];
}

// y[i,j] = max of x over the 2×2 block at (2i, 2j)
@compute @workgroup_size(64)
fn max_pool2_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.planes * p.out_height * p.out_width {
        return;
    }
    let origin = output_window(index);
    y[index] = relu_if(x[origin + window_argmax(origin)], p.relu);
}

// dx[r,s] = dy[r/2, s/2] if (r,s) is its window's argmax (first on ties), else 0
@compute @workgroup_size(64)
fn max_pool2_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.planes * p.in_height * p.in_width {
        return;
    }
    let w = covering_window(index);
    var grad = 0.0;
    if w.y < p.out_height && w.z < p.out_width {
        let origin = window_origin(w.x, w.y, w.z);
        if origin + window_argmax(origin) == index {
            grad = dy[(w.x * p.out_height + w.y) * p.out_width + w.z];
        }
    }
    dx[index] = grad;
}
