//! Every WGSL kernel against its CPU twin, on the cases each op family lists
//! (batch 1, one channel, odd sizes, sizes that are not a multiple of the
//! workgroup, 1/3/8/17 channels, kernels 1/3/5, stride 1 and 2, padding
//! 0/1/2, and the seed network's own shapes), one test per family.
//! Tolerances are stated with the cases (`src/ops/cases.rs`).

mod common;

use octconv::check;
use octconv::ops::{all_kernels, FAMILIES};

/// Runs every case of `family` and fails with the whole table if any differs.
fn check_family(family: &str) {
    let Some(gpu) = common::gpu() else { return };
    let cases: Vec<_> = check::cases().into_iter().filter(|c| c.family == family).collect();
    let mut report = Vec::new();
    let mut failed = false;
    for case in &cases {
        let outcome = pollster::block_on(check::run_case(&gpu, case))
            .unwrap_or_else(|e| panic!("{} {}: {e}", case.kernel, case.shape));
        failed |= !outcome.passed;
        report.push(format!(
            "{} {}: max abs {:.3e}, max rel {:.3e}, tolerance {:?} -> {}",
            case.kernel,
            outcome.shape,
            outcome.max_abs,
            outcome.max_rel,
            case.tolerance,
            if outcome.passed { "pass" } else { "FAIL" }
        ));
    }
    println!("{}", report.join("\n"));
    assert!(!failed, "{family}: kernels differ from their CPU twins on {}:\n{}", gpu.adapter_name(), report.join("\n"));
}

macro_rules! family_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check_family(stringify!($name)); })*
        const TESTED: &[&str] = &[$(stringify!($name)),*];
    };
}

family_tests!(conv, reduce, pool, upsample, elementwise, linear, winograd, loss, reshape, gather, adam);

/// Every family has a test above, and every kernel has check cases.
#[test]
fn every_kernel_has_cases_and_every_family_a_test() {
    for family in FAMILIES {
        assert!(TESTED.contains(&family.name), "family {} has no test", family.name);
    }
    let cases = check::cases();
    for kernel in all_kernels() {
        assert!(cases.iter().any(|c| c.kernel == kernel.entry), "kernel {} has no check cases", kernel.entry);
    }
}
