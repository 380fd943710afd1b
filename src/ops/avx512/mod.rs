//! Hand-written AVX-512 for the CPU device's hottest loops, where the compiler
//! does not vectorize well by itself, each used only where the CPU has it
//! and checked against its plain version by the tests (`tests/cpu_fast.rs`,
//! and again with `OCTCONV_AVX512=off` for the plain versions):
//!
//! - a GEMM for products whose `b` and `c` rows are contiguous (the im2col
//!   convolutions' forward and input-gradient products: conv1, strided
//!   convolutions): the microkernel reads `b` and `a` where they lie
//!   instead of packing them first, as a general GEMM does. Those products
//!   are small (a 288 × 392 column matrix) and already in the cache, so
//!   packing was a second copy of every operand (12 % of the step's time)
//!   and the general GEMM's 16 × 16 tiles fit conv1's 8 × 9 weights badly
//!   (23 GFLOP/s; here 90);
//! - max pooling's gradient, 16 windows at a time without a branch on the
//!   data (a mispredicted branch per window made it 4–5× slower);
//! - the shift convolutions (stride 1, output the input's size: every conv
//!   of the seed net) read straight from the images, forward and input
//!   gradient in `shift_conv`, weight gradient in `shift_weight_gradient`,
//!   with a register-blocked transpose for the latter's dyᵀ.

use std::arch::x86_64::*;

pub mod shift_conv;
pub mod shift_weight_gradient;

/// Whether the AVX-512 paths run: the CPU has AVX-512F and
/// `OCTCONV_AVX512=off` does not rule them out (to time or test the plain
/// paths on the same machine). Checked once.
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE
        .get_or_init(|| is_x86_feature_detected!("avx512f") && std::env::var("OCTCONV_AVX512").as_deref() != Ok("off"))
}

/// Rows of `c` one microkernel call computes.
const ROWS: usize = 8;
/// Columns of `c` one microkernel call computes: two 16-lane vectors.
const COLUMNS: usize = 32;

/// Whether an m×k `a` is small enough for the kernel to read where it lies:
/// each row block's slice then stays in the level-1 cache across the
/// column panels. Larger, a general GEMM's packed copy wins (measured on
/// the step's products: 8×9 and 32×288 faster here, 512×64 slower).
pub fn suits(m: usize, k: usize) -> bool {
    m * k <= 16 * 1024
}

/// The operands of c = beta·c + a·b for `sgemm`: `a` with (row, column)
/// strides, `b` and `c` with rows `ldb` and `ldc` apart and contiguous
/// columns. With beta = 0, `c` is only written.
#[derive(Clone, Copy)]
pub struct Operands {
    pub a: *const f32,
    pub a_strides: (usize, usize),
    pub b: *const f32,
    pub ldb: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub beta: f32,
}

impl Operands {
    /// The same product from row `row` and column `column` of `c` on.
    ///
    /// # Safety
    /// Both must lie inside the product.
    unsafe fn at(self, row: usize, column: usize) -> Self {
        Operands {
            a: self.a.add(row * self.a_strides.0),
            b: self.b.add(column),
            c: self.c.add(row * self.ldc + column),
            ..self
        }
    }
}

/// c = beta·c + a·b for an m×k `a` and a k×n `b` (see `Operands`).
///
/// # Safety
/// `available()` must hold; every element the strides address must lie
/// inside its allocation; nothing else may touch `c` meanwhile.
#[target_feature(enable = "avx512f")]
pub unsafe fn sgemm([m, k, n]: [usize; 3], product: Operands) {
    // Column panels outside, row blocks inside: a k × 32 panel of `b` is
    // read from memory once, then from the cache by every row block.
    for first_column in (0..n).step_by(COLUMNS) {
        let masks = lane_masks(COLUMNS.min(n - first_column));
        for first_row in (0..m).step_by(ROWS) {
            let block = Block { k, operands: product.at(first_row, first_column), masks };
            match m - first_row {
                1 => microkernel::<1>(&block),
                2 => microkernel::<2>(&block),
                3 => microkernel::<3>(&block),
                4 => microkernel::<4>(&block),
                5 => microkernel::<5>(&block),
                6 => microkernel::<6>(&block),
                7 => microkernel::<7>(&block),
                _ => microkernel::<ROWS>(&block),
            }
        }
    }
}

