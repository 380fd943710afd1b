// Fully connected layers as one strided matrix product, C = A·B (+ bias per
// column), which serves the forward pass and both gradients of y = x·Wᵀ + b
// (weight layout [out, in], as PyTorch) by choosing the strides:
//
//   linear forward          y[n,o]  = Σ_i x[n,i] · W[o,i] + b[o]   A = x,   B = Wᵀ
//   linear backward input   dx[n,i] = Σ_o dy[n,o] · W[o,i]         A = dy,  B = W
//   linear backward weight  dW[o,i] = Σ_n dy[n,o] · x[n,i]         A = dyᵀ, B = x
//
// The Winograd convolutions' batched products (BatchedMatmul) run on the same
// kernels, each product `a_batch_stride` and `b_batch_stride` values further
// on in A and B, rows·cols further in C (matmul_tiled: the grid's z is the product).
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
    has_bias: u32,      // 1: add bias[n] to every row; 2: bias[m] to every column, after the sum
    batch: u32,           // products: product z reads A from z·a_batch_stride,
    a_batch_stride: u32,  // B from z·b_batch_stride, writes C from z·rows·cols
    b_batch_stride: u32,
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

// The tile of C that invocation `index` computes, for tiles of `rows` ×
// `cols`: (product, first row, first column). Tiles are numbered column tile
// fastest, then row tile, then product: neighbouring lanes share a row tile
// (and so A's addresses) wherever a row has more than a few column tiles, and
// a product with few columns (a weight gradient's 64×16) still fills every
// SIMD lane of a software driver.
fn product_tile(index: u32, rows: u32, cols: u32) -> vec3<u32> {
    let col_tiles = (p.cols + cols - 1u) / cols;
    let row_tiles = (p.rows + rows - 1u) / rows;
    return vec3<u32>(index / (col_tiles * row_tiles), ((index / col_tiles) % row_tiles) * rows, (index % col_tiles) * cols);
}

// c[m,n] = Σ_k A[m,k] · B[k,n] (+ bias[n] or bias[m]), one invocation per 8×8 tile
@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let tile = product_tile(flat_index(id, groups), REGISTER_TILE, REGISTER_TILE);
    let z = tile.x;
    if z >= p.batch {
        return;
    }
    let m0 = tile.y;
    let n0 = tile.z;
    let a_batch = z * p.a_batch_stride;
    let b_batch = z * p.b_batch_stride;
    let c_batch = z * p.rows * p.cols;
    // Tile rows and columns past the edge repeat the last one and are not written.
    let left = b_columns(n0);
    let right = b_columns(n0 + 4u);
    let last_row = p.rows - 1u;
    let a0 = min(m0, last_row) * p.a_row_stride;
    let a1 = min(m0 + 1u, last_row) * p.a_row_stride;
    let a2 = min(m0 + 2u, last_row) * p.a_row_stride;
    let a3 = min(m0 + 3u, last_row) * p.a_row_stride;
    let a4 = min(m0 + 4u, last_row) * p.a_row_stride;
    let a5 = min(m0 + 5u, last_row) * p.a_row_stride;
    let a6 = min(m0 + 6u, last_row) * p.a_row_stride;
    let a7 = min(m0 + 7u, last_row) * p.a_row_stride;
    var bias_left = vec4<f32>(0.0);
    var bias_right = vec4<f32>(0.0);
    if p.has_bias == 1u {
        bias_left = b_quad_bias(columns_from(n0));
        bias_right = b_quad_bias(columns_from(n0 + 4u));
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
        let a_k = a_batch + k * p.a_depth_stride;
        let b_k = b_batch + k * p.b_depth_stride;
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
    // Row by row with constant indices: a driver that does not unroll loops
    // (SwiftShader) would write an indexed array of accumulators to memory.
    store_row(c_batch, m0, n0, l0, r0);
    store_row(c_batch, m0 + 1u, n0, l1, r1);
    store_row(c_batch, m0 + 2u, n0, l2, r2);
    store_row(c_batch, m0 + 3u, n0, l3, r3);
    store_row(c_batch, m0 + 4u, n0, l4, r4);
    store_row(c_batch, m0 + 5u, n0, l5, r5);
    store_row(c_batch, m0 + 6u, n0, l6, r6);
    store_row(c_batch, m0 + 7u, n0, l7, r7);
}

// c[m, n0 .. n0+7] = left, right (+ the row's bias), the columns and rows past the edge skipped.
fn store_row(c_batch: u32, m: u32, n0: u32, left: vec4<f32>, right: vec4<f32>) {
    if m >= p.rows {
        return;
    }
    let row = c_batch + m * p.cols;
    let bias_m = row_bias(m);
    store_quad(row, n0, left + bias_m);
    store_quad(row, n0 + 4u, right + bias_m);
}

// bias[m] where the product adds a bias per row (has_bias 2), else 0.
fn row_bias(m: u32) -> f32 {
    if p.has_bias == 2u {
        return bias[m];
    }
    return 0.0;
}

