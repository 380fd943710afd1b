//! Every op's gradient rule, through `Graph::backward_with` on a one-op
//! graph, against central finite differences of the op's CPU twin
//! (tinygrad's `helper_test_op`). The cases, with their steps and
//! tolerances, are listed by each op family (`gradients` in `src/ops/*`);
//! `check_op` below is the one helper that runs them.
//!
//! For y = op(x) and a fixed random r, the scalar L(x) = Σ r·y has
//! dL/dx = what the graph's gradient nodes compute for dy = r (run on the CPU
//! twins, backward ops included). Each check perturbs up to 40 elements of
//! each differentiable input by ±h and compares (L(x+h) − L(x−h)) / 2h,
//! accumulated in f64, with the rule's value.

mod common;

use std::collections::BTreeSet;

use octconv::check::{self, GradientCase, Work};
use octconv::graph::Graph;
use octconv::ops::Op;
use octconv::tensor::Tensor;

/// A one-op graph: the op's differentiable inputs are parameters, the others inputs.
fn one_op_graph(op: &Op, shapes: &[Vec<usize>], differentiable: &[bool]) -> (Graph, Vec<usize>, usize) {
    let mut g = Graph::new();
    let ids: Vec<usize> = shapes
        .iter()
        .zip(differentiable)
        .enumerate()
        .map(|(k, (shape, &d))| if d { g.param(&format!("x{k}"), shape) } else { g.input(&format!("x{k}"), shape) })
        .collect();
    let y = g.apply("y", op.clone(), &ids).unwrap();
    (g, ids, y)
}

/// Checks one gradient rule; returns how many elements were compared, or the first that differs.
fn check_op(case: &GradientCase) -> Result<usize, String> {
    let GradientCase { op, inputs, differentiable, step: h, tolerance: [abs, rel] } = case;
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
    let (mut g, ids, y) = one_op_graph(op, &shapes, differentiable);
    let shape = g.shape(y).to_vec();
    let dy = g.input("dy", &shape);
    let grads = g.backward_with(y, dy).map_err(|e| e.to_string())?;
    // The loss is the graph's root: its rule takes its own gradient as 1.
    let r = if matches!(op, Op::CrossEntropy(_)) {
        Tensor::new(&[1], vec![1.0])
    } else {
        Tensor::uniform(&shape, -1.0, 1.0, 99)
    };
    let mut leaves: Vec<(usize, Tensor)> = ids.iter().copied().zip(inputs.iter().cloned()).collect();
    leaves.push((dy, r.clone()));
    let values = common::evaluate(&g, &leaves);

    let loss = |xs: &[Tensor]| -> f64 {
        let y = op.eval_cpu(&xs.iter().collect::<Vec<_>>()).unwrap();
        y.data.iter().zip(&r.data).map(|(&a, &b)| a as f64 * b as f64).sum()
    };
    let mut checked = 0;
    for &(param, grad) in &grads {
        let which = ids.iter().position(|&id| id == param).unwrap();
        let analytic = &values[grad];
        if analytic.shape != inputs[which].shape {
            return Err(format!("the gradient of input {which} has shape {:?}", analytic.shape));
        }
        let count = inputs[which].len();
        for i in (0..count).step_by((count / 40).max(1)) {
            let (mut plus, mut minus) = (inputs.clone(), inputs.clone());
            plus[which].data[i] += h;
            minus[which].data[i] -= h;
            let fd = (loss(&plus) - loss(&minus)) / (2.0 * *h as f64);
            let a = analytic.data[i] as f64;
            if (fd - a).abs() > abs + rel * a.abs() {
                return Err(format!("element {i} of input {which}: finite difference {fd:.6}, gradient rule {a:.6}"));
            }
            checked += 1;
        }
    }
    if grads.len() != differentiable.iter().filter(|&&d| d).count() {
        return Err("not every differentiable input got a gradient".into());
    }
    Ok(checked)
}

#[test]
fn every_gradient_rule_matches_finite_differences() {
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for case in check::gradient_cases() {
        let shapes: Vec<String> = case.inputs.iter().map(|t| format!("{:?}", t.shape)).collect();
        let label =
            format!("{} {} (step {}, tolerance {:?})", case.op.name(), shapes.join(" "), case.step, case.tolerance);
        match check_op(&case) {
            Ok(checked) => report.push(format!("{label}: {checked} elements within tolerance")),
            Err(why) => failures.push(format!("{label}: {why}")),
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "gradient rules that differ from finite differences:\n{}", failures.join("\n"));
    assert!(report.len() >= 20, "only {} gradient cases", report.len());
}

/// Every op either has its rule checked above or is a gradient (or argmax)
/// itself, whose rule refuses with a sentence naming it. The ops are those of
/// the kernel check cases and the gradient cases, so a new op is covered as
/// soon as its family lists cases.
#[test]
fn every_op_has_a_checked_rule_or_refuses() {
    let checked: BTreeSet<&str> = check::gradient_cases().iter().map(|c| c.op.name()).collect();
    let mut seen = BTreeSet::new();
    for case in check::cases() {
        let Work::Op { op, inputs, .. } = &case.work else { continue };
        if !seen.insert(op.name()) {
            continue;
        }
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
        let (mut g, _, y) = one_op_graph(op, &shapes, &vec![true; shapes.len()]);
        let shape = g.shape(y).to_vec();
        let dy = g.input("dy", &shape);
        // (An input without a gradient, as cross-entropy's labels, is reported too: the op has a rule.)
        let refused = match g.backward_with(y, dy) {
            Ok(_) => false,
            Err(e) => e.to_string().contains(&format!("{} has no gradient", op.name())),
        };
        assert!(refused || checked.contains(op.name()), "{} has a gradient rule but no gradient case", op.name());
    }
    assert!(seen.len() >= 20, "only {} ops seen", seen.len());
    assert!(checked.is_subset(&seen.union(&BTreeSet::from(["reshape"])).copied().collect()));
}
