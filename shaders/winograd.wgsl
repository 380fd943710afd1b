// Winograd F(2×2, 3×3) convolution (Lavin & Gray 2016) for 3×3 kernels,
// stride 1, padding 1: the output is cut into 2×2 tiles, and tile t of output
// channel o is
//
//   Y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_ct B) ] A
//
// with d_ct the 4×4 input patch around the tile (zero outside the image) and
// g_oc the 3×3 kernel. The sum over input channels is 16 matrix products, one
// per point ξ of the 4×4 transformed tile (BatchedMatmul on linear.wgsl's
// kernel): 16 multiply-adds per tile and channel pair where direct
// convolution spends 36. The kernels here are the transforms and, for the
// backward pass, their transposes:
//
//   winograd_input            x [N,C,H,W]  -> V [16, C, T]   V = Bᵀ d B
//   winograd_input_backward   dV           -> dx             d = B dV Bᵀ, summed over overlapping tiles
//   winograd_weight           w [O,C,3,3]  -> U [16, O, C]   U = G g Gᵀ
//   winograd_weight_backward  dU           -> dw             g = Gᵀ dU G
//   winograd_output           M [16, O, T], bias -> y        Y = Aᵀ M A + bias
//   winograd_output_backward  dy           -> dM [16, O, T]  M = A dY Aᵀ
//
// T = N · tiles_high · tiles_wide tiles, t = (n · tiles_high + ty) · tiles_wide + tx;
// tile (ty, tx) covers output rows 2ty, 2ty+1 and columns 2tx, 2tx+1, and
// reads input rows 2ty−1 .. 2ty+2. A 4×4 tile is a mat4x4 whose column i
// holds row i, indexed by constants only (SwiftShader writes a dynamically
// indexed vector through memory).

struct WinogradParams {
    batch: u32,
    // Channels of the map transformed (x, y, dx or dy); the input channels of
    // the weight transforms.
    channels: u32,
    height: u32,
    width: u32,
    tiles_high: u32,
    tiles_wide: u32,
    // The weight transforms' output channels.
    out_channels: u32,
}

@group(0) @binding(0) var<uniform> p: WinogradParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
// Every kernel but winograd_output: src -> dst.
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// winograd_output: src (M), bias -> y.
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn tile_count() -> u32 {
    return p.batch * p.tiles_high * p.tiles_wide;
}

// Where tile t of channel c lies (index = c·T + t): the start of its NCHW
// plane and its first output row and column.
struct TileSite {
    plane: u32,
    row: u32,
    col: u32,
}

fn tile_site(index: u32) -> TileSite {
    let tiles = tile_count();
    let c = index / tiles;
    let t = index % tiles;
    let n = t / (p.tiles_wide * p.tiles_high);
    let ty = (t / p.tiles_wide) % p.tiles_high;
    let tx = t % p.tiles_wide;
    return TileSite((n * p.channels + c) * p.height * p.width, 2u * ty, 2u * tx);
}

// Bᵀ applied to the rows of a 4×4 tile, Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
fn bt_rows(d: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
}

// The 16 values of a transformed tile: value (i, j) at `at` + (4i + j)·stride.
fn store_tile(at: u32, stride: u32, v: mat4x4<f32>) {
    store_row(at, stride, v[0]);
    store_row(at + 4u * stride, stride, v[1]);
    store_row(at + 8u * stride, stride, v[2]);
    store_row(at + 12u * stride, stride, v[3]);
}

fn store_row(at: u32, stride: u32, r: vec4<f32>) {
    dst[at] = r.x;
    dst[at + stride] = r.y;
    dst[at + 2u * stride] = r.z;
    dst[at + 3u * stride] = r.w;
}

fn load_row(at: u32, stride: u32) -> vec4<f32> {
    return vec4<f32>(src[at], src[at + stride], src[at + 2u * stride], src[at + 3u * stride]);
}

// The transformed tile at `at`, value (i, j) at `at` + (4i + j)·stride.
fn load_tile(at: u32, stride: u32) -> mat4x4<f32> {
    return mat4x4<f32>(
        load_row(at, stride),
        load_row(at + 4u * stride, stride),
        load_row(at + 8u * stride, stride),
        load_row(at + 12u * stride, stride),
    );
}

// Four input values of row `row` from column `col`, zero outside the plane.
fn input_row(plane: u32, row: i32, col: i32) -> vec4<f32> {
    let cols = vec4<i32>(col) + vec4<i32>(0, 1, 2, 3);
    let row_inside = row >= 0 && row < i32(p.height);
    let inside = (cols >= vec4<i32>(0)) & (cols < vec4<i32>(i32(p.width))) & vec4<bool>(row_inside);
    let r = u32(clamp(row, 0, i32(p.height) - 1));
    let at = vec4<u32>(clamp(cols, vec4<i32>(0), vec4<i32>(i32(p.width) - 1))) + plane + r * p.width;
    return select(vec4<f32>(0.0), vec4<f32>(src[at.x], src[at.y], src[at.z], src[at.w]), inside);
}

