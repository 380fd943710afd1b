//! The fast CPU device: convolutions as im2col + GEMM (matrixmultiply's
//! sgemm) and the linear layers as one GEMM, split over the batch with rayon
//! on native targets; the full-resolution map ops (max pool, relu, the
//! octave add) in one pass split over planes. The rest are cheap and run on
//! the plain twins.
//! Tests hold these to the plain twins in `cpu::eval`.

use super::eval as reference_eval;
use crate::ops::{Op, ShapeError};
use crate::tensor::Tensor;

/// Evaluates `op` like `cpu::eval`, with the heavy ops on GEMM.
pub fn eval(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, ShapeError> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let out_shape = op.output_shape(&shapes)?;
    let data = match op {
        Op::Conv2d { stride, padding } => conv2d(inputs[0], inputs[1], inputs[2], *stride, *padding, &out_shape),
        Op::Conv2dBackwardInput { stride, padding, .. } => {
            conv2d_backward_input(inputs[0], inputs[1], *stride, *padding, &out_shape)
        }
        Op::Conv2dBackwardWeight { stride, padding, .. } => {
            conv2d_backward_weight(inputs[0], inputs[1], *stride, *padding, &out_shape)
        }
        Op::Linear => {
            let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
            let (batch, ins, outs) = (x.shape[0], x.shape[1], w.shape[0]);
            let mut y: Vec<f32> = (0..batch).flat_map(|_| b.data.iter().copied()).collect();
            // y[n,o] += Σ_i x[n,i] · w[o,i]
            gemm(batch, ins, outs, &x.data, (ins, 1), &w.data, (1, ins), &mut y, (outs, 1), 1.0);
            y
        }
        Op::LinearBackwardInput => {
            let (dy, w) = (inputs[0], inputs[1]);
            let (batch, outs, ins) = (dy.shape[0], w.shape[0], w.shape[1]);
            let mut dx = vec![0.0; batch * ins];
            gemm(batch, outs, ins, &dy.data, (outs, 1), &w.data, (ins, 1), &mut dx, (ins, 1), 0.0);
            dx
        }
        Op::LinearBackwardWeight => {
            let (dy, x) = (inputs[0], inputs[1]);
            let (batch, outs, ins) = (dy.shape[0], dy.shape[1], x.shape[1]);
            let mut dw = vec![0.0; outs * ins];
            gemm(outs, batch, ins, &dy.data, (1, outs), &x.data, (ins, 1), &mut dw, (ins, 1), 0.0);
            dw
        }
        Op::AddUpsampled2 => add_upsampled2(inputs[0], inputs[1]),
        Op::MaxPool2 => max_pool2(inputs[0], &out_shape),
        Op::Relu => {
            let mut y = inputs[0].data.clone();
            per_image(&mut y, 4096, |_, chunk| chunk.iter_mut().for_each(|v| *v = v.max(0.0)));
            y
        }
        _ => return reference_eval(op, inputs),
    };
    Ok(Tensor::new(&out_shape, data))
}

/// c = beta·c + a·b for an m×k `a` and a k×n `b`, each given with (row, column) strides.
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    (a_row, a_col): (usize, usize),
    b: &[f32],
    (b_row, b_col): (usize, usize),
    c: &mut [f32],
    (c_row, c_col): (usize, usize),
    beta: f32,
) {
    // Bounds: the last element each operand addresses must be inside its slice.
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(m > 0 && k > 0 && n > 0);
    assert!(last(m, k, a_row, a_col) < a.len() && last(k, n, b_row, b_col) < b.len());
    assert!(last(m, n, c_row, c_col) < c.len());
    // SAFETY: the asserts above keep every access inside the three slices,
    // and `c` is borrowed mutably while `a` and `b` are shared borrows.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_row as isize,
            a_col as isize,
            b.as_ptr(),
            b_row as isize,
            b_col as isize,
            beta,
            c.as_mut_ptr(),
            c_row as isize,
            c_col as isize,
        );
    }
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

