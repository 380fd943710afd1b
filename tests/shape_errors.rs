//! Shapes a kernel cannot take give an error naming the op and the shapes,
//! on the CPU and on the GPU, without a panic or a wgpu validation abort.

mod common;

use octconv::gpu::GpuError;
use octconv::ops::{Add, Conv2d, CrossEntropy, Linear, MaxPool2, Op, Relu, Upsample2};
use octconv::Tensor;

#[test]
fn mismatched_channels_name_the_op_and_shapes() {
    let x = Tensor::zeros(&[2, 3, 8, 8]);
    let w = Tensor::zeros(&[4, 5, 3, 3]);
    let b = Tensor::zeros(&[4]);
    let conv = Op::from(Conv2d::new(1, 1));
    let message = conv.eval_cpu(&[&x, &w, &b]).unwrap_err().to_string();
    assert!(
        message.contains("conv2d") && message.contains("[2, 3, 8, 8]") && message.contains("[4, 5, 3, 3]"),
        "{message}"
    );
    assert!(message.contains("5 input channels but x has 3"), "{message}");

    let Some(gpu) = common::gpu() else { return };
    let inputs = [&x, &w, &b].map(|t| gpu.upload(t).unwrap());
    let err = pollster::block_on(gpu.run(&conv, &[&inputs[0], &inputs[1], &inputs[2]])).unwrap_err();
    assert_eq!(err.to_string(), message);
}

#[test]
fn other_bad_shapes_are_errors() {
    let cases: Vec<(Op, Vec<Vec<usize>>, &str)> = vec![
        (Linear.into(), vec![vec![2, 10], vec![4, 9], vec![4]], "weight expects 9 input features but x has 10"),
        (Conv2d::new(1, 0).into(), vec![vec![1, 1, 2, 2], vec![1, 1, 3, 3], vec![1]], "larger than the padded input"),
        (MaxPool2.into(), vec![vec![1, 1, 1, 5]], "at least 2"),
        (Add.into(), vec![vec![2, 3], vec![3, 2]], "same shape"),
        (CrossEntropy.into(), vec![vec![4, 10], vec![3]], "one label per row"),
        (Relu.into(), vec![vec![0, 3]], "at least 1"),
    ];
    for (op, shapes, expected) in cases {
        let tensors: Vec<Tensor> = shapes.iter().map(|s| Tensor::zeros(s)).collect();
        let err = op.eval_cpu(&tensors.iter().collect::<Vec<_>>()).unwrap_err().to_string();
        assert!(err.contains(op.name()) && err.contains(expected), "{err}");
    }
}

#[test]
fn a_buffer_over_the_binding_limit_is_an_error() {
    let Some(gpu) = common::gpu() else { return };
    let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
    // An upsample whose output (4 × the input) is just over the limit, while its input fits.
    let side = 1024usize;
    let planes = (limit as usize / 4 / (side * side) / 4 + 1).max(1);
    let x = Tensor::zeros(&[planes, 1, side, side]);
    let x_gpu = gpu.upload(&x).unwrap();
    let err = pollster::block_on(gpu.run(&Upsample2.into(), &[&x_gpu])).unwrap_err();
    assert!(matches!(err, GpuError::TooLarge { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("upsample2") && message.contains(&format!("[{planes}, 1, {side}, {side}]")), "{message}");
}
