// 2-D convolution (NCHW, square kernel, bias), forward and both backwards.
//
// The kernels are register-blocked: one conv2d_forward invocation computes
// 8 output channels × 8 neighbouring output columns, so every input value and
// every weight it loads feeds eight multiply-adds. It needs no workgroup memory
// and no barriers, which software drivers (llvmpipe, SwiftShader) punish.
// The same kernel computes the input gradient of a stride-1 convolution as a
// convolution of dy with the flipped, transposed weights.

struct Conv2dParams {
    batch: u32,
    in_channels: u32,
    in_height: u32,
    in_width: u32,
    out_channels: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    // Weight element (out channel a, in channel b, u, v) is at
    // a·weight_out_stride + b·weight_in_stride + (u·k + v), or the flipped
    // (k−1−u)·k + (k−1−v) when flip = 1.
    weight_out_stride: u32,
    weight_in_stride: u32,
    flip: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Conv2dParams;

// conv2d_forward: x, weight, bias -> y
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// conv2d_backward_input: dy, weight -> dx
// conv2d_backward_weight: dy, x -> dw
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x_for_weight_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// conv2d_im2col: x -> cols
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

const TILE: u32 = 4u;
// conv2d_forward's tile is OUT_TILE output channels × COL_TILE output columns.
const OUT_TILE: u32 = 8u;
const COL_TILE: u32 = 8u;
// conv2d_backward_weight_wide's tile: WIDE_TILE output × WIDE_TILE input channels.
const WIDE_TILE: u32 = 8u;

// The input values of output columns j0 .. j0+3 at kernel column v in input row x_row (0 in the padding).
// Branch-free, no loop, no indexed vector: a driver that does not unroll
// loops (SwiftShader) would otherwise write the vector through memory.
fn input_quad(x_row: u32, row_inside: bool, j0: u32, v: u32) -> vec4<f32> {
    let cols = vec4<i32>(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u)) * i32(p.stride) + i32(v) - i32(p.padding);
    let inside = (cols >= vec4<i32>(0)) & (cols < vec4<i32>(i32(p.in_width))) & vec4<bool>(row_inside);
    let at = vec4<u32>(clamp(cols, vec4<i32>(0), vec4<i32>(i32(p.in_width) - 1))) + x_row;
    return select(vec4<f32>(0.0), vec4<f32>(x[at.x], x[at.y], x[at.z], x[at.w]), inside);
}

