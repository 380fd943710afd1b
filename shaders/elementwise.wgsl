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

// y = max(x, 0)
@compute @workgroup_size(64)
fn relu_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index < p.count {
        unary_out[index] = max(a[index], 0.0);
    }
}

// dx = dy · [x > 0] (x the ReLU's input or output: both are positive at the same places)
@compute @workgroup_size(64)
fn relu_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index < p.count {
        binary_out[index] = select(0.0, b[index], a[index] > 0.0);
    }
}

// sum = a + b
@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index < p.count {
        binary_out[index] = relu_if(a[index] + b[index], p.relu);
    }
}

// acc += x
@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index < p.count {
        acc[index] += a[index];
    }
}
