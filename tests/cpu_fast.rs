//! The fast CPU device (each op's `cpu_fast`: im2col + GEMM, one pass per
//! plane) against the plain twins, with the hand-written AVX-512 loops
//! where the CPU has them (`cpu_fast_plain.rs` checks the paths without).

mod common;

use octconv::ops::fast_cpu::avx512_in_use;

#[test]
fn fast_cpu_ops_match_the_plain_twins() {
    eprintln!("AVX-512 loops in use: {}", avx512_in_use());
    common::fast_cpu::fast_ops_match_the_plain_twins();
}

#[test]
fn gemm_matches_a_plain_product() {
    common::fast_cpu::gemm_matches_a_plain_product();
}
