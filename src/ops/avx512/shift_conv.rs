//! A stride-1 convolution whose output is its input's size (the seed net's
//! 3×3, padding 1) as a GEMM that reads the image where it lies: row
//! (c, u, v) of the im2col matrix is plane c shifted by one offset per tap
//! (u, v), so the microkernel loads it straight from the plane, masking the
//! lanes that fall in the padding. No column matrix is written, and one
//! image's output comes out in its own layout, so the batch needs no
//! side-by-side copies either (together 10–15 % of the step's time).

use std::arch::x86_64::*;

use super::lane_masks;

/// 16-lane vectors of pixels one microkernel call covers a row.
const VECTORS: usize = 2;
/// Output pixels one microkernel call covers.
const PANEL: usize = 16 * VECTORS;
/// Output rows (channels) one microkernel call covers.
const ROWS: usize = 8;

/// Where each tap of a shift convolution reads from, relative to the output
/// pixel, and which lanes of every 32-pixel panel it may read (the others
/// lie in the padding or past the map).
pub struct ShiftTaps {
    pixels: usize,
    offsets: Vec<isize>,
    /// [panel][tap]: the masks of the panel's two vectors.
    masks: Vec<[__mmask16; VECTORS]>,
}

impl ShiftTaps {
    /// The taps of a `kernel`×`kernel` convolution with `padding` over
    /// `images` maps of `height`×`width` stacked one above the other (a
    /// tap reaching into the next map reads padding).
    pub fn new([images, height, width]: [usize; 3], kernel: usize, padding: usize) -> Self {
        let pixels = images * height * width;
        let shifts: Vec<(isize, isize)> = (0..kernel * kernel)
            .map(|t| ((t / kernel) as isize - padding as isize, (t % kernel) as isize - padding as isize))
            .collect();
        let offsets = shifts.iter().map(|&(rows, columns)| rows * width as isize + columns).collect();
        let inside = |q: usize, (rows, columns): (isize, isize)| {
            let (r, s) = ((q / width % height) as isize + rows, (q % width) as isize + columns);
            q < pixels && (0..height as isize).contains(&r) && (0..width as isize).contains(&s)
        };
        let mut masks = Vec::new();
        for first in (0..pixels).step_by(PANEL) {
            for &shift in &shifts {
                let mask = |lane_base: usize| {
                    (0..16).filter(|&j| inside(first + lane_base + j, shift)).fold(0u16, |m, j| m | 1 << j)
                };
                masks.push(std::array::from_fn(|h| mask(16 * h)));
            }
        }
        ShiftTaps { pixels, offsets, masks }
    }

    /// Pixels of the stacked maps.
    pub fn pixels(&self) -> usize {
        self.pixels
    }

    pub(super) fn taps(&self) -> usize {
        self.offsets.len()
    }
}

/// The operands of one image's shift convolution for `shift_conv`.
#[derive(Clone, Copy)]
pub struct ShiftOperands {
    /// [rows, channels · taps], rows `lda` apart: the weights as the
    /// im2col GEMM's left matrix.
    pub weights: *const f32,
    pub lda: usize,
    /// [channels, pixels]: one image.
    pub image: *const f32,
    pub channels: usize,
    /// Memory around the image the kernel may read (start, end): the
    /// tensor the image lies in. A tap's loads that stay inside it load
    /// whole vectors and mask the products instead (a masked load costs an
    /// extra micro-op on the ports the products use: 14 % of the time).
    pub readable: (*const f32, *const f32),
    /// [rows, pixels]: written, never read.
    pub out: *mut f32,
    /// One value per row added to its sums, or null for none.
    pub bias: *const f32,
}

/// out[r, q] = bias[r] + Σ_t,c weights[r, c·taps + t] · image[c, q + offset[t]]
/// (zero where that lies in the padding), summed tap by tap, and within a
/// tap channel by channel: each tap's masks are loaded once.
///
/// # Safety
/// `available()` must hold; `weights` must hold `rows` rows of
/// `channels · taps` values, `image` `channels` planes, `out` `rows`
/// planes, and `bias` (when not null) `rows` values; `readable` must span
/// one initialized allocation that holds the image; nothing else may touch
/// `out` meanwhile.
#[target_feature(enable = "avx512f")]
pub unsafe fn shift_conv(rows: usize, taps: &ShiftTaps, operands: ShiftOperands) {
    for (panel, first_pixel) in (0..taps.pixels).step_by(PANEL).enumerate() {
        let width = PANEL.min(taps.pixels - first_pixel);
        let block = |first_row: usize| ShiftBlock {
            taps,
            masks: &taps.masks[panel * taps.taps()..][..taps.taps()],
            first_pixel,
            store_masks: lane_masks(width),
            operands: ShiftOperands {
                weights: operands.weights.add(first_row * operands.lda),
                out: operands.out.add(first_row * taps.pixels),
                bias: if operands.bias.is_null() { operands.bias } else { operands.bias.add(first_row) },
                ..operands
            },
        };
        for first_row in (0..rows).step_by(ROWS) {
            let block = block(first_row);
            // A panel's last pixels take as few vectors as hold them.
            let vectors = width.div_ceil(16);
            dispatch(rows - first_row, vectors, &block);
        }
    }
}