// y[n,o,i,j] = bias[o] + Σ_c,u,v weight[o,c,u,v] · x[n,c, stride·i+u−pad, stride·j+v−pad],
// one invocation per 8 output channels × 8 output columns
@compute @workgroup_size(64)
fn conv2d_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    // The grid is (images × spatial tiles, channel tiles): the channel tile is
    // the same for the whole workgroup, and a workgroup spans images, so
    // small maps (7×7) still fill it. Each weight a lane loads feeds eight
    // multiply-adds and each input value eight: a software driver loads
    // every value lane by lane, so loads, not arithmetic, bound it.
    let col_tiles = (p.out_width + COL_TILE - 1u) / COL_TILE;
    let tiles_per_image = p.out_height * col_tiles;
    if id.x >= p.batch * tiles_per_image {
        return;
    }
    let n = id.x / tiles_per_image;
    let tile = id.x % tiles_per_image;
    let j0 = (tile % col_tiles) * COL_TILE;
    let i = tile / col_tiles;
    let o0 = group.y * OUT_TILE;

    // Rows of the tile past the last channel reuse the last channel; they are not written.
    // (Named accumulators rather than an array: llvmpipe keeps them in registers.)
    let last = p.out_channels - 1u;
    let w0 = min(o0, last) * p.weight_out_stride;
    let w1 = min(o0 + 1u, last) * p.weight_out_stride;
    let w2 = min(o0 + 2u, last) * p.weight_out_stride;
    let w3 = min(o0 + 3u, last) * p.weight_out_stride;
    let w4 = min(o0 + 4u, last) * p.weight_out_stride;
    let w5 = min(o0 + 5u, last) * p.weight_out_stride;
    let w6 = min(o0 + 6u, last) * p.weight_out_stride;
    let w7 = min(o0 + 7u, last) * p.weight_out_stride;
    var acc0 = vec4<f32>(initial_value(o0));
    var acc1 = vec4<f32>(initial_value(o0 + 1u));
    var acc2 = vec4<f32>(initial_value(o0 + 2u));
    var acc3 = vec4<f32>(initial_value(o0 + 3u));
    var acc4 = vec4<f32>(initial_value(o0 + 4u));
    var acc5 = vec4<f32>(initial_value(o0 + 5u));
    var acc6 = vec4<f32>(initial_value(o0 + 6u));
    var acc7 = vec4<f32>(initial_value(o0 + 7u));
    var bcc0 = acc0;
    var bcc1 = acc1;
    var bcc2 = acc2;
    var bcc3 = acc3;
    var bcc4 = acc4;
    var bcc5 = acc5;
    var bcc6 = acc6;
    var bcc7 = acc7;
    let k = p.kernel;
    // One loop over (input channel, kernel row, kernel column) with the
    // counters stepped by hand: a driver that runs loops without unrolling
    // them (SwiftShader) pays per loop entered, and nested loops of three
    // iterations entered it nine times as often.
    var c = 0u;
    var u = 0u;
    var v = 0u;
    for (var t = 0u; t < p.in_channels * k * k; t++) {
        // Rows in the padding read a clamped row and zero it: no lane takes a branch of its own.
        let row = i32(i * p.stride + u) - i32(p.padding);
        let row_inside = row >= 0 && row < i32(p.in_height);
        let x_plane = (n * p.in_channels + c) * p.in_height * p.in_width;
        let x_row = x_plane + u32(clamp(row, 0, i32(p.in_height) - 1)) * p.in_width;
        let left = input_quad(x_row, row_inside, j0, v);
        let right = input_quad(x_row, row_inside, j0 + 4u, v);
        let tap = c * p.weight_in_stride + select(u * k + v, (k - 1u - u) * k + (k - 1u - v), p.flip == 1u);
        let g0 = weight[w0 + tap];
        let g1 = weight[w1 + tap];
        let g2 = weight[w2 + tap];
        let g3 = weight[w3 + tap];
        let g4 = weight[w4 + tap];
        let g5 = weight[w5 + tap];
        let g6 = weight[w6 + tap];
        let g7 = weight[w7 + tap];
        acc0 += g0 * left;
        bcc0 += g0 * right;
        acc1 += g1 * left;
        bcc1 += g1 * right;
        acc2 += g2 * left;
        bcc2 += g2 * right;
        acc3 += g3 * left;
        bcc3 += g3 * right;
        acc4 += g4 * left;
        bcc4 += g4 * right;
        acc5 += g5 * left;
        bcc5 += g5 * right;
        acc6 += g6 * left;
        bcc6 += g6 * right;
        acc7 += g7 * left;
        bcc7 += g7 * right;
        v++;
        if v == k {
            v = 0u;
            u++;
            if u == k {
                u = 0u;
                c++;
            }
        }
    }
    // Row by row with constant indices (see store_row in linear.wgsl).
    let y_row = (n * p.out_channels + o0) * p.out_height + i;
    store_output_row(o0, y_row * p.out_width, j0, acc0, bcc0);
    store_output_row(o0 + 1u, (y_row + p.out_height) * p.out_width, j0, acc1, bcc1);
    store_output_row(o0 + 2u, (y_row + 2u * p.out_height) * p.out_width, j0, acc2, bcc2);
    store_output_row(o0 + 3u, (y_row + 3u * p.out_height) * p.out_width, j0, acc3, bcc3);
    store_output_row(o0 + 4u, (y_row + 4u * p.out_height) * p.out_width, j0, acc4, bcc4);
    store_output_row(o0 + 5u, (y_row + 5u * p.out_height) * p.out_width, j0, acc5, bcc5);
    store_output_row(o0 + 6u, (y_row + 6u * p.out_height) * p.out_width, j0, acc6, bcc6);
    store_output_row(o0 + 7u, (y_row + 7u * p.out_height) * p.out_width, j0, acc7, bcc7);
}