fn store_quad(row: u32, n: u32, v: vec4<f32>) {
    if n + 3u < p.cols {
        c[row + n] = v.x;
        c[row + n + 1u] = v.y;
        c[row + n + 2u] = v.z;
        c[row + n + 3u] = v.w;
        return;
    }
    if n < p.cols {
        c[row + n] = v.x;
    }
    if n + 1u < p.cols {
        c[row + n + 1u] = v.y;
    }
    if n + 2u < p.cols {
        c[row + n + 2u] = v.z;
    }
}

// The same product on 32×16 tiles, for llvmpipe (`Tiling::WideRegisters`,
// products that fill a tile): it loads a storage value lane by lane, at a
// cost far above the multiply-adds, and a 32×16 tile needs 48 loads for 512
// of them where an 8×8 tile needs 16 for 64. (SwiftShader runs it slower.) The tile is
// 8 × 4 blocks of 4×4, block (i, j) in t_ij, its row r in t_ij[r]. The
// workgroup is small so that a product of few tiles (fc1's 32) still spreads
// over the driver's threads, which take a workgroup each.
const WIDE_ROWS: u32 = 32u;
const WIDE_COLS: u32 = 16u;
const WIDE_WORKGROUP: u32 = 16u;

@compute @workgroup_size(16)
fn matmul_wide(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let tile = product_tile(id.x + id.y * groups.x * WIDE_WORKGROUP, WIDE_ROWS, WIDE_COLS);
    let z = tile.x;
    if z >= p.batch {
        return;
    }
    let m0 = tile.y;
    let n0 = tile.z;
    let a_batch = z * p.a_batch_stride;
    let b_batch = z * p.b_batch_stride;
    // Rows and columns past the edge repeat the last one and are not written.
    let b0 = b_columns(n0); let b1 = b_columns(n0 + 4u); let b2 = b_columns(n0 + 8u); let b3 = b_columns(n0 + 12u);
    let a0 = a_rows(m0); let a1 = a_rows(m0 + 4u); let a2 = a_rows(m0 + 8u); let a3 = a_rows(m0 + 12u);
    let a4 = a_rows(m0 + 16u); let a5 = a_rows(m0 + 20u); let a6 = a_rows(m0 + 24u); let a7 = a_rows(m0 + 28u);
    var t00 = mat4x4<f32>(); var t01 = mat4x4<f32>(); var t02 = mat4x4<f32>(); var t03 = mat4x4<f32>();
    var t10 = mat4x4<f32>(); var t11 = mat4x4<f32>(); var t12 = mat4x4<f32>(); var t13 = mat4x4<f32>();
    var t20 = mat4x4<f32>(); var t21 = mat4x4<f32>(); var t22 = mat4x4<f32>(); var t23 = mat4x4<f32>();
    var t30 = mat4x4<f32>(); var t31 = mat4x4<f32>(); var t32 = mat4x4<f32>(); var t33 = mat4x4<f32>();
    var t40 = mat4x4<f32>(); var t41 = mat4x4<f32>(); var t42 = mat4x4<f32>(); var t43 = mat4x4<f32>();
    var t50 = mat4x4<f32>(); var t51 = mat4x4<f32>(); var t52 = mat4x4<f32>(); var t53 = mat4x4<f32>();
    var t60 = mat4x4<f32>(); var t61 = mat4x4<f32>(); var t62 = mat4x4<f32>(); var t63 = mat4x4<f32>();
    var t70 = mat4x4<f32>(); var t71 = mat4x4<f32>(); var t72 = mat4x4<f32>(); var t73 = mat4x4<f32>();
    for (var k = 0u; k < p.depth; k++) {
        let a_k = a_batch + k * p.a_depth_stride;
        let b_k = b_batch + k * p.b_depth_stride;
        let v0 = b_quad(b_k, b0); let v1 = b_quad(b_k, b1); let v2 = b_quad(b_k, b2); let v3 = b_quad(b_k, b3);
        let u0 = a_quad(a_k, a0); let u1 = a_quad(a_k, a1); let u2 = a_quad(a_k, a2); let u3 = a_quad(a_k, a3);
        let u4 = a_quad(a_k, a4); let u5 = a_quad(a_k, a5); let u6 = a_quad(a_k, a6); let u7 = a_quad(a_k, a7);
        t00 += outer(u0, v0); t01 += outer(u0, v1); t02 += outer(u0, v2); t03 += outer(u0, v3);
        t10 += outer(u1, v0); t11 += outer(u1, v1); t12 += outer(u1, v2); t13 += outer(u1, v3);
        t20 += outer(u2, v0); t21 += outer(u2, v1); t22 += outer(u2, v2); t23 += outer(u2, v3);
        t30 += outer(u3, v0); t31 += outer(u3, v1); t32 += outer(u3, v2); t33 += outer(u3, v3);
        t40 += outer(u4, v0); t41 += outer(u4, v1); t42 += outer(u4, v2); t43 += outer(u4, v3);
        t50 += outer(u5, v0); t51 += outer(u5, v1); t52 += outer(u5, v2); t53 += outer(u5, v3);
        t60 += outer(u6, v0); t61 += outer(u6, v1); t62 += outer(u6, v2); t63 += outer(u6, v3);
        t70 += outer(u7, v0); t71 += outer(u7, v1); t72 += outer(u7, v2); t73 += outer(u7, v3);
    }
    let c_batch = z * p.rows * p.cols;
    store_block(c_batch, m0, n0, t00); store_block(c_batch, m0, n0 + 4u, t01);
    store_block(c_batch, m0, n0 + 8u, t02); store_block(c_batch, m0, n0 + 12u, t03);
    store_block(c_batch, m0 + 4u, n0, t10); store_block(c_batch, m0 + 4u, n0 + 4u, t11);
    store_block(c_batch, m0 + 4u, n0 + 8u, t12); store_block(c_batch, m0 + 4u, n0 + 12u, t13);
    store_block(c_batch, m0 + 8u, n0, t20); store_block(c_batch, m0 + 8u, n0 + 4u, t21);
    store_block(c_batch, m0 + 8u, n0 + 8u, t22); store_block(c_batch, m0 + 8u, n0 + 12u, t23);
    store_block(c_batch, m0 + 12u, n0, t30); store_block(c_batch, m0 + 12u, n0 + 4u, t31);
    store_block(c_batch, m0 + 12u, n0 + 8u, t32); store_block(c_batch, m0 + 12u, n0 + 12u, t33);
    store_block(c_batch, m0 + 16u, n0, t40); store_block(c_batch, m0 + 16u, n0 + 4u, t41);
    store_block(c_batch, m0 + 16u, n0 + 8u, t42); store_block(c_batch, m0 + 16u, n0 + 12u, t43);
    store_block(c_batch, m0 + 20u, n0, t50); store_block(c_batch, m0 + 20u, n0 + 4u, t51);
    store_block(c_batch, m0 + 20u, n0 + 8u, t52); store_block(c_batch, m0 + 20u, n0 + 12u, t53);
    store_block(c_batch, m0 + 24u, n0, t60); store_block(c_batch, m0 + 24u, n0 + 4u, t61);
    store_block(c_batch, m0 + 24u, n0 + 8u, t62); store_block(c_batch, m0 + 24u, n0 + 12u, t63);
    store_block(c_batch, m0 + 28u, n0, t70); store_block(c_batch, m0 + 28u, n0 + 4u, t71);
    store_block(c_batch, m0 + 28u, n0 + 8u, t72); store_block(c_batch, m0 + 28u, n0 + 12u, t73);
}

