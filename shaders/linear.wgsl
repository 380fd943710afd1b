// Fully connected layers as one strided matrix product, C = A·B (+ bias per
// column), which serves the forward pass and both gradients of y = x·Wᵀ + b
// (weight layout [out, in], as PyTorch) by choosing the strides:
//
//   linear forward          y[n,o]  = Σ_i x[n,i] · W[o,i] + b[o]   A = x,   B = Wᵀ
//   linear backward input   dx[n,i] = Σ_o dy[n,o] · W[o,i]         A = dy,  B = W
//   linear backward weight  dW[o,i] = Σ_n dy[n,o] · x[n,i]         A = dyᵀ, B = x
//
// Register-blocked: one invocation computes a 4×4 tile of C, so each loaded
// value feeds four multiply-adds; no workgroup memory, no barriers.

struct MatmulParams {
    rows: u32,          // M
    cols: u32,          // N
    depth: u32,         // K
    a_row_stride: u32,  // A[m,k] = a[m·a_row_stride + k·a_depth_stride]
    a_depth_stride: u32,
    b_depth_stride: u32,  // B[k,n] = b[k·b_depth_stride + n·b_col_stride]
    b_col_stride: u32,
    has_bias: u32,      // 1: add bias[n] to every row
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 4u;

// c[m,n] = Σ_k A[m,k] · B[k,n] (+ bias[n]), one invocation per 4×4 tile
@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    // The grid is (column tiles, row tiles): the row tile is uniform per
    // workgroup, so A's addresses are too and a software driver loads each
    // A value once for all lanes.
    if id.x * TILE >= p.cols {
        return;
    }
    let n0 = id.x * TILE;
    let m0 = group.y * TILE;
    // Tile rows and columns past the edge repeat the last one and are not written.
    var a_base: array<u32, 4>;
    var b_base: array<u32, 4>;
    for (var t = 0u; t < TILE; t++) {
        a_base[t] = min(m0 + t, p.rows - 1u) * p.a_row_stride;
        b_base[t] = min(n0 + t, p.cols - 1u) * p.b_col_stride;
    }
    var row_bias = vec4<f32>(0.0);
    if p.has_bias == 1u {
        for (var t = 0u; t < TILE; t++) {
            row_bias[t] = bias[min(n0 + t, p.cols - 1u)];
        }
    }
    var acc0 = row_bias;
    var acc1 = row_bias;
    var acc2 = row_bias;
    var acc3 = row_bias;
    for (var k = 0u; k < p.depth; k++) {
        let a_k = k * p.a_depth_stride;
        let b_k = k * p.b_depth_stride;
        let bk = vec4<f32>(b[b_k + b_base[0]], b[b_k + b_base[1]], b[b_k + b_base[2]], b[b_k + b_base[3]]);
        acc0 += a[a_k + a_base[0]] * bk;
        acc1 += a[a_k + a_base[1]] * bk;
        acc2 += a[a_k + a_base[2]] * bk;
        acc3 += a[a_k + a_base[3]] * bk;
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var t = 0u; t < TILE; t++) {
        for (var s = 0u; s < TILE; s++) {
            if m0 + t < p.rows && n0 + s < p.cols {
                c[(m0 + t) * p.cols + n0 + s] = acc[t][s];
            }
        }
    }
}

fn a_value(m: u32, k: u32) -> f32 {
    if m >= p.rows || k >= p.depth {
        return 0.0;
    }
    return a[m * p.a_row_stride + k * p.a_depth_stride];
}

fn b_value(k: u32, n: u32) -> f32 {
    if k >= p.depth || n >= p.cols {
        return 0.0;
    }
    return b[k * p.b_depth_stride + n * p.b_col_stride];
}

// The same product, workgroup-tiled (hardware GPUs): one workgroup per 32×32 tile of c
@compute @workgroup_size(64)
fn matmul_tiled(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) group: vec3<u32>) {
    let m0 = group.y * BLOCK;
    let n0 = group.x * BLOCK;
    let origin = sub_tile_origin(lane);
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < p.depth; k0 += DEPTH_STEP) {
        for (var e = lane; e < BLOCK * DEPTH_STEP; e += WORKGROUP_SIZE) {
            let k = k0 + e / BLOCK;
            a_tile[e] = a_value(m0 + e % BLOCK, k);
            b_tile[e] = b_value(k, n0 + e % BLOCK);
        }
        workgroupBarrier();
        multiply_staged_tiles(&acc, origin);
        workgroupBarrier();
    }
    for (var r = 0u; r < TILE; r++) {
        let m = m0 + origin.x + r;
        for (var s = 0u; s < TILE; s++) {
            let n = n0 + origin.y + s;
            if m < p.rows && n < p.cols {
                var value = acc[r][s];
                if p.has_bias == 1u {
                    value += bias[n];
                }
                c[m * p.cols + n] = value;
            }
        }
    }
}