// The bias of output channel o where the kernel adds one (the last channel for rows past it).
fn initial_value(o: u32) -> f32 {
    return select(0.0, bias[min(o, p.out_channels - 1u)], p.has_bias == 1u);
}

// y[at + j0 .. j0+7] = left, right for output channel o, skipping channels and columns past the edge.
fn store_output_row(o: u32, at: u32, j0: u32, left: vec4<f32>, right: vec4<f32>) {
    if o >= p.out_channels {
        return;
    }
    store_output(at, j0, left.x);
    store_output(at, j0 + 1u, left.y);
    store_output(at, j0 + 2u, left.z);
    store_output(at, j0 + 3u, left.w);
    store_output(at, j0 + 4u, right.x);
    store_output(at, j0 + 5u, right.y);
    store_output(at, j0 + 6u, right.z);
    store_output(at, j0 + 7u, right.w);
}

fn store_output(at: u32, j: u32, value: f32) {
    if j < p.out_width {
        y[at + j] = value;
    }
}

// dx[n,c,r,s] = Σ_o,u,v dy[n,o,i,j] · weight[o,c,u,v] over (i,j) with stride·i+u−pad = r, stride·j+v−pad = s;
// for strides above 1 (stride 1 runs conv2d_forward on dy with flipped weights)
@compute @workgroup_size(64)
fn conv2d_backward_input_strided(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.batch * p.in_channels * p.in_height * p.in_width {
        return;
    }
    let s = index % p.in_width;
    let r = (index / p.in_width) % p.in_height;
    let c = (index / (p.in_width * p.in_height)) % p.in_channels;
    let n = index / (p.in_width * p.in_height * p.in_channels);

    var sum = 0.0;
    for (var o = 0u; o < p.out_channels; o++) {
        let dy_plane = (n * p.out_channels + o) * p.out_height * p.out_width;
        let w_plane = (o * p.in_channels + c) * p.kernel * p.kernel;
        for (var u = 0u; u < p.kernel; u++) {
            let i_strided = i32(r + p.padding) - i32(u);
            if i_strided < 0 || i_strided % i32(p.stride) != 0 || i_strided / i32(p.stride) >= i32(p.out_height) {
                continue;
            }
            let i = u32(i_strided) / p.stride;
            for (var v = 0u; v < p.kernel; v++) {
                let j_strided = i32(s + p.padding) - i32(v);
                if j_strided < 0 || j_strided % i32(p.stride) != 0 || j_strided / i32(p.stride) >= i32(p.out_width) {
                    continue;
                }
                let j = u32(j_strided) / p.stride;
                sum += dy[dy_plane + i * p.out_width + j] * weight[w_plane + u * p.kernel + v];
            }
        }
    }
    dx[index] = sum;
}