// V[ξ, c, t] = (Bᵀ d B)[ξ] for the input patch d of tile t in channel c,
// one invocation per (channel, tile)
@compute @workgroup_size(64)
fn winograd_input(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let tiles = tile_count();
    let index = flat_index(id, groups);
    if index >= p.channels * tiles {
        return;
    }
    // The patch starts a row and a column before the tile (the padding).
    let site = tile_site(index);
    let plane = site.plane;
    let row = i32(site.row) - 1;
    let col = i32(site.col) - 1;
    let d = mat4x4<f32>(
        input_row(plane, row, col),
        input_row(plane, row + 1, col),
        input_row(plane, row + 2, col),
        input_row(plane, row + 3, col),
    );
    store_tile(index, p.channels * tiles, transpose(bt_rows(transpose(bt_rows(d)))));
}

// One quarter of B dV Bᵀ for tile (ty, tx) of channel c in image n: rows 2, 3
// if `lower` else 0, 1, and columns 2, 3 if `right` else 0, 1, as (r0 c0,
// r0 c1, r1 c0, r1 c1); zero for a tile outside the grid. Only the quarter
// is transformed: B = [1 0 0 0; 0 1 −1 1; −1 1 1 0; 0 0 0 −1] (the transpose
// of bt_rows' Bᵀ) on the two rows needed, then on their two columns.
fn input_gradient_quarter(n: u32, c: u32, ty: i32, tx: i32, lower: bool, right: bool) -> vec4<f32> {
    if ty < 0 || ty >= i32(p.tiles_high) || tx < 0 || tx >= i32(p.tiles_wide) {
        return vec4<f32>(0.0);
    }
    let tiles = tile_count();
    let t = (n * p.tiles_high + u32(ty)) * p.tiles_wide + u32(tx);
    let dv = load_tile(c * tiles + t, p.channels * tiles);
    // Two rows of B dV ...
    var first = dv[0];
    var second = dv[1] - dv[2] + dv[3];
    if lower {
        first = dv[1] + dv[2] - dv[0];
        second = -dv[3];
    }
    // ... and two columns of each, times Bᵀ.
    if right {
        return vec4<f32>(first.y + first.z - first.x, -first.w, second.y + second.z - second.x, -second.w);
    }
    return vec4<f32>(first.x, first.y - first.z + first.w, second.x, second.y - second.z + second.w);
}

// dx: each input value gets its share of every tile patch it lies in. One
// invocation per 2×2 block of input rows 2m−1, 2m and columns 2l−1, 2l: the
// block lies in four patches, one quarter of each (tiles (m, l), (m−1, l),
// (m, l−1) and (m−1, l−1)), so every sum is a gather and no two invocations
// write the same value.
@compute @workgroup_size(64)
fn winograd_input_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let blocks_wide = p.tiles_wide + 1u;
    let blocks_high = p.tiles_high + 1u;
    let index = flat_index(id, groups);
    if index >= p.batch * p.channels * blocks_high * blocks_wide {
        return;
    }
    let l = i32(index % blocks_wide);
    let m = i32((index / blocks_wide) % blocks_high);
    let plane = index / (blocks_wide * blocks_high);
    let n = plane / p.channels;
    let c = plane % p.channels;
    // (row 2m−1, col 2l−1), (2m−1, 2l), (2m, 2l−1), (2m, 2l)
    let here = input_gradient_quarter(n, c, m, l, false, false);
    let above = input_gradient_quarter(n, c, m - 1, l, true, false);
    let left = input_gradient_quarter(n, c, m, l - 1, false, true);
    let corner = input_gradient_quarter(n, c, m - 1, l - 1, true, true);
    let block = here + above + left + corner;
    let base = plane * p.height * p.width;
    let row = 2 * m - 1;
    let col = 2 * l - 1;
    store_input(base, row, col, block.x);
    store_input(base, row, col + 1, block.y);
    store_input(base, row + 1, col, block.z);
    store_input(base, row + 1, col + 1, block.w);
}

fn store_input(base: u32, row: i32, col: i32, value: f32) {
    if row >= 0 && row < i32(p.height) && col >= 0 && col < i32(p.width) {
        dst[base + u32(row) * p.width + u32(col)] = value;
    }
}

// G applied to a kernel row or column, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
fn g_apply(g: vec3<f32>) -> vec4<f32> {
    return vec4<f32>(g.x, 0.5 * (g.x + g.y + g.z), 0.5 * (g.x - g.y + g.z), g.z);
}

