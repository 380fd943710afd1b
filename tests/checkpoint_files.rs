//! Checkpoint and Adam-state files that would train or score wrongly are
//! refused by the loader, each with a sentence naming the tensor.

use std::collections::HashMap;

use octconv::checkpoint::{from_bytes, optimizer_from_bytes, optimizer_to_bytes, to_bytes};
use octconv::nn::ParamSpec;
use octconv::optim::OptimizerState;
use octconv::Tensor;

fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec { name: "w".into(), shape: vec![2, 3], fan_in: 3 },
        ParamSpec { name: "b".into(), shape: vec![2], fan_in: 3 },
    ]
}

fn adam_state(first: f32, second: f32) -> Vec<u8> {
    let (w, b) = (Tensor::uniform(&[2, 3], 0.0, 1.0, 1), Tensor::uniform(&[2], 0.0, 1.0, 2));
    let (mut w_first, mut w_second) = (w.clone(), w.clone());
    w_first.data[4] = first;
    w_second.data[2] = second;
    let state = OptimizerState { step: 3, moments: vec![("w".into(), w_first, w_second), ("b".into(), b.clone(), b)] };
    optimizer_to_bytes(&state)
}

#[test]
fn an_adam_state_with_unusable_moments_is_refused() {
    assert!(optimizer_from_bytes(&adam_state(0.5, 0.5), &specs(), "adam").is_ok(), "a sound state loads");
    for (first, second, what) in [
        (f32::NAN, 0.5, "a NaN first moment"),
        (0.5, f32::INFINITY, "an infinite second moment"),
        (0.5, -1e-3, "a negative second moment"),
    ] {
        let err = optimizer_from_bytes(&adam_state(first, second), &specs(), "adam").unwrap_err().to_string();
        assert!(
            err.contains("adam") && err.contains("of w") && err.contains("not a usable Adam state"),
            "{what}: {err}"
        );
        assert!(err.contains("moving it away"), "{what}: the message says what to do: {err}");
    }
}

#[test]
fn a_checkpoint_with_values_that_are_not_finite_is_refused() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut w = Tensor::uniform(&[2, 3], -1.0, 1.0, 1);
        w.data[5] = bad;
        let b = Tensor::uniform(&[2], -1.0, 1.0, 2);
        let bytes = to_bytes(&[("w".into(), &w), ("b".into(), &b)], &HashMap::new());
        let err = from_bytes(&bytes, "model").unwrap().params_for(&specs(), "model").unwrap_err().to_string();
        assert!(err.contains("model") && err.contains("in w") && err.contains("not finite"), "{bad}: {err}");
        assert!(err.contains("use an earlier checkpoint"), "{err}");
    }
}