// dw[o,c,u,v] = Σ_n,i,j dy[n,o,i,j] · x[n,c, stride·i+u−pad, stride·j+v−pad],
// one invocation per 4 output channels × 4 input channels at one tap (u, v)
@compute @workgroup_size(64)
fn conv2d_backward_weight(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    // The grid is (input-channel tiles × taps, output-channel tiles): the
    // output-channel tile is uniform per workgroup, and so are the dy addresses.
    let in_tiles = (p.in_channels + TILE - 1u) / TILE;
    let taps = p.kernel * p.kernel;
    let index = id.x;
    if index >= in_tiles * taps {
        return;
    }
    let tap = index % taps;
    let u = tap / p.kernel;
    let v = tap % p.kernel;
    let c0 = (index / taps) * TILE;
    let o0 = group.y * TILE;

    let out_plane = p.out_height * p.out_width;
    let in_plane = p.in_height * p.in_width;
    // Channels past the last repeat it and are not written; four named
    // accumulators rather than an array keep llvmpipe in registers.
    let last_out = p.out_channels - 1u;
    let last_in = p.in_channels - 1u;
    let d0 = min(o0, last_out) * out_plane;
    let d1 = min(o0 + 1u, last_out) * out_plane;
    let d2 = min(o0 + 2u, last_out) * out_plane;
    let d3 = min(o0 + 3u, last_out) * out_plane;
    let x0 = min(c0, last_in) * in_plane;
    let x1 = min(c0 + 1u, last_in) * in_plane;
    let x2 = min(c0 + 2u, last_in) * in_plane;
    let x3 = min(c0 + 3u, last_in) * in_plane;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var n = 0u; n < p.batch; n++) {
        let dy_n = n * p.out_channels * out_plane;
        let x_n = n * p.in_channels * in_plane;
        for (var i = 0u; i < p.out_height; i++) {
            let row = i32(i * p.stride + u) - i32(p.padding);
            if row < 0 || row >= i32(p.in_height) {
                continue;
            }
            for (var j = 0u; j < p.out_width; j++) {
                let col = i32(j * p.stride + v) - i32(p.padding);
                if col < 0 || col >= i32(p.in_width) {
                    continue;
                }
                let pixel = x_n + u32(row) * p.in_width + u32(col);
                let inputs = vec4<f32>(
                    x_for_weight_grad[pixel + x0],
                    x_for_weight_grad[pixel + x1],
                    x_for_weight_grad[pixel + x2],
                    x_for_weight_grad[pixel + x3],
                );
                let dy_pixel = dy_n + i * p.out_width + j;
                acc0 += dy[dy_pixel + d0] * inputs;
                acc1 += dy[dy_pixel + d1] * inputs;
                acc2 += dy[dy_pixel + d2] * inputs;
                acc3 += dy[dy_pixel + d3] * inputs;
            }
        }
    }
    store_weight_quad(o0, c0, tap, acc0);
    store_weight_quad(o0 + 1u, c0, tap, acc1);
    store_weight_quad(o0 + 2u, c0, tap, acc2);
    store_weight_quad(o0 + 3u, c0, tap, acc3);
}

// dw[o, c0 .. c0+3, tap] = values, skipping channels past the edge (constant
// indices: see store_row in linear.wgsl).
fn store_weight_quad(o: u32, c0: u32, tap: u32, values: vec4<f32>) {
    if o >= p.out_channels {
        return;
    }
    store_weight(o, c0, tap, values.x);
    store_weight(o, c0 + 1u, tap, values.y);
    store_weight(o, c0 + 2u, tap, values.z);
    store_weight(o, c0 + 3u, tap, values.w);
}

fn store_weight(o: u32, c: u32, tap: u32, value: f32) {
    if c < p.in_channels {
        dw[(o * p.in_channels + c) * p.kernel * p.kernel + tap] = value;
    }
}

