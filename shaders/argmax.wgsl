// Row-wise argmax (first index on ties) as f32 class indices, and the running
// metrics of training and evaluation (loss sum, correct count, sample count).

struct ArgmaxParams {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<uniform> p: ArgmaxParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> indices: array<f32>;

// batch_metrics: logits, labels, loss -> metrics (accumulated in place)
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

var<workgroup> correct_counts: array<u32, WORKGROUP_SIZE>;
var<workgroup> labelled_counts: array<u32, WORKGROUP_SIZE>;

fn row_argmax(n: u32) -> u32 {
    var best = 0u;
    for (var k = 1u; k < p.cols; k++) {
        if x[n * p.cols + k] > x[n * p.cols + best] {
            best = k;
        }
    }
    return best;
}

// indices[n] = argmax_k x[n,k]
@compute @workgroup_size(64)
fn argmax_rows(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat_index(id, groups);
    if n >= p.rows {
        return;
    }
    indices[n] = f32(row_argmax(n));
}

// metrics += (loss · labelled rows, rows whose argmax is the label, labelled rows);
// padding rows (negative label) are skipped. Launched as exactly one workgroup.
@compute @workgroup_size(64)
fn batch_metrics(@builtin(local_invocation_index) lane: u32) {
    var correct = 0u;
    var labelled = 0u;
    for (var n = lane; n < p.rows; n += WORKGROUP_SIZE) {
        if labels[n] >= 0.0 {
            labelled += 1u;
            correct += select(0u, 1u, row_argmax(n) == u32(labels[n]));
        }
    }
    correct_counts[lane] = correct;
    labelled_counts[lane] = labelled;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            correct_counts[lane] += correct_counts[lane + stride];
            labelled_counts[lane] += labelled_counts[lane + stride];
        }
        workgroupBarrier();
    }
    if lane == 0u {
        metrics[0] += loss[0] * f32(labelled_counts[0]);
        metrics[1] += f32(correct_counts[0]);
        metrics[2] += f32(labelled_counts[0]);
    }
}
