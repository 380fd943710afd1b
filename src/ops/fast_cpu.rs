//! Shared by the ops' fast CPU versions (`OpDef::cpu_fast`): a strided GEMM
//! (matrixmultiply's sgemm) and a split of the work over images or planes,
//! in parallel with rayon on native targets and in the page's threaded build
//! (wasm with atomics, rayon on Web Workers); one after another in the
//! page's plain build.

/// c = beta·c + a·b for an m×k `a` and a k×n `b`, each given with (row, column) strides.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    c_strides: (usize, usize),
    beta: f32,
) {
    check_bounds([m, k, n], (a, a_strides), (b, b_strides), (c, c_strides));
    // SAFETY: `check_bounds` keeps every access inside the three slices, and
    // `c` is borrowed mutably while `a` and `b` are shared borrows.
    unsafe { sgemm([m, k, n], (a.as_ptr(), a_strides), (b.as_ptr(), b_strides), (c.as_mut_ptr(), c_strides), beta) }
}

/// `gemm` with `b`'s and `c`'s columns split among the native worker
/// threads: for one large product (a linear layer over the batch), which
/// `gemm` alone would run on one core. Splitting columns, not rows, means
/// each thread packs only its share of `b` (the big weight matrix).
#[allow(clippy::too_many_arguments)]
pub fn gemm_parallel(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    c_strides: (usize, usize),
    beta: f32,
) {
    check_bounds([m, k, n], (a, a_strides), (b, b_strides), (c, c_strides));
    // Blocks of whole 16-column panels (the widest microkernel's), one per worker.
    let cols = n.div_ceil(workers()).next_multiple_of(16);
    let c_ptr = SharedMut(c.as_mut_ptr());
    let block = |first: usize| {
        let count = cols.min(n - first);
        // SAFETY: as in `gemm`, and the blocks write disjoint columns of `c`.
        unsafe {
            let b_block = b.as_ptr().add(first * b_strides.1);
            let c_block = c_ptr.at(first * c_strides.1);
            sgemm([m, k, count], (a.as_ptr(), a_strides), (b_block, b_strides), (c_block, c_strides), beta)
        }
    };
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().step_by(cols).for_each(block);
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    (0..n).step_by(cols).for_each(block);
}

/// A pointer into an output that parallel tasks write in disjoint parts.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: only used where each task writes elements no other task touches.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay inside the slice the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

type Operand<'a> = (&'a [f32], (usize, usize));

/// Panics unless the last element each operand of an m×k by k×n product
/// addresses lies inside its slice.
fn check_bounds([m, k, n]: [usize; 3], (a, a_s): Operand, (b, b_s): Operand, (c, c_s): (&mut [f32], (usize, usize))) {
    let last = |rows: usize, cols: usize, (rs, cs): (usize, usize)| (rows - 1) * rs + (cols - 1) * cs;
    assert!(m > 0 && k > 0 && n > 0);
    assert!(last(m, k, a_s) < a.len() && last(k, n, b_s) < b.len() && last(m, n, c_s) < c.len());
}

/// matrixmultiply's sgemm with strides as pairs.
///
/// # Safety
/// Every element the strides address must be inside its allocation, and
/// nothing else may touch the addressed part of `c` meanwhile.
unsafe fn sgemm(
    [m, k, n]: [usize; 3],
    (a, (a_row, a_col)): (*const f32, (usize, usize)),
    (b, (b_row, b_col)): (*const f32, (usize, usize)),
    (c, (c_row, c_col)): (*mut f32, (usize, usize)),
    beta: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if b_col == 1 && c_col == 1 && super::avx512::suits(m, k) && super::avx512::available() {
        let product = super::avx512::Operands { a, a_strides: (a_row, a_col), b, ldb: b_row, c, ldc: c_row, beta };
        return super::avx512::sgemm([m, k, n], product);
    }
    #[cfg(target_arch = "x86_64")]
    if a_col == 1 && b_row == 1 && c_col == 1 && super::avx512::dot_suits(m, n) && super::avx512::available() {
        let product = super::avx512::DotOperands { a, lda: a_row, b, ldb: b_col, c, ldc: c_row, beta };
        return super::avx512::sgemm_dot([m, k, n], product);
    }
    let s = |x: usize| x as isize;
    matrixmultiply::sgemm(m, k, n, 1.0, a, s(a_row), s(a_col), b, s(b_row), s(b_col), beta, c, s(c_row), s(c_col));
}

/// Whether the CPU device's hand-written AVX-512 loops run here (see `ops::avx512`).
pub fn avx512_in_use() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::avx512::available();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Sets every thread of the pool to flush denormal results to zero and read
/// denormal inputs as zero (x86's FTZ and DAZ; nothing elsewhere), as
/// TensorFlow's CPU executor does: gradients shrink into the denormal range
/// as training goes on, and each denormal operand costs a microcode assist
/// (steps back to back on the same 640 images went 8.6 -> 11.3 ms after some
/// 500 steps). Values that small are zeros to training. Threads keep the
/// setting, so once per program is enough.
pub fn flush_denormals_on_every_thread() {
    #[cfg(target_arch = "x86_64")]
    rayon::broadcast(|_| flush_denormals());
}

