//! The convolution's CPU twin (direct loops, obviously right) and its fast
//! version for the CPU device (im2col + GEMM, split over the batch).

use crate::ops::fast_cpu::{gemm, per_chunk};
use crate::tensor::Tensor;

/// Reads x[n, c, row, col] of an NCHW tensor, or 0 outside it (zero padding).
fn padded(x: &Tensor, n: usize, c: usize, row: isize, col: isize) -> f32 {
    let [_, channels, height, width] = x.shape[..] else { unreachable!() };
    if row < 0 || col < 0 || row as usize >= height || col as usize >= width {
        return 0.0;
    }
    x.data[((n * channels + c) * height + row as usize) * width + col as usize]
}

/// y[n,o,i,j] = b[o] + Σ_c,u,v w[o,c,u,v] · x[n,c, s·i+u−p, s·j+v−p]
pub(super) fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    padding: usize,
    out_shape: &[usize],
) -> Vec<f32> {
    let [batch, out_ch, out_h, out_w] = out_shape[..] else { unreachable!() };
    let [_, in_ch, k, _] = w.shape[..] else { unreachable!() };
    let mut y = Vec::with_capacity(batch * out_ch * out_h * out_w);
    for n in 0..batch {
        for o in 0..out_ch {
            for i in 0..out_h {
                for j in 0..out_w {
                    let mut sum = b.data[o];
                    for c in 0..in_ch {
                        for u in 0..k {
                            for v in 0..k {
                                let row = (i * stride + u) as isize - padding as isize;
                                let col = (j * stride + v) as isize - padding as isize;
                                sum += w.data[((o * in_ch + c) * k + u) * k + v] * padded(x, n, c, row, col);
                            }
                        }
                    }
                    y.push(sum);
                }
            }
        }
    }
    y
}

