//! Every op's gradient rule, through `Graph::backward_with` on a one-op
//! graph, against central finite differences of the op's CPU twin
//! (tinygrad's `helper_test_op`: the op, its inputs, the tolerances).
//!
//! For y = op(x) and a fixed random r, the scalar L(x) = Σ r·y has
//! dL/dx = what the graph's gradient nodes compute for dy = r (run on the CPU
//! twins, backward ops included). Each check perturbs up to 40 elements of
//! each differentiable input by ±h and compares (L(x+h) − L(x−h)) / 2h,
//! accumulated in f64. The forward runs in f32, so the difference carries
//! rounding of about 1e-7·|L|/h: the tolerances are |fd − analytic| ≤
//! abs + rel·|analytic|, with h = 1e-2 (1e-3 for the piecewise-linear ops,
//! whose inputs are kept away from kinks and ties by `spread`).

use octconv::graph::{Graph, Source};
use octconv::ops::*;
use octconv::tensor::Tensor;

/// The usual tolerance: abs 2e-3, rel 1e-2.
const TOL: [f64; 2] = [2e-3, 1e-2];

/// Evaluates every node of `g` on the CPU twins from the given leaf values.
fn evaluate(g: &Graph, leaves: &[(usize, Tensor)]) -> Vec<Tensor> {
    let mut values: Vec<Option<Tensor>> = vec![None; g.nodes.len()];
    for (id, value) in leaves {
        values[*id] = Some(value.clone());
    }
    for (id, node) in g.nodes.iter().enumerate() {
        if let Source::Op(op) = &node.source {
            let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| values[i].as_ref().unwrap()).collect();
            values[id] = Some(op.eval_cpu(&inputs).unwrap());
        }
    }
    values.into_iter().map(|v| v.expect("every node has a value")).collect()
}

