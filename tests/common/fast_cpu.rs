//! The fast CPU device's checks, shared by `cpu_fast.rs` (with whatever
//! the CPU offers, AVX-512 included) and `cpu_fast_plain.rs` (the plain
//! paths, AVX-512 turned off).

use octconv::check::{self, Work};
use octconv::ops::fast_cpu::gemm;
use octconv::tensor::Tensor;

/// Every op case of `octconv::check`: the fast version against the plain
/// twin, with the GPU kernels' tolerances.
pub fn fast_ops_match_the_plain_twins() {
    let mut compared = 0;
    for case in check::cases() {
        // The CPU runs a fused ReLU as its own op, so those cases have no fast twin to compare.
        let Work::Op { op, inputs, relu_after: false } = &case.work else { continue };
        let inputs: Vec<_> = inputs.iter().collect();
        let fast = op.eval_fast(&inputs).unwrap();
        let plain = op.eval_cpu(&inputs).unwrap();
        assert_eq!(fast.shape, plain.shape, "{} {}", case.op, case.shape);
        let (max_abs, max_rel, passed) = check::compare(&fast.data, &plain.data, case.tolerance);
        // A value the fast version never wrote is NaN (`output_buffer`'s new buffers).
        let unwritten = fast.data.iter().zip(&plain.data).filter(|(f, p)| f.is_nan() && !p.is_nan()).count();
        assert!(
            passed,
            "{} {}: fast CPU differs from the twin (max abs {max_abs:e}, max rel {max_rel:e}, {unwritten} values NaN)",
            case.op, case.shape
        );
        compared += 1;
    }
    assert!(compared > 50, "only {compared} cases compared");
}

/// `gemm` against a plain triple loop, within 1e-5 relative to the sum of
/// |terms|: awkward sizes around the kernels' tiles (8 × 32 and 4 × 4 here,
/// matrixmultiply's 16 × 16) and vectors (16 lanes), `a` and `b` as stored
/// and transposed (the layouts the kernels choose by), rows of `b` and `c`
/// wider than the product, and beta 0 (c holding NaN, which must not leak
/// in), 1 and 0.5.
pub fn gemm_matches_a_plain_product() {
    let mut products = 0;
    for m in [1, 3, 7, 8, 9, 16, 17, 33] {
        for k in [1, 2, 9, 31, 40] {
            for n in [1, 5, 16, 17, 33, 70] {
                for (transposed_a, transposed_b) in [(false, false), (true, false), (false, true)] {
                    for beta in [0.0, 1.0, 0.5] {
                        let ldc = n + 2;
                        let a_strides = if transposed_a { (1, m) } else { (k, 1) };
                        let b_strides = if transposed_b { (1, k + 3) } else { (n + 3, 1) };
                        // Uniform in [-1, 1), new seeds for every product.
                        let random =
                            |len: usize, which: u64| Tensor::uniform(&[len], -1.0, 1.0, 3 * products + which).data;
                        let a = random(m * k, 0);
                        let b = random((k - 1) * b_strides.0 + (n - 1) * b_strides.1 + 1, 1);
                        let c0 = if beta == 0.0 { vec![f32::NAN; m * ldc] } else { random(m * ldc, 2) };
                        let mut c = c0.clone();
                        gemm(m, k, n, &a, a_strides, &b, b_strides, &mut c, (ldc, 1), beta);
                        let case = format!("{m}×{k}×{n} (transposed a {transposed_a}, b {transposed_b}; beta {beta})");
                        for i in 0..m {
                            for j in 0..ldc {
                                let got = c[i * ldc + j];
                                if j >= n {
                                    assert!(
                                        got.to_bits() == c0[i * ldc + j].to_bits(),
                                        "{case}: wrote past column {n}"
                                    );
                                    continue;
                                }
                                let terms = (0..k).map(|p| {
                                    a[i * a_strides.0 + p * a_strides.1] * b[p * b_strides.0 + j * b_strides.1]
                                });
                                let scale = terms.clone().map(f32::abs).sum::<f32>() + 1e-6;
                                let previous = if beta == 0.0 { 0.0 } else { beta * c0[i * ldc + j] };
                                let want = previous + terms.sum::<f32>();
                                assert!(
                                    (got - want).abs() <= 1e-5 * (scale + previous.abs()),
                                    "{case} at ({i}, {j}): {got} vs {want}"
                                );
                            }
                        }
                        products += 1;
                    }
                }
            }
        }
    }
    assert_eq!(products, 8 * 5 * 6 * 3 * 3);
}
