// Fully connected layer y = x·Wᵀ + b with PyTorch's weight layout [out, in].

struct LinearParams {
    batch: u32,
    in_features: u32,
    out_features: u32,
}

@group(0) @binding(0) var<uniform> p: LinearParams;

// linear_forward: x, weight, bias -> y
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// linear_backward_input: dy, weight -> dx
// linear_backward_weight: dy, x -> dw
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x_for_weight_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// y[n,o] = bias[o] + Σ_i x[n,i] · weight[o,i]
@compute @workgroup_size(64)
fn linear_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.batch * p.out_features {
        return;
    }
    let o = index % p.out_features;
    let n = index / p.out_features;
    var sum = bias[o];
    for (var i = 0u; i < p.in_features; i++) {
        sum += x[n * p.in_features + i] * weight[o * p.in_features + i];
    }
    y[index] = sum;
}

// dx[n,i] = Σ_o dy[n,o] · weight[o,i]
@compute @workgroup_size(64)
fn linear_backward_input(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.batch * p.in_features {
        return;
    }
    let i = index % p.in_features;
    let n = index / p.in_features;
    var sum = 0.0;
    for (var o = 0u; o < p.out_features; o++) {
        sum += dy[n * p.out_features + o] * weight[o * p.in_features + i];
    }
    dx[index] = sum;
}

// dw[o,i] = Σ_n dy[n,o] · x[n,i]
@compute @workgroup_size(64)
fn linear_backward_weight(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.out_features * p.in_features {
        return;
    }
    let i = index % p.in_features;
    let o = index / p.in_features;
    var sum = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        sum += dy[n * p.out_features + o] * x_for_weight_grad[n * p.in_features + i];
    }
    dw[index] = sum;
}