/// The lanes inside a run `width` values wide of each of `N` consecutive
/// 16-lane vectors: a panel's column vectors, a row's last values.
fn lane_masks<const N: usize>(width: usize) -> [__mmask16; N] {
    std::array::from_fn(|v| lanes(width.saturating_sub(16 * v)))
}

/// One microkernel call: `ROWS` (or fewer) rows of `a` and `c` from the
/// operands' start, a 32-column panel of `b` and `c` (`masks`: its columns).
struct Block {
    k: usize,
    operands: Operands,
    masks: [__mmask16; 2],
}

/// c[R × 32] = beta·c + a[R × k] · b[k × 32], the accumulators in
/// registers (2R of the 32 vector registers), masked where the panel is narrower.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn microkernel<const R: usize>(block: &Block) {
    let Block { k, operands, masks } = *block;
    let Operands { a, a_strides: (a_row, a_depth), b, ldb, c, ldc, beta } = operands;
    let mut sums = [[_mm512_setzero_ps(); 2]; R];
    for p in 0..k {
        let b_row = b.add(p * ldb);
        let b_low = _mm512_maskz_loadu_ps(masks[0], b_row);
        let b_high = _mm512_maskz_loadu_ps(masks[1], b_row.add(16));
        let a_column = a.add(p * a_depth);
        for (i, row) in sums.iter_mut().enumerate() {
            let a_value = _mm512_set1_ps(*a_column.add(i * a_row));
            row[0] = _mm512_fmadd_ps(a_value, b_low, row[0]);
            row[1] = _mm512_fmadd_ps(a_value, b_high, row[1]);
        }
    }
    for (i, row) in sums.iter().enumerate() {
        for (half, (&sum, &mask)) in row.iter().zip(&masks).enumerate() {
            let out = c.add(i * ldc + 16 * half);
            // beta = 0 never reads c: it may hold anything, NaN included.
            let value = if beta == 0.0 {
                sum
            } else {
                _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, out), sum)
            };
            _mm512_mask_storeu_ps(out, mask, value);
        }
    }
}

/// Whether an m×n product is small enough for `sgemm_dot`: its 4 × 4
/// blocks read both operands from the level-2 cache for every block, which
/// pays only while a general GEMM's 16 × 16 tiles would be mostly padding
/// (measured: conv1's 8 × 9 weight gradient 6× faster, conv2's 8 × 72
/// 2.4×, 16 × 144 even, 32 × 288 0.7×).
pub fn dot_suits(m: usize, n: usize) -> bool {
    m * n <= 2048
}

/// Rows of `a` and of `b`ᵀ one dot-product block pairs: 16 accumulators.
const DOT_BLOCK: usize = 4;

/// The operands of c = beta·c + a·b for `sgemm_dot`: `a` with rows `lda`
/// apart and `b` with columns `ldb` apart, both contiguous along k, and `c`
/// with rows `ldc` apart. With beta = 0, `c` is only written.
#[derive(Clone, Copy)]
pub struct DotOperands {
    pub a: *const f32,
    pub lda: usize,
    pub b: *const f32,
    pub ldb: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub beta: f32,
}

impl DotOperands {
    /// The same product from row `row` and column `column` of `c` on.
    ///
    /// # Safety
    /// Both must lie inside the product.
    unsafe fn at(self, row: usize, column: usize) -> Self {
        DotOperands {
            a: self.a.add(row * self.lda),
            b: self.b.add(column * self.ldb),
            c: self.c.add(row * self.ldc + column),
            ..self
        }
    }
}

