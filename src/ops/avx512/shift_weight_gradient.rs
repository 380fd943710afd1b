//! A shift convolution's weight gradient as an outer-product GEMM read
//! where the data lies: dwᵀ[(c, t), o] += Σ_q x[c, q + offset(t)] · dyᵀ[q, o].
//! Row (c, t) of the left matrix is the zero-padded plane c read from tap
//! t's corner, so each of its values is one broadcast from the padded
//! image; dy transposed gives the right matrix contiguous rows of output
//! channels. No column matrix is written and no sums are added across lanes.

use std::arch::x86_64::*;

use super::lane_masks;

/// Vectors of output channels (64) one kernel call covers.
const VECTORS: usize = 4;
/// Rows (input channel, tap) one kernel call covers: 24 sums in registers.
const ROWS: usize = 6;

/// One image's padded planes and where each output pixel's window starts in them.
pub struct PaddedImage {
    /// Values from a window's corner to tap t, for every tap.
    pub tap_offsets: Vec<usize>,
    /// The corner of output pixel q's window, for every q.
    pub corners: Vec<u32>,
    /// Values in one padded plane.
    pub plane: usize,
}

impl PaddedImage {
    /// The geometry of `height`×`width` planes padded by `padding` for a `kernel`×`kernel` tap set.
    pub fn new(height: usize, width: usize, kernel: usize, padding: usize) -> Self {
        let padded_width = width + 2 * padding;
        let plane = (height + 2 * padding) * padded_width;
        let tap_offsets = (0..kernel * kernel).map(|t| t / kernel * padded_width + t % kernel).collect();
        let corners = (0..height * width).map(|q| (q / width * padded_width + q % width) as u32).collect();
        PaddedImage { tap_offsets, corners, plane }
    }
}

/// The operands of `shift_weight_gradient` for one image.
#[derive(Clone, Copy)]
pub struct GradientOperands {
    /// [channels, plane]: the image, zero-padded (`PaddedImage`).
    pub padded: *const f32,
    pub channels: usize,
    /// [pixels, outs]: dy of the image, transposed.
    pub dy_t: *const f32,
    pub outs: usize,
    /// [channels · taps, outs]: the sums are added to it.
    pub dw_t: *mut f32,
}

/// dwᵀ[c·taps + t, o] += Σ_q padded[c, corner(q) + tap_offset(t)] · dyᵀ[q, o].
///
/// # Safety
/// `available()` must hold; `padded` must hold `channels` planes of
/// `geometry.plane` values, `dy_t` pixels × outs values, and `dw_t`
/// channels · taps × outs values that nothing else touches meanwhile.
#[target_feature(enable = "avx512f")]
pub unsafe fn shift_weight_gradient(geometry: &PaddedImage, operands: GradientOperands) {
    let rows = operands.channels * geometry.tap_offsets.len();
    for first_out in (0..operands.outs).step_by(16 * VECTORS) {
        let width = (operands.outs - first_out).min(16 * VECTORS);
        let masks: [__mmask16; VECTORS] = lane_masks(width);
        for first_row in (0..rows).step_by(ROWS) {
            let block = Block { geometry, operands, first_row, first_out, masks };
            macro_rules! by_rows {
                ($v:expr) => {
                    match rows - first_row {
                        1 => kernel::<1, $v>(&block),
                        2 => kernel::<2, $v>(&block),
                        3 => kernel::<3, $v>(&block),
                        4 => kernel::<4, $v>(&block),
                        5 => kernel::<5, $v>(&block),
                        _ => kernel::<ROWS, $v>(&block),
                    }
                };
            }
            match width.div_ceil(16) {
                1 => by_rows!(1),
                2 => by_rows!(2),
                3 => by_rows!(3),
                _ => by_rows!(VECTORS),
            }
        }
    }
}

/// One kernel call: rows `first_row..` of dwᵀ, its output channels from
/// `first_out` in vectors whose lanes are `masks`.
struct Block<'a> {
    geometry: &'a PaddedImage,
    operands: GradientOperands,
    first_row: usize,
    first_out: usize,
    masks: [__mmask16; VECTORS],
}

/// dwᵀ[R rows × 16V channels] += the rows' values over every pixel × dyᵀ.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize, const V: usize>(block: &Block) {
    let Block { geometry, operands, first_row, first_out, masks } = *block;
    let GradientOperands { padded, dy_t, outs, dw_t, .. } = operands;
    let taps = geometry.tap_offsets.len();
    // Where row (c, t) reads from a window's corner.
    let starts: [*const f32; R] = std::array::from_fn(|i| {
        let row = first_row + i;
        padded.add(row / taps * geometry.plane + geometry.tap_offsets[row % taps])
    });
    // Masked lanes may point past the end; they are neither read nor written.
    let sums_at = |i: usize, v: usize| dw_t.add((first_row + i) * outs + first_out).wrapping_add(16 * v);
    let mut sums: [[__m512; V]; R] =
        std::array::from_fn(|i| std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], sums_at(i, v))));
    for (q, &corner) in geometry.corners.iter().enumerate() {
        let dy_row = dy_t.add(q * outs + first_out);
        let dy: [__m512; V] = std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], dy_row.wrapping_add(16 * v)));
        for (row, start) in sums.iter_mut().zip(&starts) {
            let x = _mm512_set1_ps(*start.add(corner as usize));
            for (sum, &dy) in row.iter_mut().zip(&dy) {
                *sum = _mm512_fmadd_ps(x, dy, *sum);
            }
        }
    }
    for (i, row) in sums.iter().enumerate() {
        for (v, &sum) in row.iter().enumerate() {
            _mm512_mask_storeu_ps(sums_at(i, v), masks[v], sum);
        }
    }
}
