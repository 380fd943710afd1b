//! Direct 2-D convolution and its two gradients, as nested loops.

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
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, stride: usize, padding: usize, out_shape: &[usize]) -> Vec<f32> {
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
pub fn conv2d_backward_input(dy: &Tensor, w: &Tensor, stride: usize, padding: usize, dx_shape: &[usize]) -> Vec<f32> {
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
pub fn conv2d_backward_weight(dy: &Tensor, x: &Tensor, stride: usize, padding: usize, dw_shape: &[usize]) -> Vec<f32> {
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