// conv2d_backward_weight for layers with many channels: 8 output channels ×
// 8 input channels at one tap per invocation, so each value loaded feeds
// eight multiply-adds instead of four (a software driver loads lane by lane).
// Too few invocations for the first layers, which keep the 4 × 4 kernel.
@compute @workgroup_size(64)
fn conv2d_backward_weight_wide(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) group: vec3<u32>) {
    let in_tiles = (p.in_channels + WIDE_TILE - 1u) / WIDE_TILE;
    let taps = p.kernel * p.kernel;
    let index = id.x;
    if index >= in_tiles * taps {
        return;
    }
    let tap = index % taps;
    let u = tap / p.kernel;
    let v = tap % p.kernel;
    let c0 = (index / taps) * WIDE_TILE;
    let o0 = group.y * WIDE_TILE;

    let out_plane = p.out_height * p.out_width;
    let in_plane = p.in_height * p.in_width;
    // Channels past the last repeat it and are not written.
    let last_out = p.out_channels - 1u;
    let last_in = p.in_channels - 1u;
    let d0 = min(o0, last_out) * out_plane;
    let d1 = min(o0 + 1u, last_out) * out_plane;
    let d2 = min(o0 + 2u, last_out) * out_plane;
    let d3 = min(o0 + 3u, last_out) * out_plane;
    let d4 = min(o0 + 4u, last_out) * out_plane;
    let d5 = min(o0 + 5u, last_out) * out_plane;
    let d6 = min(o0 + 6u, last_out) * out_plane;
    let d7 = min(o0 + 7u, last_out) * out_plane;
    let x0 = min(c0, last_in) * in_plane;
    let x1 = min(c0 + 1u, last_in) * in_plane;
    let x2 = min(c0 + 2u, last_in) * in_plane;
    let x3 = min(c0 + 3u, last_in) * in_plane;
    let x4 = min(c0 + 4u, last_in) * in_plane;
    let x5 = min(c0 + 5u, last_in) * in_plane;
    let x6 = min(c0 + 6u, last_in) * in_plane;
    let x7 = min(c0 + 7u, last_in) * in_plane;
    // acc_a: output channel a × input channels 0–3 of the tile; bcc_a: × input channels 4–7.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var bcc0 = vec4<f32>(0.0);
    var bcc1 = vec4<f32>(0.0);
    var bcc2 = vec4<f32>(0.0);
    var bcc3 = vec4<f32>(0.0);
    var bcc4 = vec4<f32>(0.0);
    var bcc5 = vec4<f32>(0.0);
    var bcc6 = vec4<f32>(0.0);
    var bcc7 = vec4<f32>(0.0);
    for (var n = 0u; n < p.batch; n++) {
        let dy_n = n * p.out_channels * out_plane;
        let x_n = n * p.in_channels * in_plane;
        for (var i = 0u; i < p.out_height; i++) {
            let row = i32(i * p.stride + u) - i32(p.padding);
            if row < 0 || row >= i32(p.in_height) {
                continue;
            }
            for (var j = 0u; j < p.out_width; j++) {
                let col = i32(j * p.stride + v) - i32(p.padding);
                if col < 0 || col >= i32(p.in_width) {
                    continue;
                }
                let pixel = x_n + u32(row) * p.in_width + u32(col);
                let left = vec4<f32>(
                    x_for_weight_grad[pixel + x0],
                    x_for_weight_grad[pixel + x1],
                    x_for_weight_grad[pixel + x2],
                    x_for_weight_grad[pixel + x3],
                );
                let right = vec4<f32>(
                    x_for_weight_grad[pixel + x4],
                    x_for_weight_grad[pixel + x5],
                    x_for_weight_grad[pixel + x6],
                    x_for_weight_grad[pixel + x7],
                );
                let dy_pixel = dy_n + i * p.out_width + j;
                let g0 = dy[dy_pixel + d0];
                let g1 = dy[dy_pixel + d1];
                let g2 = dy[dy_pixel + d2];
                let g3 = dy[dy_pixel + d3];
                let g4 = dy[dy_pixel + d4];
                let g5 = dy[dy_pixel + d5];
                let g6 = dy[dy_pixel + d6];
                let g7 = dy[dy_pixel + d7];
                acc0 += g0 * left;
                bcc0 += g0 * right;
                acc1 += g1 * left;
                bcc1 += g1 * right;
                acc2 += g2 * left;
                bcc2 += g2 * right;
                acc3 += g3 * left;
                bcc3 += g3 * right;
                acc4 += g4 * left;
                bcc4 += g4 * right;
                acc5 += g5 * left;
                bcc5 += g5 * right;
                acc6 += g6 * left;
                bcc6 += g6 * right;
                acc7 += g7 * left;
                bcc7 += g7 * right;
            }
        }
    }
    store_weight_quad(o0, c0, tap, acc0);
    store_weight_quad(o0, c0 + 4u, tap, bcc0);
    store_weight_quad(o0 + 1u, c0, tap, acc1);
    store_weight_quad(o0 + 1u, c0 + 4u, tap, bcc1);
    store_weight_quad(o0 + 2u, c0, tap, acc2);
    store_weight_quad(o0 + 2u, c0 + 4u, tap, bcc2);
    store_weight_quad(o0 + 3u, c0, tap, acc3);
    store_weight_quad(o0 + 3u, c0 + 4u, tap, bcc3);
    store_weight_quad(o0 + 4u, c0, tap, acc4);
    store_weight_quad(o0 + 4u, c0 + 4u, tap, bcc4);
    store_weight_quad(o0 + 5u, c0, tap, acc5);
    store_weight_quad(o0 + 5u, c0 + 4u, tap, bcc5);
    store_weight_quad(o0 + 6u, c0, tap, acc6);
    store_weight_quad(o0 + 6u, c0 + 4u, tap, bcc6);
    store_weight_quad(o0 + 7u, c0, tap, acc7);
    store_weight_quad(o0 + 7u, c0 + 4u, tap, bcc7);
}