/// Calls the microkernel for `rows` (or `ROWS`) rows and `vectors` vectors a row.
#[target_feature(enable = "avx512f")]
unsafe fn dispatch(rows: usize, vectors: usize, block: &ShiftBlock) {
    macro_rules! by_rows {
        ($v:expr) => {
            match rows {
                1 => microkernel::<1, $v>(block),
                2 => microkernel::<2, $v>(block),
                3 => microkernel::<3, $v>(block),
                4 => microkernel::<4, $v>(block),
                5 => microkernel::<5, $v>(block),
                6 => microkernel::<6, $v>(block),
                7 => microkernel::<7, $v>(block),
                _ => microkernel::<ROWS, $v>(block),
            }
        };
    }
    match vectors {
        1 => by_rows!(1),
        _ => by_rows!(VECTORS),
    }
}

/// One microkernel call: up to `ROWS` rows from the operands' start, over
/// the panel of pixels from `first_pixel` whose tap masks are `masks`.
struct ShiftBlock<'a> {
    taps: &'a ShiftTaps,
    masks: &'a [[__mmask16; VECTORS]],
    first_pixel: usize,
    store_masks: [__mmask16; VECTORS],
    operands: ShiftOperands,
}

/// One tap's reads: its first plane's shifted panel, its weights, its lanes.
struct Tap {
    start: *const f32,
    weights: *const f32,
    mask: [__mmask16; VECTORS],
}

/// sums += the tap's weights × its shifted panel of every channel, with
/// whole-vector loads and masked products (`WHOLE`), or masked loads.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tap_products<const R: usize, const V: usize, const WHOLE: bool>(
    sums: &mut [[__m512; V]; R],
    tap: &Tap,
    channels: usize,
    taps: &ShiftTaps,
    lda: usize,
) {
    let mask = tap.mask;
    for c in 0..channels {
        let from = tap.start.wrapping_add(c * taps.pixels);
        let b: [__m512; V] = std::array::from_fn(|h| {
            if WHOLE {
                _mm512_loadu_ps(from.wrapping_add(16 * h))
            } else {
                _mm512_maskz_loadu_ps(mask[h], from.wrapping_add(16 * h))
            }
        });
        for (i, row) in sums.iter_mut().enumerate() {
            let a = _mm512_set1_ps(*tap.weights.add(i * lda + c * taps.taps()));
            for ((sum, &b), &mask) in row.iter_mut().zip(&b).zip(&mask) {
                *sum = if WHOLE { _mm512_mask3_fmadd_ps(a, b, *sum, mask) } else { _mm512_fmadd_ps(a, b, *sum) };
            }
        }
    }
}

/// out[R × 16V pixels] = bias + weights[R × channels·taps] · the shifted
/// planes, the sums in 2R (or R) vector registers.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn microkernel<const R: usize, const V: usize>(block: &ShiftBlock) {
    let ShiftBlock { taps, masks, first_pixel, store_masks, operands } = *block;
    let ShiftOperands { weights, lda, image, channels, out, bias, readable } = operands;
    let mut sums = [[_mm512_setzero_ps(); V]; R];
    for (t, (&offset, mask)) in taps.offsets.iter().zip(masks).enumerate() {
        // Offsets may point before the plane or past it: only masked-in lanes
        // are read, or whole vectors inside `readable`.
        let tap = image.wrapping_add(first_pixel).wrapping_offset(offset);
        let last = tap.wrapping_add((channels - 1) * taps.pixels + 16 * V);
        let tap = Tap { start: tap, weights: weights.add(t), mask: *mask };
        if tap.start >= readable.0 && last <= readable.1 {
            tap_products::<R, V, true>(&mut sums, &tap, channels, taps, lda);
        } else {
            tap_products::<R, V, false>(&mut sums, &tap, channels, taps, lda);
        }
    }
    for (i, row) in sums.iter().enumerate() {
        let bias = if bias.is_null() { None } else { Some(_mm512_set1_ps(*bias.add(i))) };
        for (h, &sum) in row.iter().enumerate() {
            // The bias added last, as the im2col path's GEMM adds its sums onto it.
            let value = bias.map_or(sum, |b| _mm512_add_ps(b, sum));
            _mm512_mask_storeu_ps(out.add(i * taps.pixels + first_pixel + 16 * h), store_masks[h], value);
        }
    }
}