// U[ξ, o, c] = (G g Gᵀ)[ξ] for the 3×3 kernel g of (o, c), one invocation per (o, c)
@compute @workgroup_size(64)
fn winograd_weight(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let pairs = p.out_channels * p.channels;
    let index = flat_index(id, groups);
    if index >= pairs {
        return;
    }
    let at = index * 9u;
    let g0 = vec3<f32>(src[at], src[at + 1u], src[at + 2u]);
    let g1 = vec3<f32>(src[at + 3u], src[at + 4u], src[at + 5u]);
    let g2 = vec3<f32>(src[at + 6u], src[at + 7u], src[at + 8u]);
    // The rows of G g, then G applied to each of them.
    let u = mat4x4<f32>(
        g_apply(g0),
        g_apply(0.5 * (g0 + g1 + g2)),
        g_apply(0.5 * (g0 - g1 + g2)),
        g_apply(g2),
    );
    store_tile(index, pairs, u);
}

// Gᵀ applied to four values: the transpose of g_apply.
fn gt_apply(x: vec4<f32>) -> vec3<f32> {
    return vec3<f32>(x.x + 0.5 * (x.y + x.z), 0.5 * (x.y - x.z), 0.5 * (x.y + x.z) + x.w);
}

// dw[o, c] = Gᵀ dU G, one invocation per (o, c)
@compute @workgroup_size(64)
fn winograd_weight_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let pairs = p.out_channels * p.channels;
    let index = flat_index(id, groups);
    if index >= pairs {
        return;
    }
    let du = load_tile(index, pairs);
    // The rows of Gᵀ dU (three of four values), then Gᵀ applied to each.
    let r0 = gt_apply(du[0] + 0.5 * (du[1] + du[2]));
    let r1 = gt_apply(0.5 * (du[1] - du[2]));
    let r2 = gt_apply(0.5 * (du[1] + du[2]) + du[3]);
    let at = index * 9u;
    dst[at] = r0.x;
    dst[at + 1u] = r0.y;
    dst[at + 2u] = r0.z;
    dst[at + 3u] = r1.x;
    dst[at + 4u] = r1.y;
    dst[at + 5u] = r1.z;
    dst[at + 6u] = r2.x;
    dst[at + 7u] = r2.y;
    dst[at + 8u] = r2.z;
}

// Aᵀ applied to four values, Aᵀ = [1 1 1 0; 0 1 −1 −1].
fn at_apply(x: vec4<f32>) -> vec2<f32> {
    return vec2<f32>(x.x + x.y + x.z, x.y - x.z - x.w);
}

// y[n, o, 2ty + i, 2tx + j] = (Aᵀ M A)[i, j] + bias[o], one invocation per (o, tile)
@compute @workgroup_size(64)
fn winograd_output(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let tiles = tile_count();
    let index = flat_index(id, groups);
    if index >= p.channels * tiles {
        return;
    }
    let o = index / tiles;
    let m = load_tile(index, p.channels * tiles);
    let top = at_apply(m[0] + m[1] + m[2]) + bias[o];
    let bottom = at_apply(m[1] - m[2] - m[3]) + bias[o];
    let site = tile_site(index);
    store_output(site.plane, site.row, site.col, top.x);
    store_output(site.plane, site.row, site.col + 1u, top.y);
    store_output(site.plane, site.row + 1u, site.col, bottom.x);
    store_output(site.plane, site.row + 1u, site.col + 1u, bottom.y);
}

fn store_output(base: u32, row: u32, col: u32, value: f32) {
    if row < p.height && col < p.width {
        y[base + row * p.width + col] = value;
    }
}

// A applied to two values: the transpose of at_apply.
fn a_apply(x: vec2<f32>) -> vec4<f32> {
    return vec4<f32>(x.x, x.x + x.y, x.x - x.y, -x.y);
}

// Value (i, j) of a tile of dy, zero outside the map.
fn output_gradient(site: TileSite, i: u32, j: u32) -> f32 {
    let row = site.row + i;
    let col = site.col + j;
    if row < p.height && col < p.width {
        return src[site.plane + row * p.width + col];
    }
    return 0.0;
}

// dM[ξ, o, t] = (A dY Aᵀ)[ξ] for the 2×2 tile dY of dy, one invocation per (o, tile)
@compute @workgroup_size(64)
fn winograd_output_backward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let tiles = tile_count();
    let index = flat_index(id, groups);
    if index >= p.channels * tiles {
        return;
    }
    let site = tile_site(index);
    let top = vec2<f32>(output_gradient(site, 0u, 0u), output_gradient(site, 0u, 1u));
    let bottom = vec2<f32>(output_gradient(site, 1u, 0u), output_gradient(site, 1u, 1u));
    // The rows of A dY, then A applied to each.
    let dm = mat4x4<f32>(a_apply(top), a_apply(top + bottom), a_apply(top - bottom), a_apply(-bottom));
    store_tile(index, p.channels * tiles, dm);
}