// ---- Workgroup-tiled variants (hardware GPUs): the convolutions as implicit
// matrix products over im2col, tiled as in common.wgsl. Reduction index r runs
// over (input channel, tap); output pixel q over (image, row, column).

// The index of the input value that reduction index r contributes to output
// pixel q, or −1 where that falls in the padding or (r, q) outside the matrix.
fn im2col_index(r: u32, q: u32) -> i32 {
    let taps = p.kernel * p.kernel;
    if r >= p.in_channels * taps || q >= p.batch * p.out_height * p.out_width {
        return -1;
    }
    let c = r / taps;
    let u = (r % taps) / p.kernel;
    let v = r % p.kernel;
    let out_plane = p.out_height * p.out_width;
    let n = q / out_plane;
    let i = (q % out_plane) / p.out_width;
    let j = q % p.out_width;
    let row = i32(i * p.stride + u) - i32(p.padding);
    let col = i32(j * p.stride + v) - i32(p.padding);
    if row < 0 || row >= i32(p.in_height) || col < 0 || col >= i32(p.in_width) {
        return -1;
    }
    return i32(((n * p.in_channels + c) * p.in_height + u32(row)) * p.in_width + u32(col));
}

// The index of weight (out channel o, reduction index r), flipped when p.flip = 1.
fn weight_index(o: u32, r: u32) -> u32 {
    let taps = p.kernel * p.kernel;
    let tap = select(r % taps, taps - 1u - r % taps, p.flip == 1u);
    return o * p.weight_out_stride + (r / taps) * p.weight_in_stride + tap;
}

// The flat index of (image, channel, pixel) for output pixel q of a map with `channels` channels.
fn output_index(q: u32, channel: u32, channels: u32) -> u32 {
    let out_plane = p.out_height * p.out_width;
    return ((q / out_plane) * channels + channel) * out_plane + q % out_plane;
}

// conv2d_forward as y[o, q] = Σ_r weight[o, r] · im2col(x)[r, q]: one workgroup per 32 channels × 32 pixels
@compute @workgroup_size(64)
fn conv2d_forward_tiled(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) group: vec3<u32>) {
    let o0 = group.y * BLOCK;
    let q0 = group.x * BLOCK;
    let depth = p.in_channels * p.kernel * p.kernel;
    let pixels = p.batch * p.out_height * p.out_width;
    let origin = sub_tile_origin(lane);
    var acc: array<vec4<f32>, 4>;
    for (var r0 = 0u; r0 < depth; r0 += DEPTH_STEP) {
        for (var e = lane; e < BLOCK * DEPTH_STEP; e += WORKGROUP_SIZE) {
            let r = r0 + e / BLOCK;
            let o = o0 + e % BLOCK;
            let q = q0 + e % BLOCK;
            var w = 0.0;
            if o < p.out_channels && r < depth {
                w = weight[weight_index(o, r)];
            }
            a_tile[e] = w;
            let at = im2col_index(r, q);
            var input = 0.0;
            if at >= 0 {
                input = x[at];
            }
            b_tile[e] = input;
        }
        workgroupBarrier();
        multiply_staged_tiles(&acc, origin);
        workgroupBarrier();
    }
    for (var a = 0u; a < TILE; a++) {
        let o = o0 + origin.x + a;
        for (var b = 0u; b < TILE; b++) {
            let q = q0 + origin.y + b;
            if o < p.out_channels && q < pixels {
                var value = acc[a][b];
                if p.has_bias == 1u {
                    value += bias[o];
                }
                y[output_index(q, o, p.out_channels)] = value;
            }
        }
    }
}