/// dx[n,c,r,s] = Σ over every output position that read x[n,c,r,s] of dy · w.
pub(super) fn conv2d_backward_input(
    dy: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dx_shape: &[usize],
) -> Vec<f32> {
    let [batch, out_ch, out_h, out_w] = dy.shape[..] else { unreachable!() };
    let [_, in_ch, in_h, in_w] = dx_shape[..] else { unreachable!() };
    let k = w.shape[2];
    let mut dx = vec![0.0; batch * in_ch * in_h * in_w];
    // Scatter each output gradient back to the inputs it read.
    for n in 0..batch {
        for o in 0..out_ch {
            for i in 0..out_h {
                for j in 0..out_w {
                    let g = dy.data[((n * out_ch + o) * out_h + i) * out_w + j];
                    for c in 0..in_ch {
                        for u in 0..k {
                            for v in 0..k {
                                let row = (i * stride + u) as isize - padding as isize;
                                let col = (j * stride + v) as isize - padding as isize;
                                if row >= 0 && col >= 0 && (row as usize) < in_h && (col as usize) < in_w {
                                    dx[((n * in_ch + c) * in_h + row as usize) * in_w + col as usize] +=
                                        g * w.data[((o * in_ch + c) * k + u) * k + v];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    dx
}

/// dw[o,c,u,v] = Σ_n,i,j dy[n,o,i,j] · x[n,c, s·i+u−p, s·j+v−p]
pub(super) fn conv2d_backward_weight(
    dy: &Tensor,
    x: &Tensor,
    stride: usize,
    padding: usize,
    dw_shape: &[usize],
) -> Vec<f32> {
    let [batch, out_ch, out_h, out_w] = dy.shape[..] else { unreachable!() };
    let [_, in_ch, k, _] = dw_shape[..] else { unreachable!() };
    let mut dw = Vec::with_capacity(out_ch * in_ch * k * k);
    for o in 0..out_ch {
        for c in 0..in_ch {
            for u in 0..k {
                for v in 0..k {
                    let mut sum = 0.0;
                    for n in 0..batch {
                        for i in 0..out_h {
                            for j in 0..out_w {
                                let row = (i * stride + u) as isize - padding as isize;
                                let col = (j * stride + v) as isize - padding as isize;
                                sum += dy.data[((n * out_ch + o) * out_h + i) * out_w + j] * padded(x, n, c, row, col);
                            }
                        }
                    }
                    dw.push(sum);
                }
            }
        }
    }
    dw
}

/// Geometry of one convolution.
struct Conv {
    channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    out_height: usize,
    out_width: usize,
}

impl Conv {
    fn new(x_shape: &[usize], kernel: usize, stride: usize, padding: usize, out_hw: [usize; 2]) -> Self {
        Conv {
            channels: x_shape[1],
            height: x_shape[2],
            width: x_shape[3],
            kernel,
            stride,
            padding,
            out_height: out_hw[0],
            out_width: out_hw[1],
        }
    }

    fn patch(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    fn pixels(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Calls f(row of the column matrix, output pixel, input offset) for every
    /// in-bounds input tap of one image: the im2col index map.
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let k = self.kernel;
        for c in 0..self.channels {
            for u in 0..k {
                for v in 0..k {
                    let row = (c * k + u) * k + v;
                    for i in 0..self.out_height {
                        let r = (i * self.stride + u) as isize - self.padding as isize;
                        if r < 0 || r as usize >= self.height {
                            continue;
                        }
                        for j in 0..self.out_width {
                            let s = (j * self.stride + v) as isize - self.padding as isize;
                            if s >= 0 && (s as usize) < self.width {
                                let offset = (c * self.height + r as usize) * self.width + s as usize;
                                f(row, i * self.out_width + j, offset);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The column matrix [C·K·K, H'·W'] of one image (zero where the kernel hangs over the edge).
    fn im2col(&self, image: &[f32], col: &mut [f32]) {
        col.fill(0.0);
        let pixels = self.pixels();
        self.for_each_tap(|row, pixel, offset| col[row * pixels + pixel] = image[offset]);
    }

    /// Adds the column matrix back onto one image's gradient.
    fn col2im(&self, col: &[f32], image: &mut [f32]) {
        let pixels = self.pixels();
        self.for_each_tap(|row, pixel, offset| image[offset] += col[row * pixels + pixel]);
    }
}

pub(super) fn conv2d_fast(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    padding: usize,
    out_shape: &[usize],
) -> Vec<f32> {
    let conv = Conv::new(&x.shape, w.shape[2], stride, padding, [out_shape[2], out_shape[3]]);
    let (outs, patch, pixels) = (w.shape[0], conv.patch(), conv.pixels());
    let image_len = x.shape[1..].iter().product::<usize>();
    let mut y = vec![0.0; out_shape.iter().product()];
    per_chunk(&mut y, outs * pixels, |n, y_n| {
        let mut col = vec![0.0; patch * pixels];
        conv.im2col(&x.data[n * image_len..(n + 1) * image_len], &mut col);
        for (o, row) in y_n.chunks_mut(pixels).enumerate() {
            row.fill(b.data[o]);
        }
        // y[o, p] += Σ_r w[o, r] · col[r, p]
        gemm(outs, patch, pixels, &w.data, (patch, 1), &col, (pixels, 1), y_n, (pixels, 1), 1.0);
    });
    y
}

pub(super) fn conv2d_backward_input_fast(
    dy: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dx_shape: &[usize],
) -> Vec<f32> {
    let conv = Conv::new(dx_shape, w.shape[2], stride, padding, [dy.shape[2], dy.shape[3]]);
    let (outs, patch, pixels) = (w.shape[0], conv.patch(), conv.pixels());
    let image_len = dx_shape[1..].iter().product::<usize>();
    let mut dx = vec![0.0; dx_shape.iter().product()];
    per_chunk(&mut dx, image_len, |n, dx_n| {
        let mut col = vec![0.0; patch * pixels];
        // col[r, p] = Σ_o w[o, r] · dy[o, p]
        let dy_n = &dy.data[n * outs * pixels..(n + 1) * outs * pixels];
        gemm(patch, outs, pixels, &w.data, (1, patch), dy_n, (pixels, 1), &mut col, (pixels, 1), 0.0);
        conv.col2im(&col, dx_n);
    });
    dx
}

pub(super) fn conv2d_backward_weight_fast(
    dy: &Tensor,
    x: &Tensor,
    stride: usize,
    padding: usize,
    dw_shape: &[usize],
) -> Vec<f32> {
    let conv = Conv::new(&x.shape, dw_shape[2], stride, padding, [dy.shape[2], dy.shape[3]]);
    let (outs, patch, pixels) = (dw_shape[0], conv.patch(), conv.pixels());
    let batch = x.shape[0];
    let image_len = x.shape[1..].iter().product::<usize>();
    // Each image's dW = dy[n] (O × P) · col[n]ᵀ (P × R); partial sums per image, then summed.
    let mut partial = vec![0.0; batch * outs * patch];
    per_chunk(&mut partial, outs * patch, |n, dw_n| {
        let mut col = vec![0.0; patch * pixels];
        conv.im2col(&x.data[n * image_len..(n + 1) * image_len], &mut col);
        let dy_n = &dy.data[n * outs * pixels..(n + 1) * outs * pixels];
        gemm(outs, pixels, patch, dy_n, (pixels, 1), &col, (1, pixels), dw_n, (patch, 1), 0.0);
    });
    let mut dw = vec![0.0; outs * patch];
    for chunk in partial.chunks(outs * patch) {
        dw.iter_mut().zip(chunk).for_each(|(d, p)| *d += p);
    }
    dw
}
