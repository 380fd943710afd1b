//! Every backward op of the CPU twins against central finite differences.
//!
//! For an op y = f(x) and a fixed random projection r, the scalar
//! L(x) = Σ r·f(x) has dL/dx = backward(r). Each check perturbs up to 40
//! inputs by ±h and compares (L(x+h) − L(x−h)) / 2h, accumulated in f64, with
//! the analytic gradient. The forward runs in f32, so the difference carries
//! rounding of about 1e-7·|L|/h: tolerance |fd − analytic| ≤ 2e-3 + 1e-2·|analytic|
//! with h = 1e-2 (1e-3 for the non-linear ops, whose inputs are kept away from
//! kinks and ties).

use octconv::cpu;
use octconv::ops::Op;
use octconv::tensor::Tensor;

const ABS_TOL: f64 = 2e-3;
const REL_TOL: f64 = 1e-2;

fn eval(op: &Op, inputs: &[&Tensor]) -> Tensor {
    cpu::eval(op, inputs).unwrap()
}

fn projection(y: &Tensor, r: &Tensor) -> f64 {
    y.data.iter().zip(&r.data).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Compares `analytic` = dL/d(inputs[which]) with finite differences of L = Σ r·forward(inputs).
fn check(
    name: &str,
    forward: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    which: usize,
    r: &Tensor,
    analytic: &Tensor,
    h: f32,
) {
    assert_eq!(analytic.shape, inputs[which].shape, "{name}: gradient shape");
    let count = inputs[which].len();
    let stride = (count / 40).max(1);
    for i in (0..count).step_by(stride) {
        let mut plus = inputs.to_vec();
        plus[which].data[i] += h;
        let mut minus = inputs.to_vec();
        minus[which].data[i] -= h;
        let fd = (projection(&forward(&plus), r) - projection(&forward(&minus), r)) / (2.0 * h as f64);
        let a = analytic.data[i] as f64;
        assert!(
            (fd - a).abs() <= ABS_TOL + REL_TOL * a.abs(),
            "{name}: element {i} of input {which}: finite difference {fd:.6}, backward {a:.6}"
        );
    }
}

/// Random values whose gaps exceed the step, so relu and max-pool see no kink within ±h.
fn spread(shape: &[usize], seed: u64) -> Tensor {
    let mut t = Tensor::uniform(shape, -1.0, 1.0, seed);
    for (k, v) in t.data.iter_mut().enumerate() {
        // Distinct values on a 0.01 grid, none within 0.005 of zero.
        *v = ((*v * 50.0).round() + 0.5) / 50.0 + (k % 7) as f32 * 1e-3;
    }
    t
}

#[test]
fn conv2d_gradients() {
    for (n, c, h, w, o, k, stride, padding) in
        [(1, 1, 5, 5, 1, 3, 1, 1), (2, 3, 7, 6, 4, 3, 2, 1), (1, 2, 6, 7, 3, 5, 1, 2), (2, 3, 5, 5, 2, 1, 1, 0)]
    {
        let op = Op::Conv2d { stride, padding };
        let inputs = [
            Tensor::uniform(&[n, c, h, w], -1.0, 1.0, 1),
            Tensor::uniform(&[o, c, k, k], -1.0, 1.0, 2),
            Tensor::uniform(&[o], -1.0, 1.0, 3),
        ];
        let y = eval(&op, &[&inputs[0], &inputs[1], &inputs[2]]);
        let r = Tensor::uniform(&y.shape, -1.0, 1.0, 4);
        let forward = |t: &[Tensor]| eval(&op, &[&t[0], &t[1], &t[2]]);
        let dx = eval(&Op::Conv2dBackwardInput { stride, padding, input_size: [h, w] }, &[&r, &inputs[1]]);
        let dw = eval(&Op::Conv2dBackwardWeight { stride, padding, kernel: k }, &[&r, &inputs[0]]);
        let db = eval(&Op::ChannelSum, &[&r]);
        check("conv2d dx", forward, &inputs, 0, &r, &dx, 1e-2);
        check("conv2d dw", forward, &inputs, 1, &r, &dw, 1e-2);
        check("conv2d db", forward, &inputs, 2, &r, &db, 1e-2);
    }
}

#[test]
fn linear_gradients() {
    for (n, i, o) in [(1, 1, 1), (3, 7, 5), (4, 33, 10)] {
        let inputs = [
            Tensor::uniform(&[n, i], -1.0, 1.0, 5),
            Tensor::uniform(&[o, i], -1.0, 1.0, 6),
            Tensor::uniform(&[o], -1.0, 1.0, 7),
        ];
        let r = Tensor::uniform(&[n, o], -1.0, 1.0, 8);
        let forward = |t: &[Tensor]| eval(&Op::Linear, &[&t[0], &t[1], &t[2]]);
        check("linear dx", forward, &inputs, 0, &r, &eval(&Op::LinearBackwardInput, &[&r, &inputs[1]]), 1e-2);
        check("linear dw", forward, &inputs, 1, &r, &eval(&Op::LinearBackwardWeight, &[&r, &inputs[0]]), 1e-2);
        check("linear db", forward, &inputs, 2, &r, &eval(&Op::ChannelSum, &[&r]), 1e-2);
    }
}

#[test]
fn pooling_and_upsampling_gradients() {
    for shape in [[1, 1, 2, 2], [2, 3, 5, 7], [1, 2, 6, 4]] {
        let [n, c, h, w] = shape;
        let x = spread(&shape, 9);
        let pooled = Tensor::uniform(&[n, c, h / 2, w / 2], -1.0, 1.0, 10);
        let avg = |t: &[Tensor]| eval(&Op::AvgPool2, &[&t[0]]);
        check(
            "avg_pool2",
            avg,
            std::slice::from_ref(&x),
            0,
            &pooled,
            &eval(&Op::AvgPool2Backward { input_size: [h, w] }, &[&pooled]),
            1e-3,
        );
        let max = |t: &[Tensor]| eval(&Op::MaxPool2, &[&t[0]]);
        check(
            "max_pool2",
            max,
            std::slice::from_ref(&x),
            0,
            &pooled,
            &eval(&Op::MaxPool2Backward, &[&x, &pooled]),
            1e-3,
        );
        let big = Tensor::uniform(&[n, c, 2 * h, 2 * w], -1.0, 1.0, 11);
        let up = |t: &[Tensor]| eval(&Op::Upsample2, &[&t[0]]);
        check("upsample2", up, std::slice::from_ref(&x), 0, &big, &eval(&Op::Upsample2Backward, &[&big]), 1e-2);
    }
}

#[test]
fn relu_add_and_add_upsampled_gradients() {
    let x = spread(&[2, 3, 4, 5], 12);
    let r = Tensor::uniform(&x.shape, -1.0, 1.0, 13);
    let relu = |t: &[Tensor]| eval(&Op::Relu, &[&t[0]]);
    check("relu", relu, std::slice::from_ref(&x), 0, &r, &eval(&Op::ReluBackward, &[&x, &r]), 1e-3);
    let b = Tensor::uniform(&x.shape, -1.0, 1.0, 14);
    let add = |t: &[Tensor]| eval(&Op::Add, &[&t[0], &t[1]]);
    check("add a", add, &[x.clone(), b.clone()], 0, &r, &r, 1e-2);
    check("add b", add, &[x, b], 1, &r, &r, 1e-2);

    // The gradient rule of add_upsampled2: dy to the high input, its 2×2 block sums to the low one.
    let (high, low) = (Tensor::uniform(&[2, 3, 4, 6], -1.0, 1.0, 15), spread(&[2, 3, 2, 3], 16));
    let r = Tensor::uniform(&high.shape, -1.0, 1.0, 17);
    let fused = |t: &[Tensor]| eval(&Op::AddUpsampled2, &[&t[0], &t[1]]);
    check("add_upsampled2 high", fused, &[high.clone(), low.clone()], 0, &r, &r, 1e-2);
    let dlow = eval(&Op::Upsample2Backward, &[&r]);
    check("add_upsampled2 low", fused, &[high, low], 1, &r, &dlow, 1e-2);
}

#[test]
fn cross_entropy_gradient() {
    for (n, k) in [(1, 1), (1, 10), (5, 3), (16, 10)] {
        let logits = Tensor::uniform(&[n, k], -3.0, 3.0, 15);
        let mut labels = Tensor::labels(n, k, 16);
        if n > 4 {
            labels.data[1] = -1.0; // a padding row: no loss, no gradient
        }
        let one = Tensor::new(&[1], vec![1.0]);
        let loss = |t: &[Tensor]| eval(&Op::CrossEntropy, &[&t[0], &t[1]]);
        let grad = eval(&Op::CrossEntropyBackward, &[&logits, &labels]);
        check("cross_entropy", loss, &[logits, labels], 0, &one, &grad, 1e-2);
    }
}