// Columns n .. n+3, past the last column repeating it.
fn columns_from(n: u32) -> vec4<u32> {
    return min(vec4<u32>(n) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.cols - 1u));
}

// B's column offsets n .. n+3, past the last column repeating it.
fn b_columns(n: u32) -> vec4<u32> {
    return columns_from(n) * p.b_col_stride;
}

// A's row offsets m .. m+3, past the last row repeating it.
fn a_rows(m: u32) -> vec4<u32> {
    return min(vec4<u32>(m) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.rows - 1u)) * p.a_row_stride;
}

// A[m .. m+3, k] at the row offsets in `rows`.
fn a_quad(a_k: u32, rows: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(a[a_k + rows.x], a[a_k + rows.y], a[a_k + rows.z], a[a_k + rows.w]);
}

// The 4×4 block a·bᵀ: its row r is a[r]·b.
fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(a.x * b, a.y * b, a.z * b, a.w * b);
}

// c[m .. m+3, n .. n+3] = block (+ bias), the rows and columns past the edge skipped.
fn store_block(c_batch: u32, m: u32, n: u32, block: mat4x4<f32>) {
    var bias_quad = vec4<f32>(0.0);
    if p.has_bias == 1u {
        bias_quad = b_quad_bias(columns_from(n));
    }
    for (var r = 0u; r < 4u; r++) {
        if m + r < p.rows {
            store_quad(c_batch + (m + r) * p.cols, n, block[r] + bias_quad + row_bias(m + r));
        }
    }
}

// bias[n] at the four columns in `cols`.
fn b_quad_bias(cols: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);
}

fn a_value(batch: u32, m: u32, k: u32) -> f32 {
    if m >= p.rows || k >= p.depth {
        return 0.0;
    }
    return a[batch * p.a_batch_stride + m * p.a_row_stride + k * p.a_depth_stride];
}

fn b_value(batch: u32, k: u32, n: u32) -> f32 {
    if k >= p.depth || n >= p.cols {
        return 0.0;
    }
    return b[batch * p.b_batch_stride + k * p.b_depth_stride + n * p.b_col_stride];
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
            a_tile[e] = a_value(group.z, m0 + e % BLOCK, k);
            b_tile[e] = b_value(group.z, k, n0 + e % BLOCK);
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
                c[(group.z * p.rows + m) * p.cols + n] = value + row_bias(m);
            }
        }
    }
}
