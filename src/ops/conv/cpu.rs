//! The convolution's CPU twin (direct loops, obviously right) and its fast
//! version for the CPU device (im2col + GEMM, split over the batch; the
//! AVX-512 shift kernels in `shift.rs` where they apply).

use std::ops::Range;

#[cfg(target_arch = "x86_64")]
use crate::ops::avx512;
use crate::ops::conv_output_size;
use crate::ops::fast_cpu::{gemm, output_buffer, per_chunk_with_scratch, sum_over};
use crate::tensor::{numel, Tensor};

#[cfg(target_arch = "x86_64")]
mod shift;

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

/// cols[n, r, q] = x[n, c, stride·i+u−pad, stride·j+v−pad] for input index
/// r = (c, u, v) and output pixel q = (i, j), zero in the padding (`Im2col`'s twin).
pub(super) fn im2col(x: &Tensor, k: usize, stride: usize, padding: usize, out: &[usize]) -> Vec<f32> {
    let [_, channels, h, w] = x.shape[..] else { unreachable!("NCHW") };
    let (depth, pixels) = (out[1], out[2]);
    let [_, out_w] = conv_output_size([h, w], k, stride, padding).expect("Im2col's output shape was checked");
    let mut cols = Vec::with_capacity(numel(out));
    for n in 0..x.shape[0] {
        for r in 0..depth {
            let (c, u, v) = (r / (k * k), (r % (k * k)) / k, r % k);
            for q in 0..pixels {
                let row = ((q / out_w) * stride + u).checked_sub(padding).filter(|&row| row < h);
                let col = ((q % out_w) * stride + v).checked_sub(padding).filter(|&col| col < w);
                cols.push(match (row, col) {
                    (Some(row), Some(col)) => x.data[((n * channels + c) * h + row) * w + col],
                    _ => 0.0,
                });
            }
        }
    }
    cols
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

    /// Stride 1 and an output of the input's size (a 3×3 kernel with padding
    /// 1, as in the seed net): then row (c, u, v) of the column matrix is
    /// plane c shifted by u − p rows and v − p columns, one copy of the
    /// plane rather than a short copy per output row.
    fn is_shift(&self) -> bool {
        self.stride == 1 && self.out_height == self.height && self.out_width == self.width
    }

    /// Calls f(input channel, column-matrix row, shift) for every (c, u, v) of a shift convolution.
    fn for_each_shift(&self, mut f: impl FnMut(usize, usize, &Shift)) {
        let (k, p, w) = (self.kernel, self.padding as isize, self.width as isize);
        let plane = self.height * self.width;
        for u in 0..k {
            for v in 0..k {
                let columns = v as isize - p;
                let offset = (u as isize - p) * w + columns;
                let shift = Shift {
                    plane,
                    width: self.width,
                    offset,
                    start: (-offset).clamp(0, plane as isize) as usize,
                    end: (plane as isize - offset).clamp(0, plane as isize) as usize,
                    columns,
                };
                for c in 0..self.channels {
                    f(c, (c * k + u) * k + v, &shift);
                }
            }
        }
    }

    /// The column matrix [C·K·K, H'·W'] of one image (zero where the kernel
    /// hangs over the edge), its rows `row_len` apart in `col`.
    fn im2col(&self, image: &[f32], col: &mut [f32], row_len: usize) {
        if self.is_shift() {
            return self.for_each_shift(|c, row, shift| {
                let out = &mut col[row * row_len..][..shift.plane];
                out[..shift.start].fill(0.0);
                out[shift.end..].fill(0.0);
                let from = &image[c * shift.plane..][..shift.plane];
                out[shift.start..shift.end].copy_from_slice(&from[shift.source()]);
                shift.zero_wrapped(out);
            });
        }
        let (width, stride) = (self.out_width, self.stride);
        self.for_each_run(|row, i, run| {
            let out = &mut col[row * row_len + i * width..][..width];
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

    /// The column matrices of `images` (consecutive images) side by side in
    /// `col`: [C·K·K, images·H'·W'].
    fn im2col_images(&self, images: &[f32], col: &mut [f32]) {
        let image_len = self.channels * self.height * self.width;
        let row_len = images.len() / image_len * self.pixels();
        for (g, image) in images.chunks_exact(image_len).enumerate() {
            self.im2col(image, &mut col[g * self.pixels()..], row_len);
        }
    }

    /// Adds the column matrix (rows `row_len` apart) back onto one image's gradient.
    fn col2im(&self, col: &mut [f32], image: &mut [f32], row_len: usize) {
        if self.is_shift() {
            return self.for_each_shift(|c, row, shift| {
                let from = &mut col[row * row_len..][..shift.plane];
                shift.zero_wrapped(from);
                let to = &mut image[c * shift.plane..][..shift.plane];
                to[shift.source()].iter_mut().zip(&from[shift.start..shift.end]).for_each(|(d, s)| *d += s);
            });
        }
        let (width, stride) = (self.out_width, self.stride);
        self.for_each_run(|row, i, run| {
            let Some((first, columns)) = run else { return };
            let from = &col[row * row_len + i * width..][columns.clone()];
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

/// One tap (u, v) of a shift convolution: output pixel q reads input
/// pixel q + offset of the flattened plane, for q in start..end, except in
/// the columns that wrap around to the next or previous row.
struct Shift {
    plane: usize,
    width: usize,
    offset: isize,
    start: usize,
    end: usize,
    /// v − p: the column shift (negative: the first −columns columns wrap; positive: the last columns).
    columns: isize,
}

impl Shift {
    /// The input pixels that output pixels start..end read.
    fn source(&self) -> Range<usize> {
        if self.start >= self.end {
            return 0..0; // the whole map reads the padding (a kernel larger than the image)
        }
        (self.start as isize + self.offset) as usize..(self.end as isize + self.offset) as usize
    }

    /// Zeroes the columns of a map (one column-matrix row) whose input column lies outside the image.
    fn zero_wrapped(&self, map: &mut [f32]) {
        let wrapped = self.columns.unsigned_abs().min(self.width);
        let columns = if self.columns < 0 { 0..wrapped } else { self.width - wrapped..self.width };
        // A column at a time, down the map: a fill per row was a memset call for one
        // value (a 3×3 kernel wraps by one column), 5 % of the step.
        for column in columns {
            map[column..].iter_mut().step_by(self.width).for_each(|v| *v = 0.0);
        }
    }
}

/// Images whose weight-gradient products are summed into one partial sum,
/// whatever the GEMM's blocks: the same summation order on any number of threads.
const IMAGES_PER_SUM: usize = 8;

/// Images whose column matrices go side by side into one GEMM, for maps of
/// `pixels` output pixels: on its own, a 7×7 or 14×14 map makes a product
/// too narrow for the GEMM's kernels (conv2 ran at 10–19 GFLOP/s that way).
/// A power of two no larger than `IMAGES_PER_SUM`, so that it divides it.
fn images_per_gemm(pixels: usize) -> usize {
    const COLUMNS: usize = 512;
    let images = (COLUMNS / pixels.max(1)).clamp(1, IMAGES_PER_SUM);
    1 << images.ilog2()
}

/// Maps [images, C, P] as the side-by-side matrix [C, images·P] of a batched
/// GEMM: copied into `side`, or `maps` itself when it holds one image.
fn side_by_side<'a>(maps: &'a [f32], channels: usize, pixels: usize, side: &'a mut [f32]) -> &'a [f32] {
    if maps.len() == channels * pixels {
        return maps;
    }
    let row_len = maps.len() / channels;
    let side = &mut side[..maps.len()];
    for (g, image) in maps.chunks_exact(channels * pixels).enumerate() {
        for (c, map) in image.chunks_exact(pixels).enumerate() {
            side[c * row_len + g * pixels..][..pixels].copy_from_slice(map);
        }
    }
    side
}

/// The side-by-side matrix [C, images·P] → maps [images, C, P].
fn from_side_by_side(side: &[f32], channels: usize, pixels: usize, maps: &mut [f32]) {
    let row_len = maps.len() / channels;
    for (g, image) in maps.chunks_exact_mut(channels * pixels).enumerate() {
        for (c, map) in image.chunks_exact_mut(pixels).enumerate() {
            map.copy_from_slice(&side[c * row_len + g * pixels..][..pixels]);
        }
    }
}

/// Y [O, images·P] = W [O, R] · col [R, images·P] + bias, over `images_per_gemm` images at a time.
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
    let mut y = output_buffer(out_shape.iter().product());
    // A patch of 9 (conv1: one input channel) is too short a sum to pay for
    // the shift kernel's stores: the im2col GEMM is 20 % faster there.
    #[cfg(target_arch = "x86_64")]
    if conv.is_shift() && patch >= 16 && avx512::available() {
        conv.shift_conv_images(&x.data, &w.data, Some(&b.data), &mut y, outs);
        return y;
    }
    let group = images_per_gemm(pixels);
    let image_len = x.shape[1..].iter().product::<usize>();
    let scratch = (patch + outs) * group * pixels;
    per_chunk_with_scratch(&mut y, group * outs * pixels, scratch, |chunk, y_chunk, scratch| {
        let images = y_chunk.len() / (outs * pixels);
        let row_len = images * pixels;
        let (col, side) = scratch.split_at_mut(patch * row_len);
        conv.im2col_images(&x.data[chunk * group * image_len..][..images * image_len], col);
        // One image's product is already in y's layout.
        let product = if images == 1 { &mut *y_chunk } else { &mut side[..outs * row_len] };
        for (o, row) in product.chunks_exact_mut(row_len).enumerate() {
            row.fill(b.data[o]);
        }
        gemm(outs, patch, row_len, &w.data, (patch, 1), col, (row_len, 1), product, (row_len, 1), 1.0);
        if images > 1 {
            from_side_by_side(&side[..outs * row_len], outs, pixels, y_chunk);
        }
    });
    y
}

/// col [R, images·P] = Wᵀ [R, O] · dY [O, images·P], added back onto the images' gradients.
pub(super) fn conv2d_backward_input_fast(
    dy: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dx_shape: &[usize],
) -> Vec<f32> {
    let conv = Conv::new(dx_shape, w.shape[2], stride, padding, [dy.shape[2], dy.shape[3]]);
    let (outs, patch, pixels) = (w.shape[0], conv.patch(), conv.pixels());
    #[cfg(target_arch = "x86_64")]
    if conv.is_shift() && avx512::available() {
        let mut dx = output_buffer(dx_shape.iter().product());
        conv.shift_backward_input(&dy.data, w, &mut dx);
        return dx;
    }
    let group = images_per_gemm(pixels);
    let image_len = dx_shape[1..].iter().product::<usize>();
    let mut dx = vec![0.0; dx_shape.iter().product()];
    let scratch = (patch + outs) * group * pixels;
    per_chunk_with_scratch(&mut dx, group * image_len, scratch, |chunk, dx_chunk, scratch| {
        let images = dx_chunk.len() / image_len;
        let row_len = images * pixels;
        let (col, side) = scratch.split_at_mut(patch * row_len);
        let dy_chunk = &dy.data[chunk * group * outs * pixels..][..images * outs * pixels];
        let dy_side = side_by_side(dy_chunk, outs, pixels, side);
        gemm(patch, outs, row_len, &w.data, (1, patch), dy_side, (row_len, 1), col, (row_len, 1), 0.0);
        for (g, dx_n) in dx_chunk.chunks_exact_mut(image_len).enumerate() {
            conv.col2im(&mut col[g * pixels..], dx_n, row_len);
        }
    });
    dx
}

/// dW = Σ over blocks of images of dY [O, images·P] · colᵀ [images·P, R].
pub(super) fn conv2d_backward_weight_fast(
    dy: &Tensor,
    x: &Tensor,
    stride: usize,
    padding: usize,
    dw_shape: &[usize],
) -> Vec<f32> {
    let conv = Conv::new(&x.shape, dw_shape[2], stride, padding, [dy.shape[2], dy.shape[3]]);
    let (outs, patch, pixels) = (dw_shape[0], conv.patch(), conv.pixels());
    // Fewer than 16 output channels would leave the kernel's vectors part empty
    // (conv1's 8: the im2col path is twice as fast there).
    #[cfg(target_arch = "x86_64")]
    if conv.is_shift() && outs >= 16 && avx512::available() {
        return conv.shift_weight_gradient(&dy.data, &x.data, outs);
    }
    let batch = x.shape[0];
    let group = images_per_gemm(pixels);
    let image_len = x.shape[1..].iter().product::<usize>();
    let scratch = (patch + outs) * group * pixels;
    sum_over(batch.div_ceil(group), IMAGES_PER_SUM / group, outs * patch, scratch, |block, dw, scratch| {
        let first = block * group;
        let images = group.min(batch - first);
        let row_len = images * pixels;
        let (col, side) = scratch.split_at_mut(patch * row_len);
        conv.im2col_images(&x.data[first * image_len..][..images * image_len], col);
        let dy_side = side_by_side(&dy.data[first * outs * pixels..][..images * outs * pixels], outs, pixels, side);
        gemm(outs, row_len, patch, dy_side, (row_len, 1), col, (1, row_len), dw, (patch, 1), 1.0);
    })
}
