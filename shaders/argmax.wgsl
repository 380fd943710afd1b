// Row-wise argmax (first index on ties), written as f32 class indices: predictions for accuracy.

struct ArgmaxParams {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<uniform> p: ArgmaxParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> indices: array<f32>;

// indices[n] = argmax_k x[n,k]
@compute @workgroup_size(64)
fn argmax_rows(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat_index(id, groups);
    if n >= p.rows {
        return;
    }
    var best = 0u;
    for (var k = 1u; k < p.cols; k++) {
        if x[n * p.cols + k] > x[n * p.cols + best] {
            best = k;
        }
    }
    indices[n] = f32(best);
}
