//! Shared by the ops' fast CPU versions (`OpDef::cpu_fast`): a strided GEMM
//! (matrixmultiply's sgemm) and a split of the work over images or planes,
//! in parallel on native targets.

/// c = beta·c + a·b for an m×k `a` and a k×n `b`, each given with (row, column) strides.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
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

/// `gemm` for a `c` of contiguous rows (column stride 1), its rows split
/// among the native worker threads: for one large product (a linear layer
/// over the batch), which `gemm` alone would run on one core.
#[allow(clippy::too_many_arguments)]
pub fn gemm_parallel(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    (a_row, a_col): (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    c_row: usize,
    beta: f32,
) {
    let rows = m.div_ceil(workers()).max(1);
    let c = &mut c[..m * c_row];
    per_chunk(c, rows * c_row, |t, c_rows| {
        let first = t * rows;
        let count = c_rows.len() / c_row;
        gemm(count, k, n, &a[first * a_row..], (a_row, a_col), b, b_strides, c_rows, (c_row, 1), beta);
    });
}

/// Threads the parallel loops share work among (1 in the browser).
fn workers() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads().max(1);
    #[cfg(target_arch = "wasm32")]
    return 1;
}

/// Values one parallel task handles at least: small planes (a 7×7 map) are
/// grouped, since a task per plane would cost more to schedule than to run.
const MIN_TASK_LEN: usize = 1 << 14;

/// Runs `f(chunk index, output chunk)` over `out` in chunks of `chunk_len`
/// (one image or one plane each), in parallel on native targets.
pub fn per_chunk(out: &mut [f32], chunk_len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let chunk_len = chunk_len.max(1);
    let group = (MIN_TASK_LEN / chunk_len).max(1);
    let run = |(g, block): (usize, &mut [f32])| {
        block.chunks_mut(chunk_len).enumerate().for_each(|(k, chunk)| f(g * group + k, chunk));
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk_len * group).enumerate().for_each(run);
    }
    #[cfg(target_arch = "wasm32")]
    out.chunks_mut(chunk_len * group).enumerate().for_each(run);
}

/// `per_chunk` with a scratch buffer of `scratch_len` values per worker,
/// reused from chunk to chunk (an im2col matrix, say), not allocated per chunk.
pub fn per_chunk_with_scratch(
    out: &mut [f32],
    chunk_len: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each_init(|| vec![0.0; scratch_len], |scratch, (n, chunk)| f(n, chunk, scratch));
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mut scratch = vec![0.0; scratch_len];
        out.chunks_mut(chunk_len).enumerate().for_each(|(n, chunk)| f(n, chunk, &mut scratch));
    }
}
