// Softmax cross-entropy averaged over the batch. Labels are class indices stored as f32;
// a negative label marks a padding row, which is ignored (PyTorch's ignore_index).

struct CrossEntropyParams {
    batch: u32,
    classes: u32,
}

@group(0) @binding(0) var<uniform> p: CrossEntropyParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;

var<workgroup> partial_sums: array<f32, WORKGROUP_SIZE>;

// log Σ_k exp(z[n,k]), computed stably around the row's maximum.
fn log_sum_exp(n: u32) -> f32 {
    let row = n * p.classes;
    var largest = logits[row];
    for (var k = 1u; k < p.classes; k++) {
        largest = max(largest, logits[row + k]);
    }
    var total = 0.0;
    for (var k = 0u; k < p.classes; k++) {
        total += exp(logits[row + k] - largest);
    }
    return largest + log(total);
}

// Rows with a label (not padding); at least 1 so that an all-padding batch gives 0, not NaN.
fn labelled_rows() -> f32 {
    var count = 0u;
    for (var n = 0u; n < p.batch; n++) {
        count += select(0u, 1u, labels[n] >= 0.0);
    }
    return f32(max(count, 1u));
}

// loss[0] = mean over labelled rows of (log Σ_k exp z[n,k] − z[n,label_n]); launched as exactly one workgroup
@compute @workgroup_size(64)
fn cross_entropy_forward(@builtin(local_invocation_index) lane: u32) {
    var sum = 0.0;
    for (var n = lane; n < p.batch; n += WORKGROUP_SIZE) {
        if labels[n] >= 0.0 {
            sum += log_sum_exp(n) - logits[n * p.classes + u32(labels[n])];
        }
    }
    partial_sums[lane] = sum;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            partial_sums[lane] += partial_sums[lane + stride];
        }
        workgroupBarrier();
    }
    if lane == 0u {
        loss[0] = partial_sums[0] / labelled_rows();
    }
}

// dlogits[n,k] = (softmax(z[n])[k] − [k = label_n]) / labelled rows; 0 for padding rows
@compute @workgroup_size(64)
fn cross_entropy_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat_index(id, groups);
    if n >= p.batch {
        return;
    }
    let row = n * p.classes;
    if labels[n] < 0.0 {
        for (var k = 0u; k < p.classes; k++) {
            dlogits[row + k] = 0.0;
        }
        return;
    }
    let lse = log_sum_exp(n);
    let label = u32(labels[n]);
    let rows = labelled_rows();
    for (var k = 0u; k < p.classes; k++) {
        let onehot = select(0.0, 1.0, k == label);
        dlogits[row + k] = (exp(logits[row + k] - lse) - onehot) / rows;
    }
}
