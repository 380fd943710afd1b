//! A state_dict exported from PyTorch (by scripts/pytorch_parity.py) loads
//! unchanged and gives PyTorch's logits, on the CPU and on the GPU.

mod common;

use std::path::Path;
use std::rc::Rc;

use octconv::checkpoint;
use octconv::exec::Device;
use octconv::nn::SeedNet;
use octconv::optim::AdamConfig;

const TOLERANCE: f32 = 1e-4;

fn logits_on(device: &Device) -> (Vec<f32>, Vec<f32>) {
    let net = SeedNet::new();
    let path = Path::new("tests/fixtures/pytorch_seed.safetensors");
    let params = checkpoint::load(path).unwrap().params_for(&net.params(), "pytorch_seed").unwrap();
    let fixture = checkpoint::load(Path::new("tests/fixtures/pytorch_logits.safetensors")).unwrap();
    let images = fixture.params.get("images").unwrap();
    let expected = fixture.params.get("logits").unwrap();
    let batch = images.shape[0];
    let model = net.graph(batch, false, device.conv_lowering()).unwrap();
    let mut runner = pollster::block_on(octconv::exec::compile(device, model, &params, AdamConfig::default())).unwrap();
    runner.write_batch(&images.data, &vec![-1.0; batch]).unwrap();
    runner.forward();
    let logits = pollster::block_on(runner.read(runner.model().logits)).unwrap();
    (logits.data, expected.data.clone())
}

fn assert_close(device: &str, (ours, theirs): (Vec<f32>, Vec<f32>)) {
    let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    println!("{device}: max |octconv − PyTorch| logit difference {worst:.2e} over {} logits", ours.len());
    assert!(worst <= TOLERANCE, "{device}: logits differ from PyTorch's by {worst}");
}

#[test]
fn pytorch_state_dict_gives_pytorch_logits_on_the_cpu() {
    assert_close("cpu", logits_on(&Device::Cpu));
}

#[test]
fn pytorch_state_dict_gives_pytorch_logits_on_the_gpu() {
    let Some(gpu) = common::gpu() else { return };
    assert_close("gpu", logits_on(&Device::Gpu(Rc::new(gpu))));
}
