//! The fast CPU device (each op's `cpu_fast`: shift kernels or im2col +
//! GEMM, one pass per plane) against the plain twins, with the hand-written
//! AVX-512 loops where the CPU has them (`cpu_fast_plain.rs` checks the
//! paths without).

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

/// Compiling for the CPU device sets every pool thread to flush denormals
/// to zero (x86: a denormal times one is zero there, not itself).
#[test]
#[cfg(target_arch = "x86_64")]
fn the_cpu_device_flushes_denormals_on_every_thread() {
    use octconv::exec::{self, Device};
    use octconv::nn::{ConvLowering, ParamSet, SeedNet};
    use octconv::optim::AdamConfig;
    let net = SeedNet::with_alpha(0.5);
    let params = ParamSet::init(&net.params(), 1);
    let model = net.graph(2, true, ConvLowering::Direct).unwrap();
    let _runner = pollster::block_on(exec::compile(&Device::Cpu, model, &params, AdamConfig::default())).unwrap();
    let denormal = f32::MIN_POSITIVE / 4.0;
    let products = rayon::broadcast(|_| std::hint::black_box(denormal) * std::hint::black_box(1.0f32));
    assert!(products.iter().all(|&p| p == 0.0), "denormal × 1 per thread: {products:?}");
}
