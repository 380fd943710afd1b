//! The fast CPU device (each op's `cpu_fast`: im2col + GEMM, one pass per
//! plane) against the plain twins, on every op case of `octconv::check` with
//! the same tolerances as the GPU kernels.

use octconv::check::{self, Work};

#[test]
fn fast_cpu_ops_match_the_plain_twins() {
    let mut compared = 0;
    for case in check::cases() {
        // The CPU runs a fused ReLU as its own op, so those cases have no fast twin to compare.
        let Work::Op { op, inputs, relu_after: false } = &case.work else { continue };
        let inputs: Vec<_> = inputs.iter().collect();
        let fast = op.eval_fast(&inputs).unwrap();
        let plain = op.eval_cpu(&inputs).unwrap();
        assert_eq!(fast.shape, plain.shape, "{} {}", case.op, case.shape);
        let (max_abs, max_rel, passed) = check::compare(&fast.data, &plain.data, case.tolerance);
        assert!(
            passed,
            "{} {}: fast CPU differs from the twin (max abs {max_abs:e}, max rel {max_rel:e})",
            case.op, case.shape
        );
        compared += 1;
    }
    assert!(compared > 50, "only {compared} cases compared");
}
