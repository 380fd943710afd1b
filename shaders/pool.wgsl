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

// The 2×2 window starting at `origin`: (0,0), (0,1), (1,0), (1,1).
fn window_values(origin: u32) -> vec4<f32> {
    return vec4<f32>(x[origin], x[origin + 1u], x[origin + p.in_width], x[origin + p.in_width + 1u]);
}

// Which of the window's four values is the largest (the first on ties).
// Compares and selects only: an indexed local array costs a software driver
// a trip through memory per lane.
fn argmax4(v: vec4<f32>) -> u32 {
    var best = 0u;
    var top = v.x;
    if v.y > top {
        best = 1u;
        top = v.y;
    }
    if v.z > top {
        best = 2u;
        top = v.z;
    }
    if v.w > top {
        best = 3u;
    }
    return best;
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
    let v = window_values(output_window(index));
    let best = argmax4(v);
    let top = select(select(select(v.x, v.y, best == 1u), v.z, best == 2u), v.w, best == 3u);
    y[index] = relu_if(top, p.relu);
}

// dx[r,s] = dy[r/2, s/2] if (r,s) is its window's argmax (first on ties), else 0;
// one invocation per 2×2 block of dx, which it writes whole (zeros in a
// dropped odd row or column)
@compute @workgroup_size(64)
fn max_pool2_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    let blocks_h = (p.in_height + 1u) / 2u;
    let blocks_w = (p.in_width + 1u) / 2u;
    if index >= p.planes * blocks_h * blocks_w {
        return;
    }
    let j = index % blocks_w;
    let i = (index / blocks_w) % blocks_h;
    let plane = index / (blocks_w * blocks_h);
    let origin = window_origin(plane, i, j);
    var grads = vec4<f32>(0.0);
    if i < p.out_height && j < p.out_width {
        let best = argmax4(window_values(origin));
        let g = dy[(plane * p.out_height + i) * p.out_width + j];
        grads = select(vec4<f32>(0.0), vec4<f32>(g), vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(best));
    }
    // The block's elements inside dx (an odd last row or column has one).
    let has_right = 2u * j + 1u < p.in_width;
    let has_below = 2u * i + 1u < p.in_height;
    dx[origin] = grads.x;
    if has_right {
        dx[origin + 1u] = grads.y;
    }
    if has_below {
        dx[origin + p.in_width] = grads.z;
        if has_right {
            dx[origin + p.in_width + 1u] = grads.w;
        }
    }
}