/// Runs `f(image index, output chunk)` over the batch, in parallel on native targets.
fn per_image(out: &mut [f32], image_len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(image_len).enumerate().for_each(|(n, chunk)| f(n, chunk));
    }
    #[cfg(target_arch = "wasm32")]
    out.chunks_mut(image_len).enumerate().for_each(|(n, chunk)| f(n, chunk));
}

/// high + upsample2(low), row by row: each low row serves two output rows.
fn add_upsampled2(high: &Tensor, low: &Tensor) -> Vec<f32> {
    let [_, _, h, w] = low.shape[..] else { unreachable!() };
    let mut y = high.data.clone();
    per_image(&mut y, 4 * h * w, |plane, out| {
        for (r, out_row) in out.chunks_mut(2 * w).enumerate() {
            let low_row = &low.data[(plane * h + r / 2) * w..][..w];
            for (pair, &v) in out_row.chunks_mut(2).zip(low_row) {
                pair[0] += v;
                pair[1] += v;
            }
        }
    });
    y
}

/// The largest of each 2×2 window (the first on ties, as the twin).
fn max_pool2(x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    let [_, _, h, w] = x.shape[..] else { unreachable!() };
    let [_, _, out_h, out_w] = out_shape[..] else { unreachable!() };
    let mut y = vec![0.0; out_shape.iter().product()];
    per_image(&mut y, out_h * out_w, |plane, out| {
        let x = &x.data[plane * h * w..][..h * w];
        for (i, out_row) in out.chunks_mut(out_w).enumerate() {
            let (top, bottom) = (&x[2 * i * w..][..w], &x[(2 * i + 1) * w..][..w]);
            for (j, o) in out_row.iter_mut().enumerate() {
                let window = [top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]];
                *o = window[1..].iter().fold(window[0], |best, &v| if v > best { v } else { best });
            }
        }
    });
    y
}

fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, stride: usize, padding: usize, out_shape: &[usize]) -> Vec<f32> {
    let conv = Conv::new(&x.shape, w.shape[2], stride, padding, [out_shape[2], out_shape[3]]);
    let (outs, patch, pixels) = (w.shape[0], conv.patch(), conv.pixels());
    let image_len = x.shape[1..].iter().product::<usize>();
    let mut y = vec![0.0; out_shape.iter().product()];
    per_image(&mut y, outs * pixels, |n, y_n| {
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

fn conv2d_backward_input(dy: &Tensor, w: &Tensor, stride: usize, padding: usize, dx_shape: &[usize]) -> Vec<f32> {
    let conv = Conv::new(dx_shape, w.shape[2], stride, padding, [dy.shape[2], dy.shape[3]]);
    let (outs, patch, pixels) = (w.shape[0], conv.patch(), conv.pixels());
    let image_len = dx_shape[1..].iter().product::<usize>();
    let mut dx = vec![0.0; dx_shape.iter().product()];
    per_image(&mut dx, image_len, |n, dx_n| {
        let mut col = vec![0.0; patch * pixels];
        // col[r, p] = Σ_o w[o, r] · dy[o, p]
        let dy_n = &dy.data[n * outs * pixels..(n + 1) * outs * pixels];
        gemm(patch, outs, pixels, &w.data, (1, patch), dy_n, (pixels, 1), &mut col, (pixels, 1), 0.0);
        conv.col2im(&col, dx_n);
    });
    dx
}

fn conv2d_backward_weight(dy: &Tensor, x: &Tensor, stride: usize, padding: usize, dw_shape: &[usize]) -> Vec<f32> {
    let conv = Conv::new(&x.shape, dw_shape[2], stride, padding, [dy.shape[2], dy.shape[3]]);
    let (outs, patch, pixels) = (dw_shape[0], conv.patch(), conv.pixels());
    let batch = x.shape[0];
    let image_len = x.shape[1..].iter().product::<usize>();
    // Each image's dW = dy[n] (O × P) · col[n]ᵀ (P × R); partial sums per image, then summed.
    let mut partial = vec![0.0; batch * outs * patch];
    per_image(&mut partial, outs * patch, |n, dw_n| {
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
