//! Every WGSL kernel against its CPU twin, on the shapes of `octconv::check`
//! (batch 1, one channel, odd sizes, sizes that are not a multiple of the
//! workgroup, 1/3/8/17 channels, kernels 1/3/5, stride 1 and 2, padding 0/1/2,
//! and the seed network's own shapes). Tolerances are stated in check.rs.

mod common;

use octconv::check;

/// Runs every case of `kernel` and fails with the whole table if any differs.
fn check_kernel(kernel: &str) {
    let Some(gpu) = common::gpu() else { return };
    let cases: Vec<_> = check::cases().into_iter().filter(|c| c.kernel == kernel).collect();
    assert!(!cases.is_empty(), "no check cases for kernel {kernel}");
    let mut report = Vec::new();
    let mut failed = false;
    for case in &cases {
        let outcome =
            pollster::block_on(check::run_case(&gpu, case)).unwrap_or_else(|e| panic!("{kernel} {}: {e}", case.shape));
        failed |= !outcome.passed;
        report.push(format!(
            "{kernel} {}: max abs {:.3e}, max rel {:.3e}, tolerance {:?} -> {}",
            outcome.shape,
            outcome.max_abs,
            outcome.max_rel,
            case.tolerance,
            if outcome.passed { "pass" } else { "FAIL" }
        ));
    }
    println!("{}", report.join("\n"));
    assert!(!failed, "{kernel} differs from its CPU twin on {}:\n{}", gpu.adapter_name(), report.join("\n"));
}

macro_rules! kernel_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check_kernel(stringify!($name)); })*
        const TESTED: &[&str] = &[$(stringify!($name)),*];
    };
}

kernel_tests!(
    conv2d_forward,
    conv2d_forward_tiled,
    conv2d_backward_input_strided,
    conv2d_backward_weight,
    conv2d_backward_weight_tiled,
    channel_sum,
    avg_pool2_forward,
    avg_pool2_backward,
    max_pool2_forward,
    max_pool2_backward,
    upsample2_forward,
    upsample2_backward,
    add_upsampled2,
    relu_forward,
    relu_backward,
    add,
    accumulate,
    matmul,
    matmul_tiled,
    cross_entropy_forward,
    cross_entropy_backward,
    argmax_rows,
    batch_metrics,
    adam_step,
    gather_batch,
);

/// The list above covers every kernel the engine has, and every kernel has check cases.
#[test]
fn every_kernel_has_a_test() {
    let cases = check::cases();
    for kernel in octconv::ops::all_kernels() {
        assert!(TESTED.contains(&kernel.entry), "kernel {} has no test", kernel.entry);
        assert!(cases.iter().any(|c| c.kernel == kernel.entry), "kernel {} has no check cases", kernel.entry);
    }
}
