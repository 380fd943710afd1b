//! The convolution's CPU twin (direct loops, obviously right) and its fast
//! version for the CPU device (im2col + GEMM, split over the batch).

use std::ops::Range;

use crate::ops::fast_cpu::{gemm, per_chunk_with_scratch, sum_over};
use crate::tensor::Tensor;

/// One product term of a convolution: the output element it adds to (an
/// index into y or dy), the weight element, and the input element it reads
/// (None in the zero padding).
struct Term {
    out: usize,
    weight: usize,
    input: Option<usize>,
}

/// Every term of the convolution of an input of `x_shape` into `y_shape`,
/// in the order (n, o, i, j, c, u, v): the one loop nest the three twins share.
fn for_each_term(
    x_shape: &[usize],
    y_shape: &[usize],
    k: usize,
    stride: usize,
    padding: usize,
    mut f: impl FnMut(Term),
) {
    let [batch, in_ch, in_h, in_w] = x_shape[..] else { unreachable!() };
    let [_, out_ch, out_h, out_w] = y_shape[..] else { unreachable!() };
    // The input coordinate of output position `i` and kernel tap `u`, if inside the input.
    let source = |i: usize, u: usize, size: usize| (i * stride + u).checked_sub(padding).filter(|&r| r < size);
    for n in 0..batch {
        for o in 0..out_ch {
            for i in 0..out_h {
                for j in 0..out_w {
                    let out = ((n * out_ch + o) * out_h + i) * out_w + j;
                    for c in 0..in_ch {
                        for u in 0..k {
                            for v in 0..k {
                                let weight = ((o * in_ch + c) * k + u) * k + v;
                                let input = source(i, u, in_h)
                                    .zip(source(j, v, in_w))
                                    .map(|(row, col)| ((n * in_ch + c) * in_h + row) * in_w + col);
                                f(Term { out, weight, input });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y[n,o,i,j] = b[o] + Σ_c,u,v w[o,c,u,v] · x[n,c, s·i+u−p, s·j+v−p]
pub(super) fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, stride: usize, padding: usize, y_shape: &[usize]) -> Vec<f32> {
    let pixels = y_shape[2] * y_shape[3];
    let mut y: Vec<f32> = (0..y_shape[0] * y_shape[1]).flat_map(|p| vec![b.data[p % y_shape[1]]; pixels]).collect();
    for_each_term(&x.shape, y_shape, w.shape[2], stride, padding, |t| {
        y[t.out] += w.data[t.weight] * t.input.map_or(0.0, |i| x.data[i]);
    });
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
    let mut dx = vec![0.0; dx_shape.iter().product()];
    for_each_term(dx_shape, &dy.shape, w.shape[2], stride, padding, |t| {
        if let Some(i) = t.input {
            dx[i] += dy.data[t.out] * w.data[t.weight];
        }
    });
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
    let mut dw = vec![0.0; dw_shape.iter().product()];
    for_each_term(&x.shape, &dy.shape, dw_shape[2], stride, padding, |t| {
        dw[t.weight] += dy.data[t.out] * t.input.map_or(0.0, |i| x.data[i]);
    });
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

    /// The output columns `j` whose input column `j·stride + v − padding`
    /// lies inside the image, as a range.
    fn valid_columns(&self, v: usize) -> Range<usize> {
        let (s, p) = (self.stride, self.padding);
        let first = p.saturating_sub(v).div_ceil(s);
        let end = if self.width + p > v { ((self.width - 1 + p - v) / s + 1).min(self.out_width) } else { 0 };
        first..end.max(first)
    }

    /// Calls f(column-matrix row, output row i, run) for every (c, u, v) and
    /// every output row: the im2col index map, a run of columns at a time.
    /// The run is None where the kernel row lies in the padding, else the
    /// input offset of its first valid column and the valid output columns.
    fn for_each_run(&self, mut f: impl FnMut(usize, usize, Option<(usize, Range<usize>)>)) {
        let k = self.kernel;
        for c in 0..self.channels {
            for u in 0..k {
                for v in 0..k {
                    let row = (c * k + u) * k + v;
                    let columns = self.valid_columns(v);
                    for i in 0..self.out_height {
                        let r = (i * self.stride + u).checked_sub(self.padding).filter(|&r| r < self.height);
                        let run = r.filter(|_| !columns.is_empty()).map(|r| {
                            let first =
                                (c * self.height + r) * self.width + columns.start * self.stride + v - self.padding;
                            (first, columns.clone())
                        });
                        f(row, i, run);
                    }
                }
            }
        }
    }

    /// The column matrix [C·K·K, H'·W'] of one image (zero where the kernel hangs over the edge).
    fn im2col(&self, image: &[f32], col: &mut [f32]) {
        let (pixels, width, stride) = (self.pixels(), self.out_width, self.stride);
        self.for_each_run(|row, i, run| {
            let out = &mut col[row * pixels + i * width..][..width];
            let Some((first, columns)) = run else { return out.fill(0.0) };
            out[..columns.start].fill(0.0);
            out[columns.end..].fill(0.0);
            if stride == 1 {
                out[columns.clone()].copy_from_slice(&image[first..first + columns.len()]);
            } else {
                for (k, j) in columns.enumerate() {
                    out[j] = image[first + k * stride];
                }
            }
        });
    }

    /// Adds the column matrix back onto one image's gradient.
    fn col2im(&self, col: &[f32], image: &mut [f32]) {
        let (pixels, width, stride) = (self.pixels(), self.out_width, self.stride);
        self.for_each_run(|row, i, run| {
            let Some((first, columns)) = run else { return };
            let from = &col[row * pixels + i * width..][columns.clone()];
            if stride == 1 {
                image[first..first + from.len()].iter_mut().zip(from).for_each(|(d, s)| *d += s);
            } else {
                for (k, s) in from.iter().enumerate() {
                    image[first + k * stride] += s;
                }
            }
        });
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
    per_chunk_with_scratch(&mut y, outs * pixels, patch * pixels, |n, y_n, col| {
        conv.im2col(&x.data[n * image_len..(n + 1) * image_len], col);
        for (o, row) in y_n.chunks_mut(pixels).enumerate() {
            row.fill(b.data[o]);
        }
        // y[o, p] += Σ_r w[o, r] · col[r, p]
        gemm(outs, patch, pixels, &w.data, (patch, 1), col, (pixels, 1), y_n, (pixels, 1), 1.0);
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
    per_chunk_with_scratch(&mut dx, image_len, patch * pixels, |n, dx_n, col| {
        // col[r, p] = Σ_o w[o, r] · dy[o, p]
        let dy_n = &dy.data[n * outs * pixels..(n + 1) * outs * pixels];
        gemm(patch, outs, pixels, &w.data, (1, patch), dy_n, (pixels, 1), col, (pixels, 1), 0.0);
        conv.col2im(col, dx_n);
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
    // dW = Σ_n dy[n] (O × P) · col[n]ᵀ (P × R), accumulated per task, then summed.
    sum_over(batch, outs * patch, patch * pixels, |n, dw, col| {
        conv.im2col(&x.data[n * image_len..(n + 1) * image_len], col);
        let dy_n = &dy.data[n * outs * pixels..(n + 1) * outs * pixels];
        gemm(outs, pixels, patch, dy_n, (pixels, 1), col, (1, pixels), dw, (patch, 1), 1.0);
    })
}
