//! `cpu_fast.rs`'s checks with the hand-written AVX-512 loops turned off
//! (`OCTCONV_AVX512=off`): the plain paths that CPUs without AVX-512, and
//! the page's wasm, run. One test, so that the variable is set before any
//! op reads it.

mod common;

use octconv::ops::fast_cpu::avx512_in_use;

#[test]
fn plain_fast_cpu_paths_match_the_twins() {
    std::env::set_var("OCTCONV_AVX512", "off");
    assert!(!avx512_in_use(), "OCTCONV_AVX512=off did not turn the AVX-512 loops off");
    common::fast_cpu::fast_ops_match_the_plain_twins();
    common::fast_cpu::gemm_matches_a_plain_product();
}
