// Fully connected layers as one strided matrix product, C = A·B (+ bias per
// column), which serves the forward pass and both gradients of y = x·Wᵀ + b
// (weight layout [out, in], as PyTorch) by choosing the strides:
//
//   linear forward          y[n,o]  = Σ_i x[n,i] · W[o,i] + b[o]   A = x,   B = Wᵀ
//   linear backward input   dx[n,i] = Σ_o dy[n,o] · W[o,i]         A = dy,  B = W
//   linear backward weight  dW[o,i] = Σ_n dy[n,o] · x[n,i]         A = dyᵀ, B = x
//
// Register-blocked: one invocation computes an 8×8 tile of C, so each loaded
// value feeds eight multiply-adds; no workgroup memory, no barriers. (A
// software driver loads every value lane by lane: loads, not arithmetic,
// bound it there.)
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

// matmul's tile side; matmul_tiled's sub-tile is TILE × TILE.
const TILE: u32 = 4u;
const REGISTER_TILE: u32 = 8u;

// B[k, n0 .. n0+3] at the column offsets in `cols`.
fn b_quad(b_k: u32, cols: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(b[b_k + cols.x], b[b_k + cols.y], b[b_k + cols.z], b[b_k + cols.w]);
}

// c[m,n] = Σ_k A[m,k] · B[k,n] (+ bias[n]), one invocation per 8×8 tile
@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    // The grid is (column tiles, row tiles): the row tile is uniform per
    // workgroup, and so are A's addresses.
    if id.x * REGISTER_TILE >= p.cols {
        return;
    }
    let n0 = id.x * REGISTER_TILE;
    let m0 = group.y * REGISTER_TILE;
    // Tile rows and columns past the edge repeat the last one and are not written.
    let last_col = vec4<u32>(p.cols - 1u);
    let left = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), last_col) * p.b_col_stride;
    let right = min(vec4<u32>(n0) + vec4<u32>(4u, 5u, 6u, 7u), last_col) * p.b_col_stride;
    var a_base: array<u32, 8>;
    for (var t = 0u; t < REGISTER_TILE; t++) {
        a_base[t] = min(m0 + t, p.rows - 1u) * p.a_row_stride;
    }
    let a0 = a_base[0];
    let a1 = a_base[1];
    let a2 = a_base[2];
    let a3 = a_base[3];
    let a4 = a_base[4];
    let a5 = a_base[5];
    let a6 = a_base[6];
    let a7 = a_base[7];
    var bias_left = vec4<f32>(0.0);
    var bias_right = vec4<f32>(0.0);
    if p.has_bias == 1u {
        bias_left = b_quad_bias(min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), last_col));
        bias_right = b_quad_bias(min(vec4<u32>(n0) + vec4<u32>(4u, 5u, 6u, 7u), last_col));
    }
    // Named accumulators (an 8-row array would live in memory on llvmpipe).
    var l0 = bias_left;
    var l1 = bias_left;
    var l2 = bias_left;
    var l3 = bias_left;
    var l4 = bias_left;
    var l5 = bias_left;
    var l6 = bias_left;
    var l7 = bias_left;
    var r0 = bias_right;
    var r1 = bias_right;
    var r2 = bias_right;
    var r3 = bias_right;
    var r4 = bias_right;
    var r5 = bias_right;
    var r6 = bias_right;
    var r7 = bias_right;
    for (var k = 0u; k < p.depth; k++) {
        let a_k = k * p.a_depth_stride;
        let b_k = k * p.b_depth_stride;
        let bl = b_quad(b_k, left);
        let br = b_quad(b_k, right);
        let v0 = a[a_k + a0];
        let v1 = a[a_k + a1];
        let v2 = a[a_k + a2];
        let v3 = a[a_k + a3];
        let v4 = a[a_k + a4];
        let v5 = a[a_k + a5];
        let v6 = a[a_k + a6];
        let v7 = a[a_k + a7];
        l0 += v0 * bl;
        r0 += v0 * br;
        l1 += v1 * bl;
        r1 += v1 * br;
        l2 += v2 * bl;
        r2 += v2 * br;
        l3 += v3 * bl;
        r3 += v3 * br;
        l4 += v4 * bl;
        r4 += v4 * br;
        l5 += v5 * bl;
        r5 += v5 * br;
        l6 += v6 * bl;
        r6 += v6 * br;
        l7 += v7 * bl;
        r7 += v7 * br;
    }
    let lefts = array<vec4<f32>, 8>(l0, l1, l2, l3, l4, l5, l6, l7);
    let rights = array<vec4<f32>, 8>(r0, r1, r2, r3, r4, r5, r6, r7);
    for (var t = 0u; t < REGISTER_TILE; t++) {
        if m0 + t >= p.rows {
            break;
        }
        let row = (m0 + t) * p.cols;
        for (var s = 0u; s < 4u; s++) {
            if n0 + s < p.cols {
                c[row + n0 + s] = lefts[t][s];
            }
            if n0 + 4u + s < p.cols {
                c[row + n0 + 4u + s] = rights[t][s];
            }
        }
    }
}

// bias[n] at the four columns in `cols`.
fn b_quad_bias(cols: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);
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