/// Checks `op`'s gradient rule for the inputs marked `differentiable`, at `inputs`.
fn check_op(op: impl Into<Op>, inputs: Vec<Tensor>, differentiable: &[bool], h: f32, [abs, rel]: [f64; 2]) {
    let op = op.into();
    let mut g = Graph::new();
    let ids: Vec<usize> = inputs
        .iter()
        .zip(differentiable)
        .enumerate()
        .map(|(k, (t, &d))| if d { g.param(&format!("x{k}"), &t.shape) } else { g.input(&format!("x{k}"), &t.shape) })
        .collect();
    let y = g.apply("y", op.clone(), &ids).unwrap();
    let shape = g.shape(y).to_vec();
    let dy = g.input("dy", &shape);
    let grads = g.backward_with(y, dy).unwrap();
    // The loss is the graph's root: its own gradient is 1, whatever dy says.
    let is_loss = matches!(op, Op::CrossEntropy(_));
    let r = if is_loss { Tensor::new(&[1], vec![1.0]) } else { Tensor::uniform(g.shape(y), -1.0, 1.0, 99) };
    let mut leaves: Vec<(usize, Tensor)> = ids.iter().copied().zip(inputs.iter().cloned()).collect();
    leaves.push((dy, r.clone()));
    let values = evaluate(&g, &leaves);

    let loss = |xs: &[Tensor]| -> f64 {
        let y = op.eval_cpu(&xs.iter().collect::<Vec<_>>()).unwrap();
        y.data.iter().zip(&r.data).map(|(&a, &b)| a as f64 * b as f64).sum()
    };
    let mut checked = 0;
    for &(param, grad) in &grads {
        let which = ids.iter().position(|&id| id == param).unwrap();
        let analytic = &values[grad];
        assert_eq!(analytic.shape, inputs[which].shape, "{}: gradient shape of input {which}", op.name());
        let count = inputs[which].len();
        for i in (0..count).step_by((count / 40).max(1)) {
            let mut plus = inputs.clone();
            plus[which].data[i] += h;
            let mut minus = inputs.clone();
            minus[which].data[i] -= h;
            let fd = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
            let a = analytic.data[i] as f64;
            assert!(
                (fd - a).abs() <= abs + rel * a.abs(),
                "{}: element {i} of input {which}: finite difference {fd:.6}, gradient rule {a:.6}",
                op.name()
            );
            checked += 1;
        }
    }
    assert_eq!(grads.len(), differentiable.iter().filter(|&&d| d).count());
    assert!(checked > 0, "{}: nothing checked", op.name());
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

fn random(shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform(shape, -1.0, 1.0, seed)
}

/// Every op either has its gradient rule checked below or is a gradient
/// itself, whose rule is to refuse. The match has no catch-all, so a new op
/// does not compile here until it is placed.
fn has_gradient_rule(op: &Op) -> bool {
    match op {
        Op::Conv2d(_)
        | Op::AvgPool2(_)
        | Op::MaxPool2(_)
        | Op::Upsample2(_)
        | Op::AddUpsampled2(_)
        | Op::Relu(_)
        | Op::Add(_)
        | Op::Linear(_)
        | Op::CrossEntropy(_)
        | Op::Reshape(_) => true,
        Op::Conv2dBackwardInput(_)
        | Op::Conv2dBackwardWeight(_)
        | Op::ChannelSum(_)
        | Op::AvgPool2Backward(_)
        | Op::MaxPool2Backward(_)
        | Op::Upsample2Backward(_)
        | Op::ReluBackward(_)
        | Op::LinearBackwardInput(_)
        | Op::LinearBackwardWeight(_)
        | Op::CrossEntropyBackward(_)
        | Op::Argmax(_) => false,
    }
}

#[test]
fn conv2d() {
    for (n, c, h, w, o, k, stride, padding) in
        [(1, 1, 5, 5, 1, 3, 1, 1), (2, 3, 7, 6, 4, 3, 2, 1), (1, 2, 6, 7, 3, 5, 1, 2), (2, 3, 5, 5, 2, 1, 1, 0)]
    {
        let inputs = vec![random(&[n, c, h, w], 1), random(&[o, c, k, k], 2), random(&[o], 3)];
        check_op(Conv2d { stride, padding }, inputs, &[true; 3], 1e-2, TOL);
    }
}

#[test]
fn linear() {
    for (n, i, o) in [(1, 1, 1), (3, 7, 5), (4, 33, 10)] {
        let inputs = vec![random(&[n, i], 5), random(&[o, i], 6), random(&[o], 7)];
        check_op(Linear, inputs, &[true; 3], 1e-2, TOL);
    }
}

#[test]
fn pooling() {
    for shape in [[1, 1, 2, 2], [2, 3, 5, 7], [1, 2, 6, 4]] {
        check_op(AvgPool2, vec![spread(&shape, 9)], &[true], 1e-3, TOL);
        check_op(MaxPool2, vec![spread(&shape, 10)], &[true], 1e-3, TOL);
    }
}

#[test]
fn upsampling() {
    for shape in [[1, 1, 2, 2], [2, 3, 5, 7]] {
        let [n, c, h, w] = shape;
        check_op(Upsample2, vec![random(&shape, 11)], &[true], 1e-2, TOL);
        let inputs = vec![random(&[n, c, 2 * h, 2 * w], 12), random(&shape, 13)];
        check_op(AddUpsampled2, inputs, &[true, true], 1e-2, TOL);
    }
}

#[test]
fn relu_add_reshape() {
    check_op(Relu, vec![spread(&[2, 3, 4, 5], 14)], &[true], 1e-3, TOL);
    check_op(Add, vec![random(&[2, 3, 4], 15), random(&[2, 3, 4], 16)], &[true, true], 1e-2, TOL);
    check_op(Reshape { shape: vec![6, 4] }, vec![random(&[2, 3, 4], 17)], &[true], 1e-2, TOL);
}

#[test]
fn cross_entropy() {
    for (n, k) in [(1, 1), (1, 10), (5, 3), (16, 10)] {
        let logits = Tensor::uniform(&[n, k], -3.0, 3.0, 18);
        let mut labels = Tensor::labels(n, k, 19);
        if n > 4 {
            labels.data[1] = -1.0; // a padding row: no loss, no gradient
        }
        check_op(CrossEntropy, vec![logits, labels], &[true, false], 1e-2, TOL);
    }
}

/// Differentiating a gradient op (or argmax) is refused with a sentence naming it.
#[test]
fn gradient_ops_refuse_to_be_differentiated() {
    let ops: Vec<(Op, Vec<Vec<usize>>)> = vec![
        (
            Conv2dBackwardInput { stride: 1, padding: 1, input_size: [4, 4] }.into(),
            vec![vec![1, 2, 4, 4], vec![2, 3, 3, 3]],
        ),
        (Conv2dBackwardWeight { stride: 1, padding: 1, kernel: 3 }.into(), vec![vec![1, 2, 4, 4], vec![1, 3, 4, 4]]),
        (ChannelSum.into(), vec![vec![2, 3, 4]]),
        (AvgPool2Backward { input_size: [4, 4] }.into(), vec![vec![1, 1, 2, 2]]),
        (MaxPool2Backward.into(), vec![vec![1, 1, 4, 4], vec![1, 1, 2, 2]]),
        (Upsample2Backward.into(), vec![vec![1, 1, 4, 4]]),
        (ReluBackward.into(), vec![vec![3], vec![3]]),
        (LinearBackwardInput.into(), vec![vec![2, 3], vec![3, 4]]),
        (LinearBackwardWeight.into(), vec![vec![2, 3], vec![2, 4]]),
        (CrossEntropyBackward.into(), vec![vec![2, 3], vec![2]]),
        (Argmax.into(), vec![vec![2, 3]]),
    ];
    for (op, shapes) in ops {
        assert!(!has_gradient_rule(&op));
        let mut g = Graph::new();
        let ids: Vec<usize> = shapes.iter().enumerate().map(|(k, s)| g.param(&format!("x{k}"), s)).collect();
        let y = g.apply("y", op.clone(), &ids).unwrap();
        let shape = g.shape(y).to_vec();
        let dy = g.input("dy", &shape);
        let err = g.backward_with(y, dy).unwrap_err().to_string();
        assert!(err.contains(op.name()) && err.contains("has no gradient"), "{err}");
    }
    for op in [Op::from(Conv2d { stride: 1, padding: 0 }), Linear.into(), Relu.into(), CrossEntropy.into()] {
        assert!(has_gradient_rule(&op));
    }
}