/// c = beta·c + a·b for an m×k `a` and a k×n `b` (see `DotOperands`): each
/// c[i][j] a dot product of two contiguous runs, 16 terms a vector (the
/// weight gradients, dW = dY · colᵀ, whose k is the pixels).
///
/// # Safety
/// As `sgemm`.
#[target_feature(enable = "avx512f")]
pub unsafe fn sgemm_dot([m, k, n]: [usize; 3], product: DotOperands) {
    for first_row in (0..m).step_by(DOT_BLOCK) {
        for first_column in (0..n).step_by(DOT_BLOCK) {
            let block = DotBlock { k, operands: product.at(first_row, first_column) };
            let rows = DOT_BLOCK.min(m - first_row);
            match (rows, DOT_BLOCK.min(n - first_column)) {
                (4, 4) => dot_kernel::<4, 4>(&block),
                (4, 3) => dot_kernel::<4, 3>(&block),
                (4, 2) => dot_kernel::<4, 2>(&block),
                (4, _) => dot_kernel::<4, 1>(&block),
                (3, 4) => dot_kernel::<3, 4>(&block),
                (3, 3) => dot_kernel::<3, 3>(&block),
                (3, 2) => dot_kernel::<3, 2>(&block),
                (3, _) => dot_kernel::<3, 1>(&block),
                (2, 4) => dot_kernel::<2, 4>(&block),
                (2, 3) => dot_kernel::<2, 3>(&block),
                (2, 2) => dot_kernel::<2, 2>(&block),
                (2, _) => dot_kernel::<2, 1>(&block),
                (_, 4) => dot_kernel::<1, 4>(&block),
                (_, 3) => dot_kernel::<1, 3>(&block),
                (_, 2) => dot_kernel::<1, 2>(&block),
                (_, _) => dot_kernel::<1, 1>(&block),
            }
        }
    }
}

/// One `sgemm_dot` block: up to 4 rows of `a`, 4 columns of `b` and their
/// block of `c`, from the operands' start.
struct DotBlock {
    k: usize,
    operands: DotOperands,
}

/// c[R × S] = beta·c + the R·S dot products, each summed in 16 lanes and
/// the lanes added at the end; the last k % 16 terms masked.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dot_kernel<const R: usize, const S: usize>(block: &DotBlock) {
    let DotBlock { k, operands } = *block;
    let DotOperands { a, lda, b, ldb, c, ldc, beta } = operands;
    let mut sums = [[_mm512_setzero_ps(); S]; R];
    for p in (0..k).step_by(16) {
        let mask = lanes(k - p);
        let b_runs: [__m512; S] = std::array::from_fn(|j| _mm512_maskz_loadu_ps(mask, b.add(j * ldb + p)));
        for (i, row) in sums.iter_mut().enumerate() {
            let a_run = _mm512_maskz_loadu_ps(mask, a.add(i * lda + p));
            for (sum, &b_run) in row.iter_mut().zip(&b_runs) {
                *sum = _mm512_fmadd_ps(a_run, b_run, *sum);
            }
        }
    }
    for (i, row) in sums.iter().enumerate() {
        for (j, &sum) in row.iter().enumerate() {
            let out = c.add(i * ldc + j);
            let total = _mm512_reduce_add_ps(sum);
            // beta = 0 never reads c: it may hold anything, NaN included.
            *out = if beta == 0.0 { total } else { beta * *out + total };
        }
    }
}

/// Max pooling's gradient for one row of 2×2 windows, 16 at a time (the
/// last ones masked): dy[j] to the first largest of top[2j], top[2j+1],
/// bottom[2j], bottom[2j+1] (`argmax4`'s order of comparisons, as masks),
/// 0 to the other three.
///
/// # Safety
/// `available()` must hold.
#[target_feature(enable = "avx512f")]
pub unsafe fn route_to_argmax(top: &[f32], bottom: &[f32], dy: &[f32], dx_top: &mut [f32], dx_bottom: &mut [f32]) {
    let values = 2 * dy.len();
    assert!(top.len() >= values && bottom.len() >= values && dx_top.len() >= values && dx_bottom.len() >= values);
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let first_half = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let second_half = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for j in (0..dy.len()).step_by(16) {
        // Lanes inside the row: of the 16 windows, and of their 32 values in two vectors.
        let windows = lanes(dy.len() - j);
        let halves: [__mmask16; 2] = lane_masks(values - 2 * j);
        // (left, right) values of the windows from value 2j on.
        let pairs = |row: *const f32| {
            let (low, high) = (_mm512_maskz_loadu_ps(halves[0], row), _mm512_maskz_loadu_ps(halves[1], row.add(16)));
            (_mm512_permutex2var_ps(low, evens, high), _mm512_permutex2var_ps(low, odds, high))
        };
        let store_pairs = |row: *mut f32, left: __m512, right: __m512| {
            _mm512_mask_storeu_ps(row, halves[0], _mm512_permutex2var_ps(left, first_half, right));
            _mm512_mask_storeu_ps(row.add(16), halves[1], _mm512_permutex2var_ps(left, second_half, right));
        };
        let (a, b) = pairs(top.as_ptr().add(2 * j));
        let (c, d) = pairs(bottom.as_ptr().add(2 * j));
        let g = _mm512_maskz_loadu_ps(windows, dy.as_ptr().add(j));
        let second = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(b, a);
        let best = _mm512_mask_blend_ps(second, a, b);
        let third = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(c, best);
        let best = _mm512_mask_blend_ps(third, best, c);
        let fourth = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, best);
        let later = third | fourth;
        let routed = |wins: __mmask16| _mm512_maskz_mov_ps(wins, g);
        store_pairs(dx_top.as_mut_ptr().add(2 * j), routed(!second & !later), routed(second & !later));
        store_pairs(dx_bottom.as_mut_ptr().add(2 * j), routed(third & !fourth), routed(fourth));
    }
}

