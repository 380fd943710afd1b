//! 2×2 stride-2 pooling and ×2 nearest upsampling over NCHW planes.

use crate::tensor::Tensor;

/// The four input offsets of the 2×2 window at output (i, j) in a plane of `width` columns.
fn window(i: usize, j: usize, width: usize) -> [usize; 4] {
    let origin = 2 * i * width + 2 * j;
    [origin, origin + 1, origin + width, origin + width + 1]
}

/// Applies `reduce` to every 2×2 window of every plane.
fn pool(x: &Tensor, out_shape: &[usize], reduce: impl Fn([f32; 4]) -> f32) -> Vec<f32> {
    let [_, _, in_h, in_w] = x.shape[..] else { unreachable!() };
    let [batch, channels, out_h, out_w] = out_shape[..] else { unreachable!() };
    let mut y = Vec::with_capacity(batch * channels * out_h * out_w);
    for plane in x.data.chunks(in_h * in_w) {
        for i in 0..out_h {
            for j in 0..out_w {
                y.push(reduce(window(i, j, in_w).map(|k| plane[k])));
            }
        }
    }
    y
}

/// Position (0..4) of the largest of four values, the first one on ties.
fn argmax4(values: [f32; 4]) -> usize {
    (1..4).fold(0, |best, k| if values[k] > values[best] { k } else { best })
}

pub fn avg_pool2(x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    pool(x, out_shape, |w| 0.25 * (w[0] + w[1] + w[2] + w[3]))
}

pub fn max_pool2(x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    pool(x, out_shape, |w| w[argmax4(w)])
}

/// dx = dy / 4 spread over each window; rows and columns the pool dropped get 0.
pub fn avg_pool2_backward(dy: &Tensor, dx_shape: &[usize]) -> Vec<f32> {
    let [_, _, out_h, out_w] = dy.shape[..] else { unreachable!() };
    let [_, _, in_h, in_w] = dx_shape[..] else { unreachable!() };
    let mut dx = vec![0.0; dx_shape.iter().product()];
    for (plane, dx_plane) in dx.chunks_mut(in_h * in_w).enumerate() {
        for i in 0..out_h {
            for j in 0..out_w {
                let g = dy.data[(plane * out_h + i) * out_w + j];
                for k in window(i, j, in_w) {
                    dx_plane[k] = 0.25 * g;
                }
            }
        }
    }
    dx
}

/// dx = dy routed to each window's argmax (the first on ties), 0 elsewhere.
pub fn max_pool2_backward(x: &Tensor, dy: &Tensor) -> Vec<f32> {
    let [_, _, in_h, in_w] = x.shape[..] else { unreachable!() };
    let [_, _, out_h, out_w] = dy.shape[..] else { unreachable!() };
    let mut dx = vec![0.0; x.len()];
    for (plane, (x_plane, dx_plane)) in x.data.chunks(in_h * in_w).zip(dx.chunks_mut(in_h * in_w)).enumerate() {
        for i in 0..out_h {
            for j in 0..out_w {
                let offsets = window(i, j, in_w);
                let best = argmax4(offsets.map(|k| x_plane[k]));
                dx_plane[offsets[best]] = dy.data[(plane * out_h + i) * out_w + j];
            }
        }
    }
    dx
}

/// y[r,s] = x[r/2, s/2]
pub fn upsample2(x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    let [_, _, in_h, in_w] = x.shape[..] else { unreachable!() };
    let mut y = Vec::with_capacity(out_shape.iter().product());
    for plane in x.data.chunks(in_h * in_w) {
        for r in 0..2 * in_h {
            for s in 0..2 * in_w {
                y.push(plane[(r / 2) * in_w + s / 2]);
            }
        }
    }
    y
}

/// dx[i,j] = Σ of dy over the 2×2 block at (2i, 2j)
pub fn upsample2_backward(dy: &Tensor, dx_shape: &[usize]) -> Vec<f32> {
    let [_, _, h, w] = dx_shape[..] else { unreachable!() };
    let mut dx = Vec::with_capacity(dx_shape.iter().product());
    for plane in dy.data.chunks(4 * h * w) {
        for i in 0..h {
            for j in 0..w {
                dx.push(window(i, j, 2 * w).iter().map(|&k| plane[k]).sum());
            }
        }
    }
    dx
}