// conv2d_backward_weight as dw[o, r] = Σ_q dy[o, q] · im2col(x)[r, q]: one workgroup per 32 out channels × 32 (in channel, tap)
@compute @workgroup_size(64)
fn conv2d_backward_weight_tiled(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) group: vec3<u32>) {
    let o0 = group.y * BLOCK;
    let r0 = group.x * BLOCK;
    let reduction = p.in_channels * p.kernel * p.kernel;
    let pixels = p.batch * p.out_height * p.out_width;
    let origin = sub_tile_origin(lane);
    var acc: array<vec4<f32>, 4>;
    for (var q0 = 0u; q0 < pixels; q0 += DEPTH_STEP) {
        for (var e = lane; e < BLOCK * DEPTH_STEP; e += WORKGROUP_SIZE) {
            let q = q0 + e / BLOCK;
            let o = o0 + e % BLOCK;
            let r = r0 + e % BLOCK;
            var gradient = 0.0;
            if o < p.out_channels && q < pixels {
                gradient = dy[output_index(q, o, p.out_channels)];
            }
            a_tile[e] = gradient;
            let at = im2col_index(r, q);
            var input = 0.0;
            if at >= 0 {
                input = x_for_weight_grad[at];
            }
            b_tile[e] = input;
        }
        workgroupBarrier();
        multiply_staged_tiles(&acc, origin);
        workgroupBarrier();
    }
    for (var a = 0u; a < TILE; a++) {
        let o = o0 + origin.x + a;
        for (var b = 0u; b < TILE; b++) {
            let r = r0 + origin.y + b;
            if o < p.out_channels && r < reduction {
                dw[o * reduction + r] = acc[a][b];
            }
        }
    }
}

// cols[n, r, q] = x[n, c, stride·i+u−pad, stride·j+v−pad] for input index
// r = (c, u, v) and output pixel q = (i, j), zero in the padding: each
// image's column matrix (for a weight gradient as a product, see Im2col).
// One invocation per output pixel: neighbouring lanes write neighbouring
// values, and the divisions are done once, not per value.
@compute @workgroup_size(64)
fn conv2d_im2col(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let pixels = p.out_height * p.out_width;
    let index = flat_index(id, groups);
    if index >= p.batch * pixels {
        return;
    }
    let n = index / pixels;
    let q = index % pixels;
    let top = i32((q / p.out_width) * p.stride) - i32(p.padding);
    let left = i32((q % p.out_width) * p.stride) - i32(p.padding);
    let depth = p.in_channels * p.kernel * p.kernel;
    var at = n * depth * pixels + q;
    for (var c = 0u; c < p.in_channels; c++) {
        let plane = (n * p.in_channels + c) * p.in_height * p.in_width;
        for (var u = 0u; u < p.kernel; u++) {
            let row = top + i32(u);
            for (var v = 0u; v < p.kernel; v++) {
                let col = left + i32(v);
                var value = 0.0;
                if row >= 0 && row < i32(p.in_height) && col >= 0 && col < i32(p.in_width) {
                    value = x[plane + u32(row) * p.in_width + u32(col)];
                }
                cols[at] = value;
                at += pixels;
            }
        }
    }
}