/// The first `count` of 16 lanes (all 16 from 16 on).
fn lanes(count: usize) -> __mmask16 {
    if count >= 16 {
        0xffff
    } else {
        (1u16 << count) - 1
    }
}

/// out = matrixᵀ for a [rows, columns] `matrix` whose rows are `columns`
/// apart, into `out` with rows `rows` apart: 16 × 16 blocks transposed in
/// registers (the scalar loop, a load and a store per value, cost a
/// quarter of the weight gradient it fed).
///
/// # Safety
/// `available()` must hold.
#[target_feature(enable = "avx512f")]
pub unsafe fn transpose(matrix: &[f32], rows: usize, columns: usize, out: &mut [f32]) {
    assert!(matrix.len() >= rows * columns && out.len() >= rows * columns);
    for first_row in (0..rows).step_by(16) {
        let row_lanes = lanes(rows - first_row);
        for first_column in (0..columns).step_by(16) {
            let column_lanes = lanes(columns - first_column);
            let mut block: [__m512; 16] = std::array::from_fn(|i| {
                let row = first_row + i;
                if row < rows {
                    _mm512_maskz_loadu_ps(column_lanes, matrix.as_ptr().add(row * columns + first_column))
                } else {
                    _mm512_setzero_ps()
                }
            });
            transpose16(&mut block);
            for (j, &column) in block.iter().enumerate().take(columns - first_column) {
                _mm512_mask_storeu_ps(out.as_mut_ptr().add((first_column + j) * rows + first_row), row_lanes, column);
            }
        }
    }
}

/// Transposes 16 vectors of 16 values in place: pairs of values, then of
/// pairs, then 128-bit lanes, then halves trade places.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(r: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    for k in 0..8 {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    let pd = _mm512_castps_pd;
    for k in 0..4 {
        let b = 4 * k;
        r[b] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[b]), pd(t[b + 2])));
        r[b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[b]), pd(t[b + 2])));
        r[b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[b + 1]), pd(t[b + 3])));
        r[b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[b + 1]), pd(t[b + 3])));
    }
    for half in [0, 8] {
        for k in 0..4 {
            t[half + k] = _mm512_shuffle_f32x4::<0x88>(r[half + k], r[half + k + 4]);
            t[half + k + 4] = _mm512_shuffle_f32x4::<0xdd>(r[half + k], r[half + k + 4]);
        }
    }
    for k in 0..8 {
        r[k] = _mm512_shuffle_f32x4::<0x88>(t[k], t[k + 8]);
        r[k + 8] = _mm512_shuffle_f32x4::<0xdd>(t[k], t[k + 8]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_matches_the_definition() {
        if !super::available() {
            return;
        }
        for (rows, columns) in [(1, 1), (16, 16), (3, 17), (64, 196), (33, 49), (17, 5)] {
            let matrix: Vec<f32> = (0..rows * columns).map(|v| v as f32).collect();
            let mut out = vec![f32::NAN; rows * columns];
            // SAFETY: AVX-512 is there.
            unsafe { super::transpose(&matrix, rows, columns, &mut out) };
            for r in 0..rows {
                for c in 0..columns {
                    assert_eq!(out[c * rows + r], matrix[r * columns + c], "{rows}×{columns} at ({r}, {c})");
                }
            }
        }
    }
}
