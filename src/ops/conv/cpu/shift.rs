//! The convolutions whose output is their input's size at stride 1 (the
//! seed net's 3×3, padding 1) on the AVX-512 shift kernels
//! (`ops::avx512::shift_conv`, `shift_weight_gradient`): the products read
//! straight from the images, no column matrices. The host side: the split
//! over the batch, the stacking of small maps, the padded and transposed
//! copies the kernels read.

use super::{from_side_by_side, side_by_side, Conv, IMAGES_PER_SUM};
use crate::ops::avx512;
use crate::ops::avx512::shift_conv::{ShiftOperands, ShiftTaps};
use crate::ops::avx512::shift_weight_gradient::{GradientOperands, PaddedImage};
use crate::ops::fast_cpu::{per_chunk, per_chunk_with_scratch, sum_over};
use crate::tensor::Tensor;

impl Conv {
    /// dx of a shift convolution: the transposed convolution is the shift
    /// convolution of dy with each kernel turned by 180° and in and out swapped.
    pub(super) fn shift_backward_input(&self, dy: &[f32], w: &Tensor, dx: &mut [f32]) {
        let flipped = flipped_transposed(w);
        let over_dy = Conv { channels: w.shape[0], ..*self };
        over_dy.shift_conv_images(dy, &flipped, None, dx, self.channels);
    }

    /// y[n] = w · the column matrix of image n (+ bias) for every image of
    /// `images`, a shift convolution's GEMM read straight from the image
    /// (`avx512::shift_conv`), in parallel over the images.
    pub(super) fn shift_conv_images(
        &self,
        images: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        outs: usize,
    ) {
        let pixels = self.pixels();
        let (image_len, out_len) = (self.channels * pixels, outs * pixels);
        let batch = y.len() / out_len;
        assert!(images.len() == batch * image_len && w.len() == outs * self.patch());
        assert!(bias.is_none_or(|b| b.len() == outs));
        let group = stacked_images(pixels);
        let stacked_taps = |count: usize| ShiftTaps::new([count, self.height, self.width], self.kernel, self.padding);
        // `readable`: the slice `images` lies in, which the kernel may read around it.
        let product = |taps: &ShiftTaps, images: &[f32], readable: &[f32], y: &mut [f32]| {
            assert!(images.len() == self.channels * taps.pixels() && y.len() == outs * taps.pixels());
            let operands = ShiftOperands {
                weights: w.as_ptr(),
                lda: self.patch(),
                image: images.as_ptr(),
                channels: self.channels,
                out: y.as_mut_ptr(),
                bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
                readable: (readable.as_ptr_range().start, readable.as_ptr_range().end),
            };
            // SAFETY: AVX-512 is there (the caller checked), and the asserts
            // keep the weights, images, outputs and bias inside their slices.
            unsafe { avx512::shift_conv::shift_conv(outs, taps, operands) }
        };
        let taps = stacked_taps(group);
        // Images one at a time where a map fills the kernel's vectors well
        // (no copies); else `group` of them stacked, side by side in scratch.
        if group == 1 {
            return per_chunk(y, out_len, |n, y_n| product(&taps, &images[n * image_len..][..image_len], images, y_n));
        }
        per_chunk_with_scratch(
            y,
            group * out_len,
            (self.channels + outs) * group * pixels,
            |chunk, y_chunk, scratch| {
                let count = y_chunk.len() / out_len;
                let (x_side, y_side) = scratch.split_at_mut(self.channels * group * pixels);
                let images = &images[chunk * group * image_len..][..count * image_len];
                let x_side = side_by_side(images, self.channels, pixels, x_side);
                let y_side = &mut y_side[..count * out_len];
                if count == group {
                    product(&taps, x_side, x_side, y_side);
                } else {
                    product(&stacked_taps(count), x_side, x_side, y_side);
                }
                from_side_by_side(y_side, outs, pixels, y_chunk);
            },
        );
    }

    /// dw = Σ over the batch of the shifted image planes times dy
    /// (`avx512::shift_weight_gradient`), image by image in fixed groups of
    /// `IMAGES_PER_SUM`, as the im2col path sums them.
    pub(super) fn shift_weight_gradient(&self, dy: &[f32], x: &[f32], outs: usize) -> Vec<f32> {
        let pixels = self.pixels();
        let (image_len, dy_len, patch) = (self.channels * pixels, outs * pixels, self.patch());
        let batch = x.len() / image_len;
        assert!(x.len() == batch * image_len && dy.len() == batch * dy_len);
        let geometry = PaddedImage::new(self.height, self.width, self.kernel, self.padding);
        let padded_len = self.channels * geometry.plane;
        let scratch = padded_len + dy_len + patch * outs;
        sum_over(batch, IMAGES_PER_SUM, outs * patch, scratch, |n, dw, scratch| {
            let (padded, rest) = scratch.split_at_mut(padded_len);
            let (dy_t, dw_t) = rest.split_at_mut(dy_len);
            if n % IMAGES_PER_SUM == 0 {
                dw_t.fill(0.0);
            }
            self.pad(&x[n * image_len..][..image_len], padded);
            // SAFETY: AVX-512 is there (the caller checked).
            unsafe { avx512::transpose(&dy[n * dy_len..][..dy_len], outs, pixels, dy_t) };
            let operands = GradientOperands {
                padded: padded.as_ptr(),
                channels: self.channels,
                dy_t: dy_t.as_ptr(),
                outs,
                dw_t: dw_t.as_mut_ptr(),
            };
            // SAFETY: AVX-512 is there (the caller checked), and the three
            // buffers were cut to the sizes the kernel reads and writes.
            unsafe { avx512::shift_weight_gradient::shift_weight_gradient(&geometry, operands) };
            // The group's last image: its sums into its accumulator.
            if n % IMAGES_PER_SUM == IMAGES_PER_SUM - 1 || n == batch - 1 {
                for (o, row) in dw.chunks_exact_mut(patch).enumerate() {
                    row.iter_mut().enumerate().for_each(|(r, d)| *d += dw_t[r * outs + o]);
                }
            }
        })
    }

    /// The image's planes with `padding` zeros around each (`PaddedImage`'s layout).
    fn pad(&self, image: &[f32], padded: &mut [f32]) {
        let (p, w) = (self.padding, self.width);
        let padded_width = w + 2 * p;
        padded.fill(0.0);
        for (plane, to) in
            image.chunks_exact(self.height * w).zip(padded.chunks_exact_mut(padded.len() / self.channels))
        {
            for (row, from) in plane.chunks_exact(w).enumerate() {
                to[(row + p) * padded_width + p..][..w].copy_from_slice(from);
            }
        }
    }
}

/// Images whose maps `shift_conv_images` stacks into one: as many as fill
/// at least 128 pixels (8 vectors), so that a map's last, part-filled
/// vector wastes little (a 7×7 map alone fills 49 of 64 lanes).
fn stacked_images(pixels: usize) -> usize {
    128usize.div_ceil(pixels.max(1)).next_power_of_two()
}

/// w [O, C, K, K] as [C, O, K, K] with each kernel turned by 180°: the
/// weights of the transposed convolution.
fn flipped_transposed(w: &Tensor) -> Vec<f32> {
    let [outs, channels, k, _] = w.shape[..] else { unreachable!("OIHW") };
    let taps = k * k;
    let mut flipped = vec![0.0; w.data.len()];
    for o in 0..outs {
        for c in 0..channels {
            for t in 0..taps {
                flipped[(c * outs + o) * taps + taps - 1 - t] = w.data[(o * channels + c) * taps + t];
            }
        }
    }
    flipped
}
