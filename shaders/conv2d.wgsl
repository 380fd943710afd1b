// 2-D convolution (NCHW, square kernel, bias), forward and both backwards.
// One invocation computes one output element by direct summation.

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

// y[n,o,i,j] = bias[o] + Σ_c,u,v weight[o,c,u,v] · x[n,c, stride·i+u−pad, stride·j+v−pad]
@compute @workgroup_size(64)
fn conv2d_forward(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.batch * p.out_channels * p.out_height * p.out_width {
        return;
    }
    let j = index % p.out_width;
    let i = (index / p.out_width) % p.out_height;
    let o = (index / (p.out_width * p.out_height)) % p.out_channels;
    let n = index / (p.out_width * p.out_height * p.out_channels);

    var sum = bias[o];
    for (var c = 0u; c < p.in_channels; c++) {
        let x_plane = (n * p.in_channels + c) * p.in_height * p.in_width;
        let w_plane = (o * p.in_channels + c) * p.kernel * p.kernel;
        for (var u = 0u; u < p.kernel; u++) {
            let row = i32(i * p.stride + u) - i32(p.padding);
            if row < 0 || row >= i32(p.in_height) {
                continue;
            }
            for (var v = 0u; v < p.kernel; v++) {
                let col = i32(j * p.stride + v) - i32(p.padding);
                if col < 0 || col >= i32(p.in_width) {
                    continue;
                }
                sum += weight[w_plane + u * p.kernel + v] * x[x_plane + u32(row) * p.in_width + u32(col)];
            }
        }
    }
    y[index] = sum;
}

// dx[n,c,r,s] = Σ_o,u,v dy[n,o,i,j] · weight[o,c,u,v] over (i,j) with stride·i+u−pad = r, stride·j+v−pad = s
@compute @workgroup_size(64)
fn conv2d_backward_input(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
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

// dw[o,c,u,v] = Σ_n,i,j dy[n,o,i,j] · x[n,c, stride·i+u−pad, stride·j+v−pad]
@compute @workgroup_size(64)
fn conv2d_backward_weight(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(id, groups);
    if index >= p.out_channels * p.in_channels * p.kernel * p.kernel {
        return;
    }
    let v = index % p.kernel;
    let u = (index / p.kernel) % p.kernel;
    let c = (index / (p.kernel * p.kernel)) % p.in_channels;
    let o = index / (p.kernel * p.kernel * p.in_channels);

    var sum = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        let dy_plane = (n * p.out_channels + o) * p.out_height * p.out_width;
        let x_plane = (n * p.in_channels + c) * p.in_height * p.in_width;
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
                sum += dy[dy_plane + i * p.out_width + j] * x_for_weight_grad[x_plane + u32(row) * p.in_width + u32(col)];
            }
        }
    }
    dw[index] = sum;
}
