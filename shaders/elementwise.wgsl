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

// Every kernel here handles four elements per invocation (`element_quad`);
// each `_at` function does one, and skips an index past the end.

// y = max(x, 0)
fn relu_forward_at(index: u32) {
    if index < p.count {
        unary_out[index] = max(a[index], 0.0);
    }
}

@compute @workgroup_size(64)
fn relu_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = element_quad(id, groups);
    relu_forward_at(at.x);
    relu_forward_at(at.y);
    relu_forward_at(at.z);
    relu_forward_at(at.w);
}

// dx = dy · [x > 0] (x the ReLU's input or output: both are positive at the same places)
fn relu_backward_at(index: u32) {
    if index < p.count {
        binary_out[index] = select(0.0, b[index], a[index] > 0.0);
    }
}

@compute @workgroup_size(64)
fn relu_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = element_quad(id, groups);
    relu_backward_at(at.x);
    relu_backward_at(at.y);
    relu_backward_at(at.z);
    relu_backward_at(at.w);
}

// sum = a + b
fn add_at(index: u32) {
    if index < p.count {
        binary_out[index] = relu_if(a[index] + b[index], p.relu);
    }
}

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = element_quad(id, groups);
    add_at(at.x);
    add_at(at.y);
    add_at(at.z);
    add_at(at.w);
}

// acc += x
fn accumulate_at(index: u32) {
    if index < p.count {
        acc[index] += a[index];
    }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let at = element_quad(id, groups);
    accumulate_at(at.x);
    accumulate_at(at.y);
    accumulate_at(at.z);
    accumulate_at(at.w);
}