/// FTZ (bit 15) and DAZ (bit 6) in this thread's SSE control register.
#[cfg(target_arch = "x86_64")]
fn flush_denormals() {
    let mut control: u32 = 0;
    // SAFETY: stmxcsr and ldmxcsr read and write 4 bytes at the address
    // given, a local here, and only change how this thread rounds denormals.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut control, options(nostack, preserves_flags));
        control |= 1 << 15 | 1 << 6;
        std::arch::asm!("ldmxcsr [{}]", in(reg) &control, options(nostack, preserves_flags));
    }
}

/// Threads the parallel loops share work among (1 in the page's plain build).
pub fn workers() -> usize {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    return rayon::current_num_threads().max(1);
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
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
    // One task's worth runs here: handing it to another thread costs more than it saves.
    if out.len() <= chunk_len * group {
        return run((0, out));
    }
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk_len * group).enumerate().for_each(run);
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    out.chunks_mut(chunk_len * group).enumerate().for_each(run);
}

thread_local! {
    /// Values of the CPU device's last step that this step recomputes
    /// (`recycle`), for `output_buffer` to hand out again.
    static FREE_BUFFERS: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` values for an op that writes every one of them. It is
/// a recycled buffer of that length when there is one (its old values
/// still in it: a step then allocates nothing and clears nothing, where
/// zeroing every output cost 7 % of the step), else a new one filled with
/// NaN, so that a value an op fails to write shows in its tests, which
/// always get new ones.
pub fn output_buffer(len: usize) -> Vec<f32> {
    let recycled = FREE_BUFFERS.with_borrow_mut(|free| {
        let found = free.iter().rposition(|buffer| buffer.len() == len)?;
        Some(free.swap_remove(found))
    });
    recycled.unwrap_or_else(|| vec![f32::NAN; len])
}

/// Keeps a value nobody reads any more for `output_buffer` on this thread,
/// until `release_free_buffers`.
pub fn recycle(buffer: Vec<f32>) {
    FREE_BUFFERS.with_borrow_mut(|free| free.push(buffer));
}

/// Frees the recycled buffers no op took: called at the end of a step, so
/// that what is kept never exceeds one step's values.
pub fn release_free_buffers() {
    FREE_BUFFERS.with_borrow_mut(Vec::clear);
}

/// Values an element-wise task handles at least: a task of fewer (about a
/// nanosecond each) would cost more to hand to a thread than to run.
const ELEMENTWISE_CHUNK: usize = 1 << 16;

/// `f(a[i], b[i])` for every i, in parallel chunks: the element-wise ops of two inputs.
pub fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
    assert_eq!(a.len(), b.len());
    let mut y = output_buffer(a.len());
    per_chunk(&mut y, ELEMENTWISE_CHUNK, |k, out| {
        let (a, b) = (&a[k * ELEMENTWISE_CHUNK..], &b[k * ELEMENTWISE_CHUNK..]);
        out.iter_mut().zip(a).zip(b).for_each(|((y, &a), &b)| *y = f(a, b));
    });
    y
}

/// A copy of `values` in a recycled buffer, in parallel chunks (a reshape's:
/// 0.05 ms a copy of conv3's pooled output on one core).
pub fn copy(values: &[f32]) -> Vec<f32> {
    let mut y = output_buffer(values.len());
    per_chunk(&mut y, ELEMENTWISE_CHUNK, |k, out| out.copy_from_slice(&values[k * ELEMENTWISE_CHUNK..][..out.len()]));
    y
}

/// `f(v)` for every value of `values` in place, in parallel chunks.
pub fn map_in_place(values: &mut [f32], f: impl Fn(f32) -> f32 + Sync + Send) {
    per_chunk(values, ELEMENTWISE_CHUNK, |_, chunk| chunk.iter_mut().for_each(|v| *v = f(*v)));
}

/// `per_chunk` with a scratch buffer of `scratch_len` values (an im2col
/// matrix, say) that each thread keeps from call to call: no allocation
/// inside a training step once the first has run.
pub fn per_chunk_with_scratch(
    out: &mut [f32],
    chunk_len: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
) {
    let run = |(n, chunk): (usize, &mut [f32])| with_scratch(scratch_len, |scratch| f(n, chunk, scratch));
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk_len).enumerate().for_each(run);
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    out.chunks_mut(chunk_len).enumerate().for_each(run);
}

/// Σ over `0..count` of what `f(i, accumulator, scratch)` adds into an
/// accumulator of `len` zeros: a weight gradient summed over the images of a
/// batch. Items go in fixed groups of `per_group`, one accumulator each, in
/// parallel on native targets; the groups' sums are added in order, so the
/// result does not depend on the threads.
pub fn sum_over(
    count: usize,
    per_group: usize,
    len: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let per_group = per_group.max(1);
    let mut partial = vec![0.0; count.div_ceil(per_group) * len];
    per_chunk_with_scratch(&mut partial, len, scratch_len, |g, acc, scratch| {
        (g * per_group..count.min((g + 1) * per_group)).for_each(|i| f(i, acc, scratch));
    });
    let mut sums = partial[..len].to_vec();
    for chunk in partial.chunks(len).skip(1) {
        sums.iter_mut().zip(chunk).for_each(|(s, p)| *s += p);
    }
    sums
}

/// Runs `f` on this thread's scratch buffer, grown to at least `len` values.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        f(&mut scratch[..len])
    })
}
