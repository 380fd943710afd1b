// Element-wise ops over flat f32 arrays: relu forward/backward, add, accumulate.

struct ElementwiseParams {
    count: u32,
    relu: u32,   // add: 1 applies a ReLU to the sum
}

@group(0) @binding(0) var<uniform> p: ElementwiseParams;

// relu_forward: x -> y;  add: a, b -> sum;  relu_backward: x, dy -> dx
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> unary_out: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> binary_out: array<f32>;

// accumulate: x, acc -> acc (in place)
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;

// Every kernel here handles ELEMENTS elements per invocation, a whole
// dispatch apart (so neighbouring lanes still touch neighbouring values):
// with one each, a software driver (SwiftShader, llvmpipe) spends more on
// each invocation's bookkeeping than on its work.
const ELEMENTS: u32 = 4u;

// y = max(x, 0)
fn relu_forward_at(index: u32) {
    unary_out[index] = max(a[index], 0.0);
}

@compute @workgroup_size(64)
fn relu_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let first = flat_index(id, groups);
    let stride = dispatched(groups);
    if first + 3u * stride < p.count {
        relu_forward_at(first);
        relu_forward_at(first + stride);
        relu_forward_at(first + 2u * stride);
        relu_forward_at(first + 3u * stride);
        return;
    }
    for (var index = first; index < p.count; index += stride) {
        relu_forward_at(index);
    }
}

// dx = dy · [x > 0] (x the ReLU's input or output: both are positive at the same places)
fn relu_backward_at(index: u32) {
    binary_out[index] = select(0.0, b[index], a[index] > 0.0);
}

@compute @workgroup_size(64)
fn relu_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let first = flat_index(id, groups);
    let stride = dispatched(groups);
    if first + 3u * stride < p.count {
        relu_backward_at(first);
        relu_backward_at(first + stride);
        relu_backward_at(first + 2u * stride);
        relu_backward_at(first + 3u * stride);
        return;
    }
    for (var index = first; index < p.count; index += stride) {
        relu_backward_at(index);
    }
}

// sum = a + b
fn add_at(index: u32) {
    binary_out[index] = relu_if(a[index] + b[index], p.relu);
}

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let first = flat_index(id, groups);
    let stride = dispatched(groups);
    if first + 3u * stride < p.count {
        add_at(first);
        add_at(first + stride);
        add_at(first + 2u * stride);
        add_at(first + 3u * stride);
        return;
    }
    for (var index = first; index < p.count; index += stride) {
        add_at(index);
    }
}

// acc += x
fn accumulate_at(index: u32) {
    acc[index] += a[index];
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let first = flat_index(id, groups);
    let stride = dispatched(groups);
    if first + 3u * stride < p.count {
        accumulate_at(first);
        accumulate_at(first + stride);
        accumulate_at(first + 2u * stride);
        accumulate_at(first + 3u * stride);
        return;
    }
    for (var index = first; index < p.count; index += stride) {
        accumulate_at(index);
    }
}
